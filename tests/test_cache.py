"The feature cache: keys, atomic builds, the skipped-input report, worker processes."
import json, os, shutil, time
import pytest, torch
from gcsa_fer.core import PreprocessConfig
from gcsa_fer.data import CremaD, Ravdess
from gcsa_fer.cache import build_cache, cache_key, cached_dataset, CachedDataset, is_complete, cache_dir_for
from conftest import CREMAD

CFG = PreprocessConfig(n_frames=4, face_size=32)

def test_changed_config_or_input_gives_new_key(tmp_path):
    d = tmp_path / 'AudioWAV'; d.mkdir()
    for n in ('1001_DFA_ANG_XX', '1001_DFA_HAP_XX'): shutil.copy(CREMAD / 'AudioWAV16k' / f'{n}.wav', d)
    ds = CremaD(tmp_path, kind='audio', cfg=CFG)
    k = cache_key(ds)
    assert cache_key(CremaD(tmp_path, kind='audio', cfg=PreprocessConfig(n_frames=4, face_size=32, hop_length=320))) != k
    f1 = build_cache(ds, tmp_path / 'c', n_workers=1, progress=False)
    os.utime(d / '1001_DFA_HAP_XX.wav', ns=(time.time_ns(), time.time_ns() + 10**9))   # input touched
    ds2 = CremaD(tmp_path, kind='audio', cfg=CFG)
    assert cache_key(ds2) != k
    f2 = build_cache(ds2, tmp_path / 'c', n_workers=1, progress=False)
    assert f1 != f2 and is_complete(f1) and is_complete(f2)

def test_half_written_never_read(tmp_path):
    ds = CremaD(kind='audio', cfg=CFG).select(range(3))
    folder = cache_dir_for(ds, tmp_path)
    folder.mkdir(parents=True); (folder / 'items.pt').write_bytes(b'\x00' * 10)    # an interrupted build
    with pytest.raises(ValueError, match='not a finished cache'): CachedDataset(folder)
    c = cached_dataset(ds, tmp_path, n_workers=1, progress=False)                  # rebuilt, not read
    assert len(c) == 3 and c[0]['audio'].shape == (1, 64, 301)
    (folder / 'COMPLETE').write_text('someotherkey')
    with pytest.raises(ValueError, match='does not match'): CachedDataset(folder)
    assert not list(folder.glob('.*tmp*'))

def test_report_lists_skipped_inputs_two_workers(tmp_path, cremad_copy):
    vf = cremad_copy / 'VideoFlash'
    (vf / '1001_DFA_HAP_XX.flv').write_bytes((CREMAD / 'VideoFlash' / '1001_DFA_HAP_XX.flv').read_bytes()[:2500])  # truncated
    (vf / '1001_DFA_NEU_XX.flv').write_text('this is not a video')                                                   # not a video
    ds = CremaD(cremad_copy, kind='av', cfg=CFG)
    c = cached_dataset(ds, tmp_path / 'cache', n_workers=2, progress=False)
    assert sorted(c.ids) == ['1001_DFA_ANG_XX', '1001_DFA_SAD_XX']                  # the good inputs are kept
    rep = json.loads((c.folder / 'report.json').read_text())
    assert rep['n_skipped'] == 2 and {s['id'] for s in rep['skipped']} == {'1001_DFA_HAP_XX', '1001_DFA_NEU_XX'}
    assert all('1001_DFA_' in s['path'] and s['problem'] for s in rep['skipped'])
    csv = (c.folder / 'skipped.csv').read_text()
    assert 'not a readable media file' in csv and csv.count('\n') == 3
    x = c[0]; assert x['frames'].dtype == torch.uint8 and x['audio'].dtype == torch.float32

def test_cache_matches_reader(tmp_path):
    ds = Ravdess(split='val', cfg=CFG).select(range(4))
    c = cached_dataset(ds, tmp_path, n_workers=2, progress=False)
    for i in range(4):
        a, b = ds[i], c[i]
        assert a['id'] == b['id'] and int(a['label']) == int(b['label']) and torch.equal(a['features'], b['features'])
        assert (a['audio'] - b['audio']).abs().max() < 0.05
    assert c.visual == 'features' and c.labels[0] == int(ds[0]['label'])

"Readers on the shipped real data and on small fixtures in each published layout, and bad input."

import shutil
import numpy as np
import pytest
import torch
from gcsa_fer.core import Config, PreprocessConfig, EXPR_CLASSES, IGNORE_INDEX
from gcsa_fer.data import (
    Ravdess,
    CremaD,
    AbawExpr,
    Afew,
    CkPlus,
    SyntheticAV,
    class_counts,
    class_weights,
    collate,
    EXPR_HEADER,
)
from gcsa_fer.testing import write_abaw_fixture
from gcsa_fer.datasets import get_dataset, dataset_info
from gcsa_fer.preprocess import MediaError
from gcsa_fer.cache import build_cache
from gcsa_fer.cached import CachedDataset
from conftest import CREMAD

CFG = PreprocessConfig(n_frames=4, face_size=32)


# --- shipped real data -------------------------------------------------------------------------------
def test_ravdess_shipped():
    ds = Ravdess(split='test', cfg=CFG)
    assert len(ds) == 240 and set(ds.labels) == set(range(8))
    it = ds[5]
    assert it['audio'].shape == (1, 64, 301) and it['audio'].dtype == torch.float32
    assert it['features'].shape == (35,) and it['label'].dtype == torch.int64 and isinstance(it['id'], str)
    assert int(class_counts(ds).sum()) == 240


def test_ravdess_outside_repo(tmp_path):
    from conftest import REPO

    shutil.copytree(REPO / 'data' / 'ravdess_au', tmp_path / 'ravdess_au')
    ds = Ravdess(tmp_path, split='val', modalities='features')
    assert len(ds) == 120 and ds[0]['features'].shape == (35,) and 'audio' not in ds[0]


def test_cremad_shipped():
    av_, au = CremaD(cfg=CFG), CremaD(kind='audio', cfg=CFG)
    assert len(av_) == 6 and len(au) == 12
    x = av_[0]
    assert x['frames'].shape == (4, 3, 32, 32) and x['frames'].dtype == torch.uint8 and x['face_mask'].all()
    assert EXPR_CLASSES[int(x['label'])] == 'Anger'
    assert class_counts(au).tolist() == [2, 2, 2, 2, 2, 2, 0, 0]


def test_cremad_bad_name(tmp_path):
    d = tmp_path / 'AudioWAV'
    d.mkdir()
    shutil.copy(CREMAD / 'AudioWAV16k' / '1001_DFA_ANG_XX.wav', d)
    shutil.copy(CREMAD / 'AudioWAV16k' / '1001_DFA_SAD_XX.wav', d / '1001_DFA_XYZ_XX.wav')
    with pytest.warns(UserWarning, match='unknown CREMA-D emotion'):
        ds = CremaD(tmp_path, kind='audio')
    assert len(ds) == 1 and 'XYZ' in ds.skipped[0]['path']
    with pytest.raises(ValueError, match='1001_DFA_XYZ_XX.wav'):
        CremaD(tmp_path, kind='audio', strict=True)


def test_synthetic_deterministic_and_learnable():
    a, b = (
        SyntheticAV(32, CFG, ('audio', 'frames', 'features'), seed=3),
        SyntheticAV(32, CFG, ('audio', 'frames', 'features'), seed=3),
    )
    assert all(
        torch.equal(a[i]['frames'], b[i]['frames']) and torch.equal(a[i]['audio'], b[i]['audio']) for i in range(4)
    )
    assert not torch.equal(a[0]['audio'], SyntheticAV(32, CFG, seed=4)[0]['audio'])
    # the planted signal: the loudest mel band group names the class
    for i in range(16):
        it = a[i]
        g = it['audio'][0].mean(1).reshape(8, -1).mean(1)
        assert int(g.argmax()) == int(it['label'])


def test_collate_and_factory():
    cfg = Config(dataset='synthetic', modality='av')
    cfg.preprocess = CFG
    ds = get_dataset('synthetic', 'train', cfg, augment=True)
    b = collate([ds[i] for i in range(3)])
    assert b['audio'].shape == (3, 1, 64, 301) and b['frames'].shape == (3, 4, 3, 32, 32) and b['label'].shape == (3,)
    assert b['face_mask'].shape == (3, 4) and len(b['id']) == 3
    assert dataset_info('abaw')['level'] == 'frame' and dataset_info('ravdess')['visual'] == 'features'
    w = class_weights(ds)
    assert w.shape == (8,) and (w > 0).all()


def test_factory_with_cache(tmp_path):
    cfg = Config(dataset='cremad', modality='a')
    cfg.preprocess = CFG
    ds = get_dataset('cremad', 'all', cfg, cache_dir=tmp_path, n_workers=1)
    assert isinstance(ds.ds, CachedDataset) and len(ds) == 12 and sorted(ds[0]) == ['audio', 'id', 'label']
    assert ds[0]['audio'].dtype == torch.float32


def test_factory_external_root(tmp_path, cremad_copy):
    cfg = Config(dataset='cremad', modality='av', data_root=str(cremad_copy))
    cfg.preprocess = CFG
    ds = get_dataset('cremad', 'all', cfg)
    assert len(ds) == 2 and sorted(ds[1]) == ['audio', 'face_mask', 'frames', 'id', 'label']


# --- Aff-Wild2 ---------------------------------------------------------------------------------------
def test_abaw_quirks(tmp_path, face_frames, tone, video_writer):
    root = write_abaw_fixture(tmp_path / 'aw2')
    # the right-hand person's audio comes from the shared video file
    video_writer(root / 'videos' / '10-60-1280x720.avi', face_frames[:5], fps=25, audio=np.tile(tone, 1)[:3200])
    tr = AbawExpr(root, 'train', cfg=CFG)
    # no video file: the 8 label lines give the length; frames 3, 7 and 8 have no crop (missing images, not "beyond the video")
    assert tr.stats['labels_beyond_video'] == 0 and tr.stats['missing_frames'] == 3 and tr.stats['ignored_labels'] == 1
    assert tr.stats['labelled_frames'] == 4 and tr.stats['labelled_without_image'] == 3
    assert class_counts(tr).sum() == 4  # only frames with a label and an image count
    assert tr.stats['videos_without_audio'] == 1 and tr[0]['audio'].std() == 0  # no video file: silent windows, counted
    assert [int(k) for k in tr.window_frames(1)] == [5, 6, 7, 8]  # in order
    va = AbawExpr(root, 'val', cfg=CFG)
    assert va.per_video[0]['video_file'].endswith('10-60-1280x720.avi')
    it = va[0]
    assert it['audio'].shape == (4, 1, 64, 101) and it['label'].tolist() == [6, 6, 6, IGNORE_INDEX]
    assert va.stats['frames_without_label'] == 2
    b = collate([it, it])
    assert b['label'].shape == (2, 4) and b['audio'].shape == (2, 4, 1, 64, 101)
    rep = tr.report()
    assert 'missing_frames' in rep.columns


def test_abaw_test_mode(tmp_path):
    root = write_abaw_fixture(tmp_path / 'aw2')
    (root / 'test_set_release.txt').write_text('1-30-1280x720\n')
    te = AbawExpr(root, 'test', modalities='frames', cfg=CFG)
    assert len(te) == 2 and 'label' not in te[0] and te.window_frames(1)[-1] == 6
    assert te[0]['face_mask'].tolist() == [True, True, False, True]


def test_abaw_bad_label_files(tmp_path):
    root = write_abaw_fixture(tmp_path / 'aw2')
    ann = root / 'Annotations' / 'EXPR_Classification_Challenge' / 'Train_Set'
    (ann / '2-30-640x360.txt').write_text('Neutral,Anger,Happy\n0\n')
    (ann / '3-25-1920x1080.txt').write_text(EXPR_HEADER + '\n0\n1\nhappy\n')
    with pytest.warns(UserWarning):
        ds = AbawExpr(root, 'train', modalities='frames', cfg=CFG)
    problems = {s['path'].rsplit('/', 1)[-1]: s['problem'] for s in ds.skipped}
    assert 'wrong header' in problems['2-30-640x360.txt'] and 'line 4' in problems['3-25-1920x1080.txt']
    assert len(ds) == 2 and ds.stats['skipped_files'] == 2  # the good video is kept
    with pytest.raises(ValueError, match='2-30-640x360.txt'):
        AbawExpr(root, 'train', modalities='frames', cfg=CFG, strict=True)


@pytest.mark.parametrize(
    'labels,problem',
    [
        ([], 'no label lines after the header'),
        ([0] * 24, '24 label lines for 6 frames'),  # three times too many
        ([0] * 2 + [1] * 40, '42 label lines'),
    ],
)
def test_abaw_label_file_that_does_not_fit(tmp_path, labels, problem):
    root = write_abaw_fixture(tmp_path / 'aw2')
    f = root / 'Annotations' / 'EXPR_Classification_Challenge' / 'Train_Set' / '1-30-1280x720.txt'
    f.write_text(EXPR_HEADER + '\n' + ''.join(f'{l}\n' for l in labels))
    with pytest.raises(ValueError, match='1-30-1280x720.txt'):
        AbawExpr(root, 'train', modalities='frames', cfg=CFG, strict=True)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=f'every file was skipped.*{problem}'):
        AbawExpr(root, 'train', modalities='frames', cfg=CFG)  # the only label file is bad: an error, not an empty set


def test_abaw_unreadable_image(tmp_path):
    root = write_abaw_fixture(tmp_path / 'aw2')
    (root / 'cropped_aligned' / '1-30-1280x720' / '00002.jpg').write_bytes(b'not a jpeg')
    ds = AbawExpr(root, 'train', modalities='frames', cfg=CFG)
    assert ds[0]['face_mask'].tolist() == [True, False, False, True]
    assert ds.read_errors[0]['problem'] == 'unreadable image' and '00002.jpg' in ds.read_errors[0]['path']


# --- AFEW ---------------------------------------------------------------------------------------------
def test_afew_layout_and_unknown_folder(tmp_path, face_frames, tone, video_writer):
    for emo, n in (('Happy', 2), ('Sad', 1)):
        for i in range(n):
            video_writer(tmp_path / 'afew' / 'Train' / emo / f'00{i}.avi', face_frames[:6], audio=tone)
    ds = Afew(tmp_path / 'afew', 'train', cfg=CFG)
    assert [EXPR_CLASSES[l] for l in ds.labels] == ['Happiness', 'Happiness', 'Sadness']
    it = ds[2]
    assert it['frames'].shape == (4, 3, 32, 32) and it['audio'].shape == (1, 64, 301)
    (tmp_path / 'afew' / 'Train' / 'Bored').mkdir()
    with pytest.raises(ValueError, match="Bored.*unknown emotion folder"):
        Afew(tmp_path / 'afew', 'train', cfg=CFG)
    with pytest.raises(ValueError, match='no val folder'):
        Afew(tmp_path / 'afew', 'val', cfg=CFG)


# --- CK+ ----------------------------------------------------------------------------------------------
def _ckplus(root, face_frames, code='2.0000000e+00'):
    import cv2

    seq = root / 'cohn-kanade-images' / 'S005' / '001'
    seq.mkdir(parents=True)
    for k, f in enumerate(face_frames[:6], 1):
        cv2.imwrite(str(seq / f'S005_001_{k:08d}.png'), cv2.cvtColor(f, cv2.COLOR_RGB2GRAY))
    (root / 'cohn-kanade-images' / 'S010' / '002').mkdir(parents=True)  # unlabelled sequence
    cv2.imwrite(str(root / 'cohn-kanade-images' / 'S010' / '002' / 'S010_002_00000001.png'), face_frames[0])
    e = root / 'Emotion' / 'S005' / '001'
    e.mkdir(parents=True)
    (e / 'S005_001_00000006_emotion.txt').write_text(f'   {code}\n')
    return root


def test_ckplus(tmp_path, face_frames):
    ds = CkPlus(_ckplus(tmp_path / 'ck', face_frames), cfg=CFG)
    assert len(ds) == 1 and ds.stats == {'sequences': 2, 'unlabelled': 1}
    assert EXPR_CLASSES[ds.labels[0]] == 'Other'  # contempt -> Other
    it = ds[0]
    assert it['frames'].shape == (4, 3, 32, 32) and it['face_mask'].all() and 'audio' not in it


def test_ckplus_bad_code_and_unreadable_image(tmp_path, face_frames):
    root = _ckplus(tmp_path / 'ck', face_frames, code='contempt')
    with pytest.warns(UserWarning, match='not an emotion code'):
        assert len(CkPlus(root, cfg=CFG)) == 0
    root = _ckplus(tmp_path / 'ck2', face_frames)
    (root / 'cohn-kanade-images' / 'S005' / '001' / 'S005_001_00000006.png').write_bytes(b'\x89PNG broken')
    ds = CkPlus(root, cfg=CFG)
    with pytest.raises(MediaError, match='S005_001_00000006.png: unreadable image'):
        ds[0]
    folder = build_cache(ds, tmp_path / 'cache', n_workers=1, progress=False)  # in bulk: a report line
    c = CachedDataset(folder)
    assert len(c) == 0 and 'unreadable image' in c.skipped[0]['problem']


# --- RAVDESS: the publisher's layout and format give the mirror's items -----------------------------------------
def _ravdess_trees(tmp_path):
    "The same clips twice: the publisher's Actor_NN/*.wav at 48 kHz (no manifest), the mirror's 16 kHz Opus + manifest."
    import soundfile as sf
    from gcsa_fer.data import ravdess_label

    pub, mir = tmp_path / 'pub' / 'ravdess_speech', tmp_path / 'mir' / 'ravdess_speech'
    rows = ['path,affwild2_expr_label,suggested_split']
    for a in (1, 2, 11, 19, 21, 23):
        for e in (1, 2, 5, 8):
            stem = f'03-01-{e:02d}-{1 + (e > 1):02d}-01-01-{a:02d}'
            t = np.arange(24000) / 48000
            x = 0.3 * np.sin(2 * np.pi * (100 * e + 7 * a) * t) * np.hanning(len(t))
            for d in (pub, mir):
                (d / f'Actor_{a:02d}').mkdir(parents=True, exist_ok=True)
            sf.write(pub / f'Actor_{a:02d}' / f'{stem}.wav', x, 48000, subtype='PCM_16')
            sf.write(mir / f'Actor_{a:02d}' / f'{stem}.opus', x[::3], 16000, format='OGG', subtype='OPUS')
            split = 'train' if a <= 18 else 'val' if a <= 20 else 'test'
            rows.append(f'Actor_{a:02d}/{stem}.opus,{ravdess_label(stem)[0]},{split}')
    (mir / 'manifest.csv').write_text('\n'.join(rows) + '\n')
    return pub.parent, mir.parent


def test_ravdess_publisher_wav_and_mirror_opus_give_the_same_items(tmp_path):
    from gcsa_fer.cache import cache_key

    pub, mir = _ravdess_trees(tmp_path)
    for fold in (0, 1, 3):
        for split in ('train', 'val', 'test', 'all'):
            a, b = (Ravdess(r, split, 'audio', CFG, fold) for r in (pub, mir))
            assert (a.ids, a.labels, a.speakers) == (b.ids, b.labels, b.speakers), (fold, split)
    a, b = Ravdess(pub, 'all', 'audio', CFG), Ravdess(mir, 'all', 'audio', CFG)
    assert len(a) == 24 and sorted(set(a.labels)) == [0, 1, 6, 7]  # neutral, angry, surprised, calm -> Other
    x, y = a[3]['audio'], b[3]['audio']  # 48 kHz WAV resampled vs 16 kHz Opus
    assert x.shape == y.shape == (1, 64, 301) and np.corrcoef(x.flatten(), y.flatten())[0, 1] > 0.9
    assert cache_key(a) != cache_key(b)  # different bytes: never the same cache


def test_au_pickle_gives_the_csv_features(tmp_path):
    import pickle
    import pandas as pd
    from gcsa_fer.data import AU_COLUMNS
    from conftest import REPO

    csv = pd.read_csv(REPO / 'data' / 'ravdess_au' / 'au_features.csv')
    d = {c: np.r_[v, np.zeros(259)] for c, v in zip(csv['clip_id'], csv[AU_COLUMNS].to_numpy(np.float64))}
    (tmp_path / 'ravdess_au').mkdir()
    (tmp_path / 'ravdess_au' / 'au_mfcc.pkl').write_bytes(pickle.dumps(d, protocol=2))
    for fold in (0, 2):
        a, b = Ravdess(tmp_path, 'test', 'features', fold=fold), Ravdess(REPO / 'data', 'test', 'features', fold=fold)
        assert (a.ids, a.labels, a.speakers) == (b.ids, b.labels, b.speakers)
        assert all(np.array_equal(a.rows[i]['features'], b.rows[i]['features']) for i in range(len(a)))


def test_au_pickle_that_runs_code_is_refused(tmp_path):
    import pickle

    marker = tmp_path / 'ran'
    code = f"open({str(marker)!r}, 'w')".encode()  # {'01-01-...': exec(code)}, written opcode by opcode
    evil = (
        b'\x80\x02}q\x00X\x14\x00\x00\x0001-01-01-01-01-01-01q\x01cbuiltins\nexec\nq\x02X'
        + len(code).to_bytes(4, 'little')
        + code
        + b'\x85Rs.'
    )
    pickle.loads(evil)
    assert marker.exists()
    marker.unlink()  # pickle.load would run it
    (tmp_path / 'ravdess_au').mkdir()
    (tmp_path / 'ravdess_au' / 'au_mfcc.pkl').write_bytes(evil)
    with pytest.raises(ValueError, match='refused builtins.exec'):
        Ravdess(tmp_path, 'all', 'features')
    assert not marker.exists()

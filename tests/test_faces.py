"Faces in: detection on real photos, the face-folder reader, training on pixels, and predict with a face model (issue: faces in)."

import shutil
import subprocess
import sys
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from gcsa_fer import cli
from gcsa_fer.core import EXPR_CLASSES
from gcsa_fer.catalogue import shipped_data_dir
from gcsa_fer.readers.faces import FaceFolder, expr_index
from gcsa_fer.images import read_image
from gcsa_fer import detect

sys.path.insert(0, str(Path(__file__).parent))
import training_cases  # noqa: E402  (the outcomes tools/test_margins.py measures)

LONDON = shipped_data_dir() / 'london_faces_dev'
PHOTOS = sorted((LONDON / 'images').glob('*/*.jpg'))
CREMAD = shipped_data_dir() / 'cremad_sample' / 'VideoFlash'
WILD = shipped_data_dir() / 'wild_faces_dev'


def test_london_is_vendored_with_its_licence():
    assert (
        len(PHOTOS) == 102
        and (LONDON / 'LICENSE_CC-BY-4.0.md').exists()
        and 'CC BY 4.0' in (LONDON / 'README.md').read_text()
    )
    out = subprocess.run(['sha256sum', '-c', '--quiet', 'SHA256SUMS'], cwd=LONDON, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize('name,floor', [('haar', 0.98), ('lbp', 0.95)])
def test_detector_finds_the_london_faces(name, floor):
    found = sum(detect.detect_face(read_image(p), name) is not None for p in PHOTOS)
    assert found / len(PHOTOS) >= floor, (name, found)


def _clear_detectors():
    for f in (detect._haar, detect._blazeface, detect.resolve_detector):
        getattr(f, 'cache_clear', lambda: None)()  # a loader a test replaced has no cache


@pytest.fixture
def fresh_detectors():
    "Each detector loaded anew in the test, and again after it (the loaders and `resolve_detector` cache)."
    _clear_detectors()
    yield
    _clear_detectors()


def _no_blazeface(monkeypatch):
    def unavailable():
        raise detect.DetectorUnavailable('no BlazeFace here')

    monkeypatch.setattr(detect, '_blazeface', unavailable)


def test_haar_without_opencv_data_or_classifier_says_so_and_auto_falls_back(monkeypatch, fresh_detectors):
    import cv2

    photo = read_image(PHOTOS[0])
    _no_blazeface(monkeypatch)
    monkeypatch.setattr(
        cv2.data, 'haarcascades', '/nonexistent/', raising=False
    )  # an OpenCV build without its data folder
    with pytest.raises(detect.DetectorUnavailable, match='cv2.data.haarcascades'):
        detect.detect_face(photo, 'haar')
    assert detect.resolve_detector('auto') == 'lbp'  # auto: scikit-image's cascade
    detect._haar.cache_clear()
    detect.resolve_detector.cache_clear()
    monkeypatch.undo()
    _no_blazeface(monkeypatch)
    monkeypatch.delattr(cv2, 'CascadeClassifier')  # OpenCV 5: no cascade classifier at all
    with pytest.raises(detect.DetectorUnavailable, match='opencv-python-headless<5'):
        detect.detect_face(photo, 'haar')
    assert detect.resolve_detector('auto') == 'lbp' and detect.detect_face(photo, 'auto') is not None


def test_auto_prefers_blazeface_where_it_can_run(monkeypatch, fresh_detectors):
    "The choice alone (no weights needed): BlazeFace when it loads, else Haar."
    monkeypatch.setattr(detect, '_blazeface', lambda: 'loaded')
    assert detect.resolve_detector('auto') == 'blazeface'
    _clear_detectors()
    _no_blazeface(monkeypatch)
    assert detect.resolve_detector('auto') == 'haar'
    with pytest.raises(detect.DetectorUnavailable, match='no BlazeFace here'):
        detect.resolve_detector('blazeface')


def test_blazeface_without_its_weights_says_how_to_set_them_up(monkeypatch, tmp_path, fresh_detectors):
    "At run time nothing is downloaded: an empty cache is an error that names `make data`, and auto takes Haar."
    pytest.importorskip('ai_edge_litert', reason='ai-edge-litert is not installed: pip install ai-edge-litert')
    monkeypatch.setenv('GCSA_FER_CACHE', str(tmp_path / 'empty'))
    with pytest.raises(detect.DetectorUnavailable, match=r'not set up in .*mediapipe-0.10.21: run make data'):
        detect.detect_face(read_image(PHOTOS[0]), 'blazeface')
    assert detect.resolve_detector('auto') == 'haar' and not (tmp_path / 'empty').exists()


def _why_no_blazeface() -> str | None:
    "Why BlazeFace cannot run here (its runtime or its weights missing), or None."
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return 'ai-edge-litert is not installed (pip install ai-edge-litert)'
    from gcsa_fer.blazeface import blazeface_weights
    from gcsa_fer.fer_weights import WeightsUnavailable

    try:
        blazeface_weights(download=False)
    except WeightsUnavailable as e:
        return f'the mediapipe wheel was not taken apart at set-up ({e})'
    return None


NO_BLAZEFACE = _why_no_blazeface()


@pytest.mark.skipif(NO_BLAZEFACE is not None, reason=f'BlazeFace cannot run here: {NO_BLAZEFACE}')
def test_blazeface_finds_the_faces_haar_finds_and_most_everyday_faces(fresh_detectors):
    "Every 3rd London portrait (34), each box around the centre of Haar's; and every 32nd wild photo (104): 95 % or more."
    for p in PHOTOS[::3]:
        im = read_image(p)
        (x, y, w, h), (hx, hy, hw, hh) = detect.detect_face(im, 'blazeface'), detect.detect_face(im, 'haar')
        assert hx < x + w / 2 < hx + hw and hy < y + h / 2 < hy + hh and 0.4 < w / hw < 1.5, (p.name, (x, y, w, h))
    wild = pd.read_csv(WILD / 'manifest.csv')['path'][::32]
    found = sum(detect.detect_face(read_image(WILD / p), 'blazeface') is not None for p in wild)
    assert found / len(wild) >= 0.95, (found, len(wild))


def test_class_names():
    assert [expr_index(n) for n in ('Smiling', 'happy', 'ANGRY', 'anger', 'Surprised', 'contempt', '0')] == [
        4,
        4,
        1,
        1,
        6,
        7,
        0,
    ]
    with pytest.raises(ValueError, match="unknown class name 'elated'.*Happiness \\(happiness/happy"):
        expr_index('elated')
    assert expr_index('elated', {'Elated': 'Happiness'}) == 4


def _subset(tmp: Path, n_subjects: int, layout: str = 'manifest') -> Path:
    "A face folder with the first `n_subjects` London subjects, as a manifest (with subjects) or a folder per class."
    man = pd.read_csv(LONDON / 'manifest.csv')
    keep = sorted(man['subject'].unique())[:n_subjects]
    man = man[man['subject'].isin(keep)]
    for p in man['path']:
        (tmp / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LONDON / p, tmp / p)
    if layout == 'manifest':
        man[['path', 'label', 'subject']].to_csv(tmp / 'manifest.csv', index=False)
    return tmp


def test_folder_per_class_and_manifest(tmp_path):
    root = _subset(tmp_path / 'f', 4, layout='folders')
    ds = FaceFolder(root / 'images')
    assert len(ds) == 8 and sorted(set(ds.labels)) == [0, 4] and ds[0]['frames'].shape == (1, 3, 64, 64)
    m = _subset(tmp_path / 'm', 10)
    for k in (1, 2, 3):
        parts = {s: FaceFolder(m, s, fold=k, n_folds=3) for s in ('train', 'val', 'test')}
        subj = {s: set(d.subjects) for s, d in parts.items()}
        assert (
            not (subj['train'] & subj['test'])
            and not (subj['val'] & subj['test'])
            and not (subj['train'] & subj['val'])
        )
        assert sum(len(d) for d in parts.values()) == 20


@pytest.mark.parametrize(
    'text,error',
    [
        ('path,label\n', 'no rows after the header'),
        ('file,label\nx.jpg,happy\n', "missing column(s) ['path']"),
        ('path,label,subject\nimages/happy/002_08.jpg,elated,a\n', "line 2: label 'elated'"),
        (
            'path,label,subject,split\nimages/happy/002_08.jpg,happy,a,tset\n',
            "line 2: split 'tset' is not train, val or test",
        ),
        ('path,label\nimages/happy/nope.jpg,happy\n', 'line 2: images/happy/nope.jpg does not exist'),
        ('', 'the file is empty'),
    ],
)
def test_bad_manifests_name_the_file_and_line(tmp_path, text, error):
    root = _subset(tmp_path, 1)
    (root / 'manifest.csv').write_text(text)
    with pytest.raises(ValueError) as e:
        FaceFolder(root)
    assert error in str(e.value) and 'manifest.csv' in str(e.value)


def test_manifest_with_bom_and_windows_line_endings(tmp_path):
    root = _subset(tmp_path, 2)
    text = (root / 'manifest.csv').read_text().replace('\n', '\r\n')
    (root / 'manifest.csv').write_bytes('\ufeff'.encode() + text.encode())
    assert len(FaceFolder(root)) == 4


def test_unreadable_and_tiny_images(tmp_path):
    root = _subset(tmp_path, 1)
    (root / 'images' / 'happy' / 'broken.jpg').write_bytes(b'not a jpeg')
    import cv2

    cv2.imwrite(str(root / 'images' / 'happy' / 'dot.png'), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(ValueError, match=r'happy/broken.jpg \(not a readable image'):
        FaceFolder(root / 'images')  # when read
    (root / 'images' / 'happy' / 'broken.jpg').unlink()
    ds = FaceFolder(root / 'images')
    by_id = {r['id']: i for i, r in enumerate(ds.rows)}
    item = ds[by_id['happy/dot.png']]  # a 1-pixel image: no face, the whole image, flagged
    assert item['frames'].shape == (1, 3, 64, 64) and not item['face_mask'].any()


def test_wild_faces_read_by_name_with_subject_folds():
    "The everyday photos by the dataset's name: every labelled photo once over the splits, no person on two sides."
    man = pd.read_csv(WILD / 'manifest.csv')
    parts = {s: FaceFolder('wild_faces_dev', s, fold=2) for s in ('train', 'val', 'test')}
    assert sum(len(d) for d in parts.values()) == len(man) == 3328 and parts['test'].root == WILD
    subj = {s: set(d.subjects) for s, d in parts.items()}
    assert not (subj['train'] & subj['test'] or subj['val'] & subj['test'] or subj['train'] & subj['val'])
    counts = pd.Series([EXPR_CLASSES[c] for d in parts.values() for c in d.labels]).value_counts()
    want = man['label'].map(lambda n: EXPR_CLASSES[expr_index(n)]).value_counts()
    assert counts.sort_index().tolist() == want.sort_index().tolist() and counts['Other'] == 8  # contempt


def _wild_copy(folder: Path, n: int = 4) -> pd.DataFrame:
    "A folder with the first `n` wild photos and their manifest rows."
    man = pd.read_csv(WILD / 'manifest.csv').iloc[:n]
    for p in man['path']:
        (folder / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(WILD / p, folder / p)
    man.to_csv(folder / 'manifest.csv', index=False)
    return man


@pytest.mark.parametrize('how', ['named', 'stamped'])
def test_manifest_row_outside_the_registry_is_refused_by_name(tmp_path, how):
    "A file the wild registry does not list (a held-out person, a photo added by hand) is not part of the dataset."
    root = tmp_path / ('wild_faces_dev' if how == 'named' else 'my_copy')
    man = _wild_copy(root)
    if how == 'stamped':
        (root / '.gcsa_fer_fetch.json').write_text('{"dataset": "wild_faces_dev"}')
    assert len(FaceFolder(root, min_classes=1)) == 4
    shutil.copy(PHOTOS[0], root / 'images' / 'Held_Out_0001.jpg')
    extra = pd.DataFrame([{'path': 'images/Held_Out_0001.jpg', 'label': 'happiness', 'subject': 'Held_Out'}])
    pd.concat([man, extra]).to_csv(root / 'manifest.csv', index=False)
    with pytest.raises(ValueError) as e:
        FaceFolder(root)
    assert '1 row(s) name a file outside the wild_faces_dev registry: images/Held_Out_0001.jpg' in str(e.value)
    shutil.copytree(
        root, tmp_path / 'elsewhere' / 'mine', ignore=shutil.ignore_patterns('.gcsa_fer_fetch.json')
    )  # the same files outside the catalogue: a user's own set
    assert len(FaceFolder(tmp_path / 'elsewhere' / 'mine' / 'manifest.csv', min_classes=1)) == 5


def test_class_with_too_few_subjects_is_refused_before_the_first_fold(tmp_path, capsys):
    "3 folds by subject, and Neutral has 2 people: one line, status 2, and no fold was started."
    root = _subset(tmp_path / 'f', 4)
    man = pd.read_csv(root / 'manifest.csv')
    first_two = man['subject'].isin(sorted(man['subject'].unique())[:2])
    man.loc[first_two, 'label'] = 'happy'
    man.to_csv(root / 'manifest.csv', index=False)
    with pytest.raises(SystemExit) as e:
        cli.main(['train', '--data', str(root), '--out', str(tmp_path / 'o'), '--n-folds', '3', '--device', 'cpu'])
    err = capsys.readouterr().err
    assert e.value.code == 2 and 'Traceback' not in err and not (tmp_path / 'o').exists()
    assert 'too few subjects have (Neutral 2): use n_folds <= 2' in err
    assert len(FaceFolder(root, 'test', fold=1, n_folds=2)) > 0


def test_cli_train_and_predict_an_image(tmp_path, capsys):
    root = _subset(tmp_path / 'faces', 6)
    with pytest.raises(SystemExit) as e:
        cli.main(
            [
                'train',
                '--data',
                str(root),
                '--out',
                str(tmp_path / 'run'),
                '--epochs',
                '2',
                '--n-folds',
                '3',
                '--folds',
                '1',
                '--device',
                'cpu',
                '--set',
                'batch_size=4',
            ]
        )
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert (
        'pixel logistic regression' in out
        and (tmp_path / 'run' / 'cv.csv').exists()
        and (tmp_path / 'run' / 'final' / 'last.pt').exists()
    )
    cv = pd.read_csv(tmp_path / 'run' / 'cv.csv')
    assert list(cv['fold']) == [1] and 0 <= cv['accuracy'][0] <= 1
    with pytest.raises(SystemExit) as e:
        cli.main(
            [
                'predict',
                str(root / 'images' / 'happy' / '002_08.jpg'),
                '--run',
                str(tmp_path / 'run'),
                '--out',
                str(tmp_path / 'p'),
                '--quiet',
            ]
        )
    assert e.value.code == 0
    t = pd.read_csv(tmp_path / 'p' / '002_08.csv')
    assert len(t) == 1 and t['source'][0] == 'video' and abs(t[list(EXPR_CLASSES)].sum(axis=1)[0] - 1) < 1e-4


def test_cli_train_probe_scores_the_frozen_features_by_fold(tmp_path, capsys):
    "--probe: logistic regression on the frozen FER2013 trunk, on the folds' own crops; no network, no final model."
    from gcsa_fer.pretrain import face_arrays, linear_probe
    from gcsa_fer.face_training import face_config

    root = _subset(tmp_path / 'faces', 9)
    args = ['train', '--data', str(root), '--out', str(tmp_path / 'p'), '--probe', '--n-folds', '3', '--folds', '2']
    with pytest.raises(SystemExit) as e:
        cli.main(args + ['--device', 'cpu'])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert 'linear probe: accuracy' in out and 'over 1 subject-disjoint folds' in out, out
    cv = pd.read_csv(tmp_path / 'p' / 'cv.csv')
    assert list(cv['fold']) == [2] and cv['n_test'][0] == len(FaceFolder(root, 'test', fold=2, n_folds=3))
    assert not (tmp_path / 'p' / 'final').exists() and not (tmp_path / 'p' / 'fold2').exists()
    cfg = face_config(str(root), n_folds=3, fold=2)
    direct = linear_probe(*(face_arrays(cfg, s, tmp_path / 'c') for s in ('train', 'val', 'test')))
    assert (cv['accuracy'][0], cv['C'][0]) == (direct['accuracy'], direct['C'])  # the same crops, the same probe


def test_cli_train_bad_folder_is_one_line(tmp_path, capsys):
    (tmp_path / 'elated').mkdir()
    shutil.copy(PHOTOS[0], tmp_path / 'elated' / 'a.jpg')
    with pytest.raises(SystemExit) as e:
        cli.main(['train', '--data', str(tmp_path), '--out', str(tmp_path / 'o')])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "unknown class name 'elated'" in err and 'Traceback' not in err


FACE_MODEL = Path(__file__).resolve().parent.parent / 'models' / 'faces'


def test_shipped_face_model_loads_and_says_what_it_is():
    from gcsa_fer.models import load_model

    lm = load_model(FACE_MODEL)
    assert lm.uses_faces and lm.branches == ['visual'] and lm.cfg.dataset == 'faces'
    card = (FACE_MODEL / 'README.md').read_text()
    assert 'Neutral' in card and 'Happiness' in card and 'two classes' in card


def test_predict_a_cremad_clip_without_its_audio_uses_the_face(tmp_path, video_writer, capsys):
    "The default predictor (speech model + face model) on a CREMA-D clip with its audio removed: face-based answers."
    from gcsa_fer.predict import predict_videos
    from gcsa_fer.preprocess import read_video

    frames, _ = read_video(CREMAD / '1001_DFA_HAP_XX.flv')
    silent = video_writer(tmp_path / 'silent.mp4', frames, fps=30)
    preds, summary = predict_videos([silent], None, tmp_path / 'out', abaw=True, progress=False)
    t = preds[0].table
    assert (t['source'] == 'video').all() and (t['faces'] > 0).all(), t[['source', 'reason']]
    np.testing.assert_allclose(t[list(EXPR_CLASSES)].sum(axis=1), 1, atol=1e-5)
    assert summary['status'][0] == 'ok' and 'no audio track' in summary['notes'][0]
    assert 'no audio track' in capsys.readouterr().err  # said on the terminal, not only in summary.csv


def test_windows_without_prediction_are_explained_and_never_labelled(tmp_path, video_writer, capsys):
    from gcsa_fer.predict import predict_videos

    wall = video_writer(tmp_path / 'wall.mp4', np.full((20, 120, 160, 3), 90, np.uint8), fps=10)
    preds, _ = predict_videos([wall], None, tmp_path / 'out', abaw=True, progress=False)
    err = capsys.readouterr().err
    assert (
        f'{len(preds[0].table)} of {len(preds[0].table)} windows without a prediction: no usable audio' in err
        and 'no face' in err
    )
    lines = (tmp_path / 'out' / 'abaw_expr.txt').read_text().splitlines()[1:]
    assert len(lines) == 20 and all(l.endswith(',-1') for l in lines) and 'written as -1' in err
    assert pd.read_csv(tmp_path / 'out' / 'wall.csv')['audio_db'].isna().all()  # no audio: empty, not a number


def test_truncated_video_is_reported(tmp_path, capsys):
    from gcsa_fer.predict import predict_videos

    src = CREMAD / '1001_DFA_ANG_XX.flv'
    cut = tmp_path / 'cut.flv'
    cut.write_bytes(src.read_bytes()[: int(0.3 * src.stat().st_size)])
    preds, summary = predict_videos([cut], None, None, progress=False)
    assert summary['status'][0] == 'ok' and 'truncated' in summary['notes'][0]
    assert 'truncated' in capsys.readouterr().err


def test_same_file_name_in_two_folders(tmp_path):
    from gcsa_fer.predict import predict_videos

    for d in ('a', 'b'):
        (tmp_path / d).mkdir()
        shutil.copy(CREMAD / '1001_DFA_ANG_XX.flv', tmp_path / d / 'clip.flv')
    _, s = predict_videos(
        [tmp_path / 'a' / 'clip.flv', tmp_path / 'b' / 'clip.flv'], None, tmp_path / 'o', progress=False, plot=False
    )
    assert list(s['output']) == ['a_clip.csv', 'b_clip.csv'] and (tmp_path / 'o' / 'a_clip.csv').exists()
    assert s['windows_av'].dtype.kind == 'i'


@pytest.mark.training
def test_training_finds_a_planted_expression_on_unseen_subjects(tmp_path):
    "RHCNN on a face folder where 'happy' is a bright mouth bar on each subject's own noisy face: fold 1 of 3 by subject."
    m = training_cases.planted_faces(tmp_path)
    assert m['n_test'] == 20
    # min 0.95 (median 1.00) over 5 seeds x ATEN_CPU_CAPABILITY default/avx2 x OMP_NUM_THREADS 1/2: tests/margins.md
    assert m['accuracy'] >= 0.8, m


@pytest.mark.training
def test_short_training_on_real_photos_runs_by_subject(tmp_path):
    "London dev, fold 1 of 3 by subject, 40 epochs at 32 px: the pipeline on real photos, not an accuracy (tests/margins.md)."
    m = training_cases.london_fold(tmp_path)
    assert m['n_test'] == 34 and m['n_train'] == 58
    # no bound on accuracy: over 4 seeds x 2 kernels x 2 thread counts it ranged from chance to 0.65 (tests/margins.md);
    # what the networks reach on these photos is measured by `gcsa_fer train` (results/faces/), not by a unit test
    assert 0 <= m['accuracy'] <= 1 and 0 <= m['within_subject'] <= 1

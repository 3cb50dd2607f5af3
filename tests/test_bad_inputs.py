"The bad-input corpus (issue: reliability): each bad input gives a clear, early error naming the file and line, or a documented, reported degradation."

import os
import shutil
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from gcsa_fer import cli
from gcsa_fer.data import Ravdess, shipped_data_dir

SHIPPED = shipped_data_dir()


def _ravdess_copy(tmp: Path) -> Path:
    "A RAVDESS root whose CSVs can be edited: the audio folders are links to the shipped ones."
    root = tmp / 'rav'
    (root / 'ravdess_speech').mkdir(parents=True)
    (root / 'ravdess_au').mkdir()
    for d in (SHIPPED / 'ravdess_speech').glob('Actor_*'):
        os.symlink(d, root / 'ravdess_speech' / d.name)
    shutil.copy(SHIPPED / 'ravdess_speech' / 'manifest.csv', root / 'ravdess_speech' / 'manifest.csv')
    shutil.copy(SHIPPED / 'ravdess_au' / 'au_features.csv', root / 'ravdess_au' / 'au_features.csv')
    return root


def _edit(path: Path, row: int, col: str, value):
    df = pd.read_csv(path)
    df[col] = df[col].astype(object)
    df.loc[row, col] = value
    df.to_csv(path, index=False)


@pytest.mark.parametrize(
    'col,value,error',
    [
        ('affwild2_expr_label', 99, "line 5: affwild2_expr_label 99 is not a class index 0-7"),
        ('affwild2_expr_label', -5, "line 5: affwild2_expr_label -5 is not a class index"),
        ('affwild2_expr_label', 'x', "line 5: affwild2_expr_label 'x' is not a class index"),
        ('suggested_split', 'trian', "line 5: suggested_split 'trian' is not train, val or test"),
        ('path', 'somewhere/else.opus', "line 5: path 'somewhere/else.opus' is not Actor_NN/<file>"),
    ],
)
def test_bad_ravdess_manifest_values(tmp_path, col, value, error):
    root = _ravdess_copy(tmp_path)
    m = root / 'ravdess_speech' / 'manifest.csv'
    _edit(m, 3, col, value)
    with pytest.raises(ValueError) as e:
        Ravdess(root, 'train', ('audio',))
    assert error in str(e.value) and str(m) in str(e.value)


def test_nan_au_value(tmp_path):
    root = _ravdess_copy(tmp_path)
    f = root / 'ravdess_au' / 'au_features.csv'
    _edit(f, 10, 'AU12_r', float('nan'))
    with pytest.raises(
        ValueError, match=r"au_features.csv: 1 bad value\(s\): line 12: AU12_r nan is not a finite number"
    ):
        Ravdess(root, 'all', ('features',))


@pytest.mark.parametrize(
    'damage,error',
    [
        (lambda b: b[: int(0.4 * len(b))], 'looks cut off'),
        (lambda b: b'', 'the file is empty'),
        (lambda b: b.replace(b'affwild2_expr_label', b'label_x', 1), "missing column(s) ['affwild2_expr_label']"),
        (lambda b: b[: b.index(b'\n', int(0.4 * len(b))) + 1], 'are not in it'),  # cut at a line end: rows lost
    ],
)
def test_damaged_manifest(tmp_path, damage, error):
    root = _ravdess_copy(tmp_path)
    m = root / 'ravdess_speech' / 'manifest.csv'
    m.write_bytes(damage(m.read_bytes()))
    with pytest.raises(ValueError) as e:
        Ravdess(root, 'train', ('audio',))
    assert error in str(e.value) and 'manifest.csv' in str(e.value)


def test_windows_line_endings_and_bom_are_fine(tmp_path):
    root = _ravdess_copy(tmp_path)
    m = root / 'ravdess_speech' / 'manifest.csv'
    m.write_bytes(b'\xef\xbb\xbf' + m.read_bytes().replace(b'\n', b'\r\n'))
    assert len(Ravdess(root, 'all', ('audio',))) == 1440


@pytest.mark.parametrize(
    'argv,error',
    [
        (['ablate', '--preset', 'nope'], "unknown preset 'nope'"),
        (['ablate', '--set', 'no_such_field=1'], "unknown configuration field 'no_such_field'"),
        (['ablate', '--set', 'epochs=0'], 'epochs must be at least 1'),
        (
            ['ablate', '--preset', 'ravdess-cpu', '--folds', '9', '--list'],
            'fold must be 0 (the fixed split) or 1-6, got 9',
        ),
        (['ablate', '--preset', 'ravdess-cpu', '--seeds', '-1', '--list'], 'seed must be an integer from 0 to'),
        (['predict', 'x.mp4', '--hop', '0'], 'argument --hop: must be positive'),
        (['predict', 'x.mp4', '--window', '-1'], 'argument --window: must be positive'),
        (['predict', 'x.mp4', '--device', 'cuda'], "no CUDA GPU is available"),
        (['train', '--data', '/no/such/folder', '--out', 'o'], 'does not exist'),
        (['export-model', 'runs/none', '--out', 'models/default'], 'already holds a model'),
        (['report', '--runs', '/no/such/runs', '--out', 'o'], 'no such folder'),
        (
            ['run', '--dataset', 'synthetic', '--out', '/proc/gcsa-fer/run'],
            '--out /proc/gcsa-fer/run: cannot be written',
        ),
        (['predict', 'x.mp4', '--out', '/proc/gcsa-fer/p'], '--out /proc/gcsa-fer/p: cannot be written'),
        (
            ['ablate', '--preset', 'ravdess-cpu', '--out', '/proc/gcsa-fer/a'],
            '--out /proc/gcsa-fer/a: cannot be written',
        ),
        (
            ['train', '--data', '/no/such/folder', '--out', '/proc/gcsa-fer/t'],
            '--out /proc/gcsa-fer/t: cannot be written',
        ),
    ],
)
def test_cli_user_mistakes_are_one_line_and_exit_2(argv, error, capsys):
    import torch

    if 'cuda' in argv and torch.cuda.is_available():
        pytest.skip('a GPU is present')
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and error in err and 'Traceback' not in err, err


def test_abaw_label_file_with_bom_and_crlf(tmp_path):
    from gcsa_fer.data import read_expr_labels, EXPR_HEADER

    f = tmp_path / 'v.txt'
    f.write_bytes('\ufeff'.encode() + (EXPR_HEADER + '\r\n0\r\n-1\r\n4\r\n').encode())
    assert read_expr_labels(f).tolist() == [0, -1, 4]


def test_nan_audio_keeps_its_reason(tmp_path, capsys):
    "An audio file with NaN samples: the error says so (not only 'no video stream')."
    import soundfile as sf
    from gcsa_fer.predict import predict_videos
    from gcsa_fer.models import load_model

    x = np.zeros(16000, np.float32)
    x[100] = np.nan
    sf.write(tmp_path / 'nan.wav', x, 16000, subtype='FLOAT')
    _, s = predict_videos(
        [tmp_path / 'nan.wav'],
        load_model(Path(__file__).resolve().parent.parent / 'models' / 'default'),
        None,
        progress=False,
    )
    assert s['status'][0] == 'failed' and 'NaN or infinite samples' in s['error'][0]
    assert 'NaN or infinite samples' in capsys.readouterr().err


def test_variable_frame_rate_video(tmp_path):
    "Frames at irregular times (a variable frame rate): key frames follow the timestamps, not a frame count."
    import av
    from gcsa_fer.key_frames import decode_key_frames

    path = tmp_path / 'vfr.mkv'
    times_ms = [0, 40, 80, 400, 440, 1200, 1240, 1280, 2000]  # bursts and gaps
    with av.open(str(path), 'w') as c:
        s = c.add_stream('mpeg4', rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, 'yuv420p'
        from fractions import Fraction

        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_ms):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format='rgb24')
            f.pts = t
            f.time_base = Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    kf = decode_key_frames(path, hop=0.5)
    np.testing.assert_allclose(kf['times'], np.array(times_ms) / 1000, atol=1e-3)
    shown = kf['times'][kf['key_index']]
    assert np.all(shown <= kf['centres'] + 1e-9)  # the frame on screen at each centre
    assert [round(float(t), 2) for t in shown[:4]] == [0.08, 0.44, 1.24, 1.28]


def test_explorer_and_timeline_axes():
    "The log-mel axis uses the model's hop; the timeline stops at the end of the clip and names the window length."
    import matplotlib

    matplotlib.use('Agg')
    from gcsa_fer.viz import plot_logmel
    from gcsa_fer.predict import predict_video, plot_timeline
    from gcsa_fer.models import load_model

    res = {'logmel': np.zeros((40, 151), np.float32), 'hop_seconds': 0.02}
    fig = plot_logmel(res)
    assert abs(fig.axes[0].get_xlim()[1] - 151 * 0.02) < 1e-6
    lm = load_model(Path(__file__).resolve().parent.parent / 'models' / 'default')
    clip = SHIPPED / 'cremad_sample' / 'VideoFlash' / '1001_DFA_ANG_XX.flv'
    pr = predict_video(lm, clip)
    fig = plot_timeline(pr)
    assert fig.axes[0].get_xlim()[1] <= pr.table['end'].max() + 1e-6
    assert f"the {lm.cfg.preprocess.clip_seconds:g} s window" in fig.axes[1].get_xlabel()


def test_line_numbers_count_blank_lines_and_a_missing_final_newline_is_fine(tmp_path):
    from gcsa_fer.data import read_table

    f = tmp_path / 'm.csv'
    f.write_text('path,label\na.wav,1\n\nb.wav,9\n')
    with pytest.raises(ValueError, match='line 4: label 9'):
        read_table(f, ['path'], 'label')
    f.write_text('path,label\na.wav,1\nb.wav,2')  # no final newline, but a whole last row
    assert len(read_table(f, ['path'], 'label')) == 2


def test_empty_and_corrupt_images_are_media_errors(tmp_path):
    from gcsa_fer.faces import read_image
    from gcsa_fer.preprocess import MediaError

    (tmp_path / 'empty.jpg').write_bytes(b'')
    (tmp_path / 'junk.png').write_bytes(b'\x89PNG junk')
    with pytest.raises(MediaError, match='empty file'):
        read_image(tmp_path / 'empty.jpg')
    with pytest.raises(MediaError, match='not a readable image'):
        read_image(tmp_path / 'junk.png')


def test_too_few_subjects_for_the_folds():
    from gcsa_fer.faces import subject_folds

    with pytest.raises(ValueError, match='cannot both train and validate'):
        subject_folds(['a', 'b', 'c'], 1, n_folds=2)


def test_a_video_named_summary_does_not_overwrite_the_summary(tmp_path):
    from gcsa_fer.predict import predict_videos

    shutil.copy(SHIPPED / 'cremad_sample' / 'VideoFlash' / '1001_DFA_ANG_XX.flv', tmp_path / 'summary.flv')
    _, s = predict_videos([tmp_path / 'summary.flv'], None, tmp_path / 'o', progress=False, plot=False)
    assert s['output'][0] != 'summary.csv' and (tmp_path / 'o' / s['output'][0]).exists()
    assert 'status' in pd.read_csv(tmp_path / 'o' / 'summary.csv').columns


def test_face_model_errors_are_not_decode_errors(monkeypatch):
    "A detector that cannot run is said once, before any file, not reported as a broken video."
    from gcsa_fer import detect
    from gcsa_fer.predict import predict_videos
    from gcsa_fer.models import load_model

    lm = load_model(Path(__file__).resolve().parent.parent / 'models' / 'faces')

    def broken():
        raise detect.DetectorUnavailable('OpenCV has no CascadeClassifier here')

    detect.resolve_detector.cache_clear()
    monkeypatch.setattr(detect, '_haar', broken)
    with pytest.raises(detect.DetectorUnavailable):
        predict_videos([SHIPPED / 'cremad_sample' / 'VideoFlash' / '1001_DFA_ANG_XX.flv'], lm, None, progress=False)
    with pytest.raises(SystemExit) as e:
        cli.main(
            [
                'predict',
                str(SHIPPED / 'cremad_sample' / 'VideoFlash' / '1001_DFA_ANG_XX.flv'),
                '--quiet',
                '--out',
                '/tmp/gcsa_unused',
            ]
        )
    assert e.value.code == 2
    detect.resolve_detector.cache_clear()


# ---- Reliability, round 2 (issue 25): one-line CLI answers, upright media, readers that check, atomic writes ----

REPO = Path(__file__).resolve().parent.parent
CLIP = SHIPPED / 'cremad_sample' / 'VideoFlash' / '1001_DFA_ANG_XX.flv'
PHOTOS = sorted((SHIPPED / 'london_faces_dev' / 'images').glob('*/*.jpg'))


def _one_line_exit_2(argv, capsys, expected: str):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and expected in err and 'Traceback' not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    'argv',
    [
        ['predict', str(CLIP), '--quiet'],
        ['train', '--data', str(SHIPPED / 'london_faces_dev')],
        ['run', '--dataset', 'synthetic'],
        ['gan', '--dataset', 'faces'],
        ['report', '--runs', '.'],
        ['export-model', 'runs/x'],
        ['export-onnx', 'runs/x'],
        ['ablate', '--preset', 'synthetic', '--list'],
    ],
)
def test_out_that_is_a_file(tmp_path, capsys, argv):
    "Every entry point with an output folder: --out naming an existing file (or a path through one) is one line, exit 2."
    f = tmp_path / 'a_file'
    f.write_text('x')
    _one_line_exit_2(argv + ['--out', str(f)], capsys, f"--out {f}: is a file")
    _one_line_exit_2(argv + ['--out', str(f / 'sub')], capsys, 'is a file, so no folder can be made there')


@pytest.mark.parametrize(
    'argv,expected',
    [
        (['predict', str(CLIP), '--run', '{tmp}/cfg.json'], 'no config.json beside it'),
        (['run', '--config', '{tmp}/cfg.json', '--out', '{tmp}/o'], 'cfg.json: not a configuration (not JSON'),
        (['convert', '{tmp}/cfg.json', '--trust-pickle'], 'cfg.json is not a readable PyTorch file'),
        (['export-model', '{tmp}', '--out', '{tmp}/m'], 'not found: is'),
        (['ablate', '--preset', 'synthetic', '--only', '99', '--out', '{tmp}/ab'], '--only [99]: outside the grid of'),
        (['predict', str(CLIP), '--bogus'], 'unrecognized arguments: --bogus (see gcsa_fer --help)'),
    ],
)
def test_more_user_mistakes_are_one_line(tmp_path, capsys, argv, expected):
    (tmp_path / 'cfg.json').write_text('{"dataset": "synth')  # a configuration cut off
    _one_line_exit_2([a.replace('{tmp}', str(tmp_path)) for a in argv], capsys, expected)


@pytest.mark.parametrize(
    'cmd',
    [
        ['ablate', '--list'],
        ['run', '--dataset', 'synthetic', '--out', 'o'],
        ['gan', '--dataset', 'synthetic', '--out', 'o'],
        ['train', '--data', 'd', '--out', 'o'],
    ],
)
def test_one_set_syntax(cmd, capsys):
    "--set is the same option in every sub-command: repeated or listed, and a malformed or repeated item is one line, exit 2."
    p = cli.build_parser()
    assert (
        cli._kv(p.parse_args(cmd + ['--set', 'epochs=2', '--set', 'lr=0.5']).set)
        == cli._kv(p.parse_args(cmd + ['--set', 'epochs=2', 'lr=0.5']).set)
        == {'epochs': 2, 'lr': 0.5}
    )
    _one_line_exit_2(cmd + ['--set', 'epochs'], capsys, "--set expects NAME=VALUE, got 'epochs'")
    _one_line_exit_2(cmd + ['--set', 'epochs=2', '--set', 'epochs=3'], capsys, '--set epochs is given twice')


def _stored_sideways(photo: Path, out: Path, orientation: int) -> Path:
    "The photo as a phone stores it: pixels turned, and the EXIF tag that turns them back."
    from PIL import Image

    up = np.asarray(Image.open(photo).convert('RGB'))
    stored = np.rot90(up, 1 if orientation == 6 else -1)  # 6: view by turning 90 degrees clockwise; 8: anticlockwise
    im = Image.fromarray(np.ascontiguousarray(stored))
    ex = im.getexif()
    ex[0x0112] = orientation
    im.save(out, exif=ex.tobytes(), quality=95)
    return out


@pytest.mark.parametrize('orientation', [6, 8])
def test_phone_photo_with_exif_orientation_is_read_upright(tmp_path, orientation):
    import cv2
    from gcsa_fer.detect import detect_face
    from gcsa_fer.faces import read_image
    from gcsa_fer.predict import predict_videos
    from gcsa_fer.models import load_model

    f = _stored_sideways(PHOTOS[0], tmp_path / 'phone.jpg', orientation)
    raw = cv2.cvtColor(
        cv2.imdecode(np.fromfile(str(f), np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION), cv2.COLOR_BGR2RGB
    )
    assert detect_face(raw, 'haar') is None  # as stored, the face lies on its side: not found
    img = read_image(f)
    assert (
        np.abs(img.astype(int) - read_image(PHOTOS[0])).mean() < 8
    )  # the photo as it was taken (but for JPEG's losses)
    assert detect_face(img, 'haar') is not None
    _, s = predict_videos([f], load_model(REPO / 'models' / 'faces'), None, progress=False)
    assert s['windows_video'][0] == 1


def test_rotated_phone_video_is_read_upright(tmp_path, face_frames):
    "A video whose container says 'turn 90 degrees clockwise to view' (a phone held upright): frames and faces upright."
    import av
    from gcsa_fer.detect import detect_face
    from gcsa_fer.preprocess import read_video
    from gcsa_fer.predict import predict_video
    from gcsa_fer.models import load_model

    if not hasattr(av.video.stream.VideoStream, 'set_display_rotation'):
        pytest.skip('this PyAV cannot write a display rotation')
    path = tmp_path / 'phone.mp4'
    stored = [
        np.ascontiguousarray(np.rot90(f, 1)) for f in face_frames
    ]  # what the sensor saw: the picture turned anticlockwise
    with av.open(str(path), 'w') as c:
        s = c.add_stream('mpeg4', rate=10)
        s.width, s.height, s.pix_fmt = stored[0].shape[1], stored[0].shape[0], 'yuv420p'
        s.set_display_rotation(-90)
        for f in stored:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format='rgb24')):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    assert detect_face(stored[0], 'haar') is None  # without the rotation: no face
    frames, _ = read_video(path)
    assert frames.shape[1:3] == face_frames.shape[1:3] and detect_face(frames[0], 'haar') is not None
    pr = predict_video(load_model(REPO / 'models' / 'faces'), path)
    assert (pr.table['faces'] > 0).all()


def test_audio_longer_than_the_video_is_predicted_audio_only(tmp_path, face_frames, video_writer, tone):
    from gcsa_fer.models import default_predictor
    from gcsa_fer.predict import predict_video

    path = video_writer(
        tmp_path / 'short_video.mp4', face_frames[:10], fps=10, audio=np.tile(tone, 3)
    )  # 1 s of video, 3 s of sound
    pr = predict_video(default_predictor(), path)
    t = pr.table
    assert len(t) == 6 and list(t['key_frame'][2:]) == [-1] * 4 and (t['source'][2:] == 'audio').all()
    assert (t['reason'][2:] == 'after the video ends').all() and t['end'].max() == pytest.approx(3.0, abs=0.05)
    assert any('after the video ends: windows 2-5 are audio only' in n for n in pr.notes), pr.notes


def test_cover_art_is_not_a_video(tmp_path, tone):
    "An MP3 with an album cover (a one-picture 'video' stream): the whole audio is predicted."
    import av
    from gcsa_fer.models import default_predictor
    from gcsa_fer.predict import predict_video
    from gcsa_fer.preprocess import read_video, MediaError

    path = tmp_path / 'song.mp3'
    with av.open(str(path), 'w') as c:
        a = c.add_stream('mp3', rate=16000, layout='mono')
        v = c.add_stream('mjpeg', rate=1)
        v.width = v.height = 32
        v.pix_fmt = 'yuvj420p'
        v.disposition = av.stream.Disposition.attached_pic
        for p in v.encode(
            av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format='rgb24').reformat(format='yuvj420p')
        ):
            c.mux(p)
        for p in v.encode():
            c.mux(p)
        fr = av.AudioFrame.from_ndarray(np.tile(tone, 3)[None], format='flt', layout='mono')
        fr.sample_rate = 16000
        for p in a.encode(fr):
            c.mux(p)
        for p in a.encode():
            c.mux(p)
    pr = predict_video(default_predictor(), path)
    assert len(pr.table) >= 6 and (pr.table['source'] == 'audio').all() and 'no video stream' in pr.notes
    with pytest.raises(MediaError, match='only a still cover picture'):
        read_video(path)


def _faces(tmp: Path, classes=('happy', 'neutral'), n: int = 2) -> Path:
    root = tmp / 'faces'
    for c in classes:
        (root / c).mkdir(parents=True)
        for p in sorted((SHIPPED / 'london_faces_dev' / 'images' / c).glob('*.jpg'))[:n]:
            shutil.copy(p, root / c / p.name)
    return root


def test_train_with_one_class_is_one_line(tmp_path, capsys):
    root = _faces(tmp_path, ('happy',))
    _one_line_exit_2(
        ['train', '--data', str(root), '--out', str(tmp_path / 'o')],
        capsys,
        'every item is Happiness; training a classifier needs at least 2 classes',
    )


@pytest.mark.parametrize(
    'damage,expected',
    [
        (lambda r: (r / 'fear').mkdir(), 'class folder(s) fear hold no images'),
        (
            lambda r: ((r / 'fear').mkdir(), (r / 'fear' / 'a.heic').write_bytes(b'x')),
            'class folder(s) fear (only .heic files) hold no images',
        ),
        (
            lambda r: shutil.copy(next((r / 'happy').iterdir()), r / 'neutral' / 'copy.jpg'),
            'the same file under two labels: happy/',
        ),
        (lambda r: (r / 'happy' / 'broken.jpg').write_bytes(b'not a jpeg'), 'happy/broken.jpg (not a readable image'),
        (lambda r: (r / 'happy' / 'empty.png').write_bytes(b''), 'happy/empty.png (empty file)'),
    ],
)
def test_face_folder_checks_its_files(tmp_path, damage, expected):
    from gcsa_fer.faces import FaceFolder

    root = _faces(tmp_path)
    damage(root)
    with pytest.raises(ValueError) as e:
        FaceFolder(root)
    assert expected in str(e.value) and str(root) in str(e.value), str(e.value)


@pytest.mark.parametrize(
    'rows,expected',
    [
        (
            ['images/happy/{h},happy,a', 'images/happy/{h},neutral,b'],
            "line 3: images/happy/{h} is also on line 2 with another label ('happy' there, 'neutral' here)",
        ),
        (
            ['images/happy/{h},happy,a', './images/happy/{h},happy,a'],
            'line 3: ./images/happy/{h} is also on line 2; list each file once',
        ),
    ],
)
def test_manifest_lists_a_file_twice(tmp_path, rows, expected):
    "The issue's case: the same file under two labels used to end in a fold-count traceback about subjects."
    from gcsa_fer.faces import FaceFolder

    h = sorted((SHIPPED / 'london_faces_dev' / 'images' / 'happy').glob('*.jpg'))[0].name
    root = tmp_path / 'm'
    (root / 'images' / 'happy').mkdir(parents=True)
    shutil.copy(SHIPPED / 'london_faces_dev' / 'images' / 'happy' / h, root / 'images' / 'happy')
    (root / 'manifest.csv').write_text('path,label,subject\n' + '\n'.join(rows).format(h=h) + '\n')
    with pytest.raises(ValueError) as e:
        FaceFolder(root, fold=1, n_folds=2)
    assert expected.format(h=h) in str(e.value) and 'manifest.csv' in str(e.value), str(e.value)


# -- atomic writes: a killed writer, a full disk --

KILLED = r'''
import sys, time
from pathlib import Path
from gcsa_fer import core, files
what, target = sys.argv[1], Path(sys.argv[2])
def stall(*a): print('written', flush=True); time.sleep(120)            # killed here: between the write and the rename
if what == 'half':                                                       # killed in the middle of writing the file
    def slow(t):
        with open(t, 'w') as f: f.write('new ' * 10000); f.flush(); print('written', flush=True); time.sleep(120); f.write('end')
    core.atomic_write(target, slow)
files._fsync = stall
if what == 'checkpoint':
    import torch; from gcsa_fer.checkpoint import save_checkpoint; save_checkpoint({'v': torch.full((10000,), 2.0)}, target)
if what == 'metrics':
    from gcsa_fer.experiment import _write_metrics; _write_metrics(target.parent, {'status': 'complete', 'v': 2}, 'now')
if what == 'model':
    from gcsa_fer.model_export import export_default_model; export_default_model(sys.argv[3], target)
'''


@pytest.mark.parametrize('what', ['half', 'checkpoint', 'metrics', 'model'])
def test_killed_writer_leaves_the_previous_version(tmp_path, what, tiny_run):
    import signal
    import subprocess
    import sys
    import torch
    from gcsa_fer.checkpoint import save_checkpoint, load_checkpoint
    from gcsa_fer.models import load_model
    from gcsa_fer.model_export import export_default_model

    target = {
        'half': tmp_path / 'x.txt',
        'checkpoint': tmp_path / 'last.pt',
        'metrics': tmp_path / 'metrics.json',
        'model': tmp_path / 'model',
    }[what]
    if what == 'half':
        target.write_text('old')
    if what == 'checkpoint':
        save_checkpoint({'v': torch.full((10000,), 1.0)}, target)
    if what == 'metrics':
        target.write_text('{"status": "complete", "v": 1}')
    if what == 'model':
        export_default_model(tiny_run, target, dtype='float32')
    before = {p.name: p.read_bytes() for p in ([target] if target.is_file() else sorted(target.iterdir()))}
    p = subprocess.Popen(
        [sys.executable, '-c', KILLED, what, str(target), str(tiny_run)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert p.stdout.readline().strip() == 'written', 'the writer ended before it could be killed'
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    after = {p.name: p.read_bytes() for p in ([target] if target.is_file() else sorted(target.iterdir()))}
    assert after == before  # the previous version, byte for byte
    if what == 'checkpoint':
        assert load_checkpoint(target)['v'][0] == 1.0
    if what == 'model':
        assert load_model(target).branches


def test_full_disk_during_training_keeps_the_last_epoch(tmp_path, monkeypatch):
    import errno
    from gcsa_fer import files
    from gcsa_fer.core import Config
    from gcsa_fer.data import SyntheticAV
    from gcsa_fer.datasets import Selected
    from gcsa_fer.train import Trainer

    cfg = Config(dataset='synthetic', modality='v').update(
        epochs=2, batch_size=16, visual_width=16, face_size=16, n_frames=2, device='cpu'
    )
    ds = Selected(SyntheticAV(16, cfg.preprocess, ('frames',)), ('frames',))
    Trainer(cfg, ds, ds, tmp_path, progress=False).fit(max_epochs=1)
    before = {f: (tmp_path / f).read_bytes() for f in ('last.pt', 'history.csv', 'config.json')}
    tr = Trainer(cfg, ds, ds, tmp_path, progress=False)

    def full(path):
        raise OSError(errno.ENOSPC, 'No space left on device')  # the disk fills during epoch 2

    monkeypatch.setattr(files, '_fsync', full)
    with pytest.raises(
        OSError,
        match=r'\.pt: cannot be written, no space left on device \(its previous version is kept\); free some space',
    ):
        tr.fit()
    assert {f: (tmp_path / f).read_bytes() for f in before} == before and not list(tmp_path.glob('.*tmp*'))
    monkeypatch.undo()
    tr = Trainer(cfg, ds, ds, tmp_path, progress=False)
    tr.fit()  # space again: it resumes after epoch 1
    assert tr.epoch == 2 and len(pd.read_csv(tmp_path / 'history.csv')) == 2


def test_full_disk_keeps_predictions_and_exported_model(tmp_path, tiny_run, monkeypatch):
    import errno
    from gcsa_fer import files
    from gcsa_fer.models import load_model
    from gcsa_fer.model_export import export_default_model
    from gcsa_fer.predict import predict_videos

    lm = load_model(tiny_run)
    predict_videos([CLIP], lm, tmp_path / 'p', progress=False, plot=False)
    export_default_model(tiny_run, tmp_path / 'm')
    before = {p: p.read_bytes() for d in ('p', 'm') for p in sorted((tmp_path / d).iterdir())}

    def full(path):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(files, '_fsync', full)
    with pytest.raises(
        OSError, match=r"\.csv: cannot be written, no space left on device \(its previous version is kept\)"
    ):
        predict_videos([CLIP], lm, tmp_path / 'p', progress=False, plot=False)
    with pytest.raises(
        OSError, match=r"/m: cannot be written, no space left on device \(its previous version is kept\)"
    ):
        export_default_model(tiny_run, tmp_path / 'm', dtype='float32')
    assert {p: p.read_bytes() for d in ('p', 'm') for p in sorted((tmp_path / d).iterdir())} == before
    assert not [p for p in tmp_path.rglob('.*') if 'tmp' in p.name or 'old' in p.name]


FULL = r'''
import resource, signal, sys, json
from pathlib import Path
import numpy as np, pandas as pd, torch
from gcsa_fer.checkpoint import save_checkpoint, save_weights
from gcsa_fer.core import atomic_write
d = Path(sys.argv[1]); big = np.random.default_rng(0).random((200, 100))
writers = {'last.pt': lambda v: save_checkpoint({'v': torch.full((50000,), float(v))}, d / 'last.pt'),
           'model.safetensors': lambda v: save_weights({'w': torch.full((50000,), float(v))}, d / 'model.safetensors'),
           'history.csv': lambda v: atomic_write(d / 'history.csv', pd.DataFrame(big + v).to_csv, index=False),
           'metrics.json': lambda v: atomic_write(d / 'metrics.json', lambda t: t.write_text(json.dumps({'v': v, 'x': (big + v).tolist()})))}
for w in writers.values(): w(1)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)                            # a write past the limit fails (EFBIG) instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
out = {}
for name, w in writers.items():
    try: w(2); out[name] = 'written'
    except OSError as e: out[name] = str(e)
print(json.dumps(out))
'''


def test_a_really_full_disk(tmp_path):
    "The kernel refuses the writes (a 64 kB file size limit, the way a small full file system does): the error names the file, the old one is whole."
    import json
    import subprocess
    import sys
    from gcsa_fer.checkpoint import load_checkpoint, load_weights

    r = subprocess.run([sys.executable, '-c', FULL, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for name, err in out.items():
        assert f"{tmp_path / name}: cannot be written, file too large (its previous version is kept)" in err, (
            name,
            err,
        )
    assert (
        load_checkpoint(tmp_path / 'last.pt')['v'][0] == 1.0
        and load_weights(tmp_path / 'model.safetensors')['w'][0] == 1.0
    )
    assert (
        pd.read_csv(tmp_path / 'history.csv').iloc[0, 0] < 2
        and json.loads((tmp_path / 'metrics.json').read_text())['v'] == 1
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ['history.csv', 'last.pt', 'metrics.json', 'model.safetensors']

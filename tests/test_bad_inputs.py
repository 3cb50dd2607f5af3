"The bad-input corpus (issue: reliability): each bad input gives a clear, early error naming the file and line, or a documented, reported degradation."
import os, shutil
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from gcsa_fer import cli
from gcsa_fer.data import Ravdess, shipped_data_dir

SHIPPED = shipped_data_dir()


def _ravdess_copy(tmp: Path) -> Path:
    "A RAVDESS root whose CSVs can be edited: the audio folders are links to the shipped ones."
    root = tmp / 'rav'; (root / 'ravdess_speech').mkdir(parents=True); (root / 'ravdess_au').mkdir()
    for d in (SHIPPED / 'ravdess_speech').glob('Actor_*'): os.symlink(d, root / 'ravdess_speech' / d.name)
    shutil.copy(SHIPPED / 'ravdess_speech' / 'manifest.csv', root / 'ravdess_speech' / 'manifest.csv')
    shutil.copy(SHIPPED / 'ravdess_au' / 'au_features.csv', root / 'ravdess_au' / 'au_features.csv')
    return root


def _edit(path: Path, row: int, col: str, value):
    df = pd.read_csv(path); df[col] = df[col].astype(object); df.loc[row, col] = value; df.to_csv(path, index=False)


@pytest.mark.parametrize('col,value,error', [
    ('affwild2_expr_label', 99, "line 5: affwild2_expr_label 99 is not a class index 0-7"),
    ('affwild2_expr_label', -5, "line 5: affwild2_expr_label -5 is not a class index"),
    ('affwild2_expr_label', 'x', "line 5: affwild2_expr_label 'x' is not a class index"),
    ('suggested_split', 'trian', "line 5: suggested_split 'trian' is not train, val or test"),
    ('path', 'somewhere/else.opus', "line 5: path 'somewhere/else.opus' is not Actor_NN/<file>"),
])
def test_bad_ravdess_manifest_values(tmp_path, col, value, error):
    root = _ravdess_copy(tmp_path); m = root / 'ravdess_speech' / 'manifest.csv'
    _edit(m, 3, col, value)
    with pytest.raises(ValueError) as e: Ravdess(root, 'train', ('audio',))
    assert error in str(e.value) and str(m) in str(e.value)


def test_nan_au_value(tmp_path):
    root = _ravdess_copy(tmp_path); f = root / 'ravdess_au' / 'au_features.csv'
    _edit(f, 10, 'AU12_r', float('nan'))
    with pytest.raises(ValueError, match=r"au_features.csv: 1 bad value\(s\): line 12: AU12_r nan is not a finite number"): Ravdess(root, 'all', ('features',))


@pytest.mark.parametrize('damage,error', [
    (lambda b: b[: int(0.4 * len(b))], 'looks cut off'),
    (lambda b: b'', 'the file is empty'),
    (lambda b: b.replace(b'affwild2_expr_label', b'label_x', 1), "missing column(s) ['affwild2_expr_label']"),
    (lambda b: b[: b.index(b'\n', int(0.4 * len(b))) + 1], 'are not in it'),   # cut at a line end: rows lost
])
def test_damaged_manifest(tmp_path, damage, error):
    root = _ravdess_copy(tmp_path); m = root / 'ravdess_speech' / 'manifest.csv'
    m.write_bytes(damage(m.read_bytes()))
    with pytest.raises(ValueError) as e: Ravdess(root, 'train', ('audio',))
    assert error in str(e.value) and 'manifest.csv' in str(e.value)


def test_windows_line_endings_and_bom_are_fine(tmp_path):
    root = _ravdess_copy(tmp_path); m = root / 'ravdess_speech' / 'manifest.csv'
    m.write_bytes(b'\xef\xbb\xbf' + m.read_bytes().replace(b'\n', b'\r\n'))
    assert len(Ravdess(root, 'all', ('audio',))) == 1440


@pytest.mark.parametrize('argv,error', [
    (['ablate', '--preset', 'nope'], "unknown preset 'nope'"),
    (['ablate', '--set', 'no_such_field=1'], "unknown configuration field 'no_such_field'"),
    (['ablate', '--set', 'epochs=0'], 'epochs must be at least 1'),
    (['predict', 'x.mp4', '--hop', '0'], 'argument --hop: must be positive'),
    (['predict', 'x.mp4', '--window', '-1'], 'argument --window: must be positive'),
    (['predict', 'x.mp4', '--device', 'cuda'], "no CUDA GPU is available"),
    (['train', '--data', '/no/such/folder', '--out', 'o'], 'does not exist'),
    (['export-model', 'runs/none', '--out', 'models/default'], 'already holds a model'),
    (['report', '--runs', '/no/such/runs', '--out', 'o'], 'no such folder'),
])
def test_cli_user_mistakes_are_one_line_and_exit_2(argv, error, capsys):
    import torch
    if 'cuda' in argv and torch.cuda.is_available(): pytest.skip('a GPU is present')
    with pytest.raises(SystemExit) as e: cli.main(argv)
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
    x = np.zeros(16000, np.float32); x[100] = np.nan
    sf.write(tmp_path / 'nan.wav', x, 16000, subtype='FLOAT')
    _, s = predict_videos([tmp_path / 'nan.wav'], load_model(Path(__file__).resolve().parent.parent / 'models' / 'default'), None, progress=False)
    assert s['status'][0] == 'failed' and 'NaN or infinite samples' in s['error'][0]
    assert 'NaN or infinite samples' in capsys.readouterr().err


def test_variable_frame_rate_video(tmp_path):
    "Frames at irregular times (a variable frame rate): key frames follow the timestamps, not a frame count."
    import av
    from gcsa_fer.predict import decode_key_frames
    path = tmp_path / 'vfr.mkv'
    times_ms = [0, 40, 80, 400, 440, 1200, 1240, 1280, 2000]           # bursts and gaps
    with av.open(str(path), 'w') as c:
        s = c.add_stream('mpeg4', rate=25); s.width, s.height, s.pix_fmt = 64, 48, 'yuv420p'
        from fractions import Fraction
        s.time_base = Fraction(1, 1000); s.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_ms):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format='rgb24'); f.pts = t; f.time_base = Fraction(1, 1000)
            for p in s.encode(f): c.mux(p)
        for p in s.encode(): c.mux(p)
    kf = decode_key_frames(path, hop=0.5)
    np.testing.assert_allclose(kf['times'], np.array(times_ms) / 1000, atol=1e-3)
    shown = kf['times'][kf['key_index']]
    assert np.all(shown <= kf['centres'] + 1e-9)                       # the frame on screen at each centre
    assert [round(float(t), 2) for t in shown[:4]] == [0.08, 0.44, 1.24, 1.28]


def test_explorer_and_timeline_axes():
    "The log-mel axis uses the model's hop; the timeline stops at the end of the clip and names the window length."
    import matplotlib; matplotlib.use('Agg')
    from gcsa_fer.viz import plot_logmel
    from gcsa_fer.predict import predict_video, plot_timeline
    from gcsa_fer.models import load_model
    res = {'logmel': np.zeros((40, 151), np.float32), 'hop_seconds': 0.02}
    fig = plot_logmel(res); assert abs(fig.axes[0].get_xlim()[1] - 151 * 0.02) < 1e-6
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
    with pytest.raises(ValueError, match='line 4: label 9'): read_table(f, ['path'], 'label')
    f.write_text('path,label\na.wav,1\nb.wav,2')                    # no final newline, but a whole last row
    assert len(read_table(f, ['path'], 'label')) == 2


def test_empty_and_corrupt_images_are_media_errors(tmp_path):
    from gcsa_fer.faces import read_image
    from gcsa_fer.preprocess import MediaError
    (tmp_path / 'empty.jpg').write_bytes(b'')
    (tmp_path / 'junk.png').write_bytes(b'\x89PNG junk')
    with pytest.raises(MediaError, match='empty file'): read_image(tmp_path / 'empty.jpg')
    with pytest.raises(MediaError, match='not a readable image'): read_image(tmp_path / 'junk.png')


def test_too_few_subjects_for_the_folds():
    from gcsa_fer.faces import subject_folds
    with pytest.raises(ValueError, match='cannot both train and validate'): subject_folds(['a', 'b', 'c'], 1, n_folds=2)


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
    def broken(): raise detect.DetectorUnavailable('OpenCV has no CascadeClassifier here')
    detect.resolve_detector.cache_clear(); monkeypatch.setattr(detect, '_haar', broken)
    with pytest.raises(detect.DetectorUnavailable): predict_videos([SHIPPED / 'cremad_sample' / 'VideoFlash' / '1001_DFA_ANG_XX.flv'], lm, None, progress=False)
    with pytest.raises(SystemExit) as e: cli.main(['predict', str(SHIPPED / 'cremad_sample' / 'VideoFlash' / '1001_DFA_ANG_XX.flv'), '--quiet', '--out', '/tmp/gcsa_unused'])
    assert e.value.code == 2
    detect.resolve_detector.cache_clear()

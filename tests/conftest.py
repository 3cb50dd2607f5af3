"Fixtures that write small media files in the published layouts (tests of gcsa_fer.preprocess, data, cache)."

import contextlib
import shutil
from pathlib import Path
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
CREMAD = REPO / 'data' / 'cremad_sample'


def write_video(path, frames, fps=25, audio=None, sr=16000):
    "Write uint8 RGB `frames` (N x H x W x 3) as an mpeg4 video, with a mono PCM track when `audio` is given."
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), 'w') as c:
        vs = c.add_stream('mpeg4', rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], 'yuv420p'
        ast = c.add_stream('pcm_s16le', rate=sr, layout='mono') if audio is not None else None
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format='rgb24')):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if ast is not None:
            a = (np.clip(audio, -1, 1) * 32767).astype(np.int16)[None]
            af = av.AudioFrame.from_ndarray(a, format='s16', layout='mono')
            af.sample_rate = sr
            for p in ast.encode(af):
                c.mux(p)
            for p in ast.encode():
                c.mux(p)
    return path


@pytest.fixture(scope='session')
def face_frames():
    "Twelve real 480x360 RGB frames with a face (CREMA-D actor 1001)."
    from gcsa_fer.preprocess import read_video

    frames, _ = read_video(CREMAD / 'VideoFlash' / '1001_DFA_HAP_XX.flv')
    return frames[::5][:12]


@pytest.fixture
def tone():
    "One second of a 440 Hz tone at 16 kHz."
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)


@pytest.fixture
def video_writer():
    return write_video


@pytest.fixture
def cremad_copy(tmp_path):
    "A CREMA-D layout with two real FLV clips."
    d = tmp_path / 'cremad' / 'VideoFlash'
    d.mkdir(parents=True)
    for n in ('1001_DFA_ANG_XX', '1001_DFA_SAD_XX'):
        shutil.copy(CREMAD / 'VideoFlash' / f'{n}.flv', d)
    return tmp_path / 'cremad'


@pytest.fixture(scope='session')
def tiny_run():
    "The tiny synthetic audio-visual run, trained once per machine with one torch thread (much faster than two on a busy 2-core machine)."
    from gcsa_fer.testing import tiny_synthetic_run

    with torch_threads(1):
        return tiny_synthetic_run()


@contextlib.contextmanager
def torch_threads(n_threads: int = 1):
    "Run a block with `n_threads` torch threads, then give the count back: tiny models on a shared 2-core machine are several times faster on one thread than on two that fight other jobs."
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture
def one_thread():
    "A test run with one torch thread (`torch_threads(1)`)."
    with torch_threads(1):
        yield


def pytest_configure(config):
    config.addinivalue_line(
        'markers',
        "training: bounds a training outcome; `make test-cpus` runs these under each "
        "ATEN_CPU_CAPABILITY and OMP_NUM_THREADS (measured margins: tests/margins.md)",
    )

"Bad and edge-case media for gcsa_fer.preprocess."

import numpy as np
import pytest
import torch
from gcsa_fer.core import PreprocessConfig
from gcsa_fer.preprocess import (
    MediaError,
    read_video,
    video_faces,
    load_audio,
    preprocess_clip,
    LogMel,
    SpecAugment,
    audio_windows,
    clip_logmel,
)
from conftest import CREMAD

CFG = PreprocessConfig(n_frames=8, face_size=32)


def test_truncated_video(tmp_path):
    p = tmp_path / 'cut.flv'
    p.write_bytes((CREMAD / 'VideoFlash' / '1001_DFA_ANG_XX.flv').read_bytes()[:3000])
    with pytest.raises(MediaError, match='cut.flv'):
        video_faces(p, CFG)


def test_non_video_file(tmp_path):
    p = tmp_path / 'notes.mp4'
    p.write_text('not a video at all\n' * 50)
    with pytest.raises(MediaError, match='notes.mp4: not a readable media file'):
        read_video(p)
    with pytest.raises(ValueError, match='notes.mp4'):
        load_audio(p, CFG)


def test_video_without_audio(tmp_path, face_frames, video_writer):
    p = video_writer(tmp_path / 'mute.mp4', face_frames)
    with pytest.raises(MediaError, match='mute.mp4: no audio track'):
        load_audio(p, CFG)
    v = video_faces(p, CFG)  # the video itself is fine
    assert v['frames'].shape == (8, 3, 32, 32) and v['face_mask'].all()


def test_silent_audio(tmp_path):
    import soundfile as sf

    p = tmp_path / 'silence.wav'
    sf.write(p, np.zeros(16000, np.float32), 16000)
    with pytest.raises(MediaError, match='silence.wav: silent audio'):
        load_audio(p, CFG)
    w = load_audio(p, CFG, allow_silent=True)
    assert torch.isfinite(clip_logmel(w, CFG)).all()


def test_fewer_frames_than_T(tmp_path, face_frames, video_writer):
    p = video_writer(tmp_path / 'short.mp4', face_frames[:3])
    v = video_faces(p, CFG)
    assert v['frames'].shape == (8, 3, 32, 32) and v['n_source'] == 3
    assert (np.diff(v['times'].numpy()) >= 0).all()


def test_no_face_in_any_frame(tmp_path, video_writer):
    rng = np.random.default_rng(0)
    p = video_writer(tmp_path / 'noise.mp4', rng.integers(0, 255, (6, 96, 128, 3), dtype=np.uint8))
    v = video_faces(p, CFG)
    assert v['face_mask'].sum() == 0 and v['frames'].shape == (8, 3, 32, 32)
    assert video_faces(p, CFG, detector='none')['face_mask'].all()


def test_container_audio_resampled(tmp_path, face_frames, tone, video_writer):
    p = video_writer(tmp_path / 'av.avi', face_frames, audio=tone, sr=8000)
    w = load_audio(p, CFG)
    assert abs(len(w) - 32000) < 400  # 2 s at 8 kHz -> 16 kHz
    out = preprocess_clip(p, CFG)
    assert out['audio'].shape == (1, 64, 301) and out['frames'].shape == (8, 3, 32, 32)


def test_windows_and_specaugment():
    w = torch.randn(48000)
    assert audio_windows(w, [0.0, 1.5, 2.99], CFG).shape == (3, 16000)
    spec = LogMel(CFG)(w[:16000]).expand(3, 1, 64, 101).clone()
    sa = SpecAugment(CFG)
    assert torch.equal(sa.eval()(spec), spec)
    assert sa.train()(spec).shape == spec.shape

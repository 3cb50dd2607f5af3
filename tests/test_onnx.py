"ONNX export of each branch, checked against PyTorch in onnxruntime (dynamic batch, time and frame axes)."

import json
import numpy as np
import pytest
import torch
from torch import nn
from gcsa_fer.onnx_export import ExportableChannelShuffle, exportable, export_onnx, check_onnx
from gcsa_fer.models import load_model, LoadedModel
from gcsa_fer import cli

ort = pytest.importorskip('onnxruntime')


@pytest.mark.parametrize('groups,channels', [(1, 4), (2, 6), (4, 24), (3, 12)])
def test_exportable_channel_shuffle_is_channel_shuffle(groups, channels):
    x = torch.randn(3, channels, 5, 4)
    torch.testing.assert_close(ExportableChannelShuffle(groups)(x), nn.ChannelShuffle(groups)(x), rtol=0, atol=0)


def test_exportable_replaces_every_shuffle_and_keeps_the_original(tiny_run):
    lm = load_model(tiny_run)
    v = exportable(lm.model.visual)
    assert not any(isinstance(m, nn.ChannelShuffle) for m in v.modules())
    assert any(isinstance(m, nn.ChannelShuffle) for m in lm.model.visual.modules())
    x = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(v(x), lm.model.visual(x))


def _run(path, name, x):
    s = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return s.run(None, {name: x.numpy()})[0]


def test_export_run_matches_pytorch(tiny_run, tmp_path):
    man = export_onnx(tiny_run, tmp_path)
    assert set(man['branches']) == {'audio', 'visual'} and json.loads((tmp_path / 'onnx.json').read_text()) == man
    lm = load_model(tiny_run)
    for B, T in ((1, 40), (5, 333)):  # batch and time differ from the traced example
        x = -40 + 10 * torch.randn(B, 1, 32, T)
        with torch.no_grad():
            want = lm.model.audio(x).numpy()
        np.testing.assert_allclose(_run(tmp_path / 'audio.onnx', 'logmel', x), want, atol=1e-4, rtol=1e-4)
    for B, T in ((1, 1), (4, 7)):  # batch and frames differ too
        f = torch.rand(B, T, 3, 32, 32)
        with torch.no_grad():
            want = lm.model.visual(f).numpy()
        np.testing.assert_allclose(_run(tmp_path / 'visual.onnx', 'frames', f), want, atol=1e-4, rtol=1e-4)


def test_export_feature_mlp(tiny_run, tmp_path):
    "A RAVDESS-style visual branch (feature vectors) exports too."
    from gcsa_fer.fusion import AVModel
    from gcsa_fer.rhcnn import FeatureMLP
    from gcsa_fer.core import Config

    mlp = FeatureMLP(35, hidden=16).eval()
    lm = LoadedModel(AVModel(None, mlp), Config(dataset='ravdess', modality='v'), 'features', tmp_path, 'run')
    man = export_onnx(lm, tmp_path / 'o')
    assert man['branches']['visual']['input'] == 'features' and man['branches']['visual']['shape'] == ['batch', 35]
    x = torch.randn(6, 35)
    assert check_onnx(tmp_path / 'o' / 'visual.onnx', mlp, x) < 1e-5


def test_cli_export_onnx(tiny_run, tmp_path, capsys):
    cli.main(['export-onnx', str(tiny_run), '--out', str(tmp_path / 'x')])
    out = capsys.readouterr().out
    assert 'audio.onnx' in out and 'visual.onnx' in out and 'max |ONNX - PyTorch|' in out
    assert (tmp_path / 'x' / 'audio.onnx').stat().st_size > 10_000

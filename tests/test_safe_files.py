"Opening someone else's model never runs their code: malicious checkpoints given to every loader, and the shipped models in safetensors."

import json
import os
import shutil
from pathlib import Path
import pytest
import torch
from gcsa_fer import cli
from gcsa_fer.checkpoint import UnsafeFileError, load_checkpoint
from gcsa_fer.core import Config
from gcsa_fer.models import load_model
from gcsa_fer.predict import predict_video
from gcsa_fer.train import Trainer
from gcsa_fer.data import SyntheticAV
from gcsa_fer.datasets import Selected

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / 'data' / 'cremad_sample' / 'VideoFlash' / '1001_DFA_ANG_XX.flv'


class Exploit:
    "A pickled object whose reduction would run a shell command that writes `marker`."

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def _evil_folder(tmp_path, name: str, tiny_run, payload='model') -> tuple[Path, Path]:
    "A folder with a valid config.json beside a malicious checkpoint `name`; returns (folder, marker)."
    d = tmp_path / 'evil'
    d.mkdir(exist_ok=True)
    marker = tmp_path / 'PWNED'
    shutil.copy(tiny_run / 'config.json', d / 'config.json')
    torch.save({payload: Exploit(marker), 'epoch': 1} if payload else Exploit(marker), d / name)
    return d, marker


def test_exploit_really_runs_when_unpickled(tmp_path, tiny_run):
    "The fixture is dangerous: unpickling it the unsafe way does run the command (so the tests below can fail)."
    d, marker = _evil_folder(tmp_path, 'model.pt', tiny_run)
    torch.load(d / 'model.pt', weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize('name', ['model.pt', 'best.pt', 'last.pt'])
def test_predict_refuses_malicious_checkpoint(tmp_path, tiny_run, capsys, name):
    d, marker = _evil_folder(tmp_path, name, tiny_run)
    code = cli.predict_command(
        cli.build_parser().parse_args(['predict', str(CLIP), '--run', str(d), '--out', str(tmp_path / 'o'), '--quiet'])
    )
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert 'refused, because opening it could run code' in err and '--trust-pickle' in err and 'Traceback' not in err


def test_explorer_loader_and_export_refuse(tmp_path, tiny_run, capsys):
    d, marker = _evil_folder(tmp_path, 'best.pt', tiny_run)
    with pytest.raises(UnsafeFileError, match='could run code'):
        load_model(d)  # what the explorer calls
    with pytest.raises(SystemExit) as e:
        cli.main(['export-model', str(d), '--out', str(tmp_path / 'exported')])
    assert e.value.code == 2 and 'could run code' in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / 'exported' / 'model.safetensors').exists()


def test_resume_refuses_malicious_last_checkpoint(tmp_path, tiny_run):
    cfg = Config(dataset='synthetic', modality='v').update(
        epochs=1, batch_size=16, visual_width=16, face_size=16, n_frames=2, n_mels=16
    )
    ds = Selected(SyntheticAV(16, cfg.preprocess, ('frames',)), ('frames',))
    out = tmp_path / 'run'
    out.mkdir()
    marker = tmp_path / 'PWNED'
    torch.save({'model': Exploit(marker)}, out / 'last.pt')
    tr = Trainer(cfg, ds, ds, out, progress=False)
    with pytest.raises(UnsafeFileError, match='could run code'):
        tr.fit()
    assert not marker.exists()


def test_convert_needs_trust_and_then_works(tmp_path, tiny_run, capsys):
    sd = load_checkpoint(tiny_run / 'best.pt')['model']
    d = tmp_path / 'old'
    d.mkdir()
    shutil.copy(tiny_run / 'config.json', d)
    import numpy as np

    torch.save(
        {'model': sd, 'rng': {'numpy': np.random.get_state()}}, d / 'best.pt'
    )  # as this library wrote them before
    with pytest.raises(UnsafeFileError, match='numpy'):
        load_model(d)
    with pytest.raises(SystemExit):
        cli.main(['convert', str(d / 'best.pt')])
    assert '--trust-pickle' in capsys.readouterr().err
    cli.main(['convert', str(d / 'best.pt'), '--trust-pickle'])
    safe = d / 'best.safe.pt'
    assert safe.exists() and torch.equal(load_checkpoint(safe)['model']['audio.head.weight'], sd['audio.head.weight'])


@pytest.mark.parametrize('name', ['default', 'ravdess-av'])
def test_shipped_models_are_safetensors(name):
    d = REPO / 'models' / name
    assert sorted(p.name for p in d.iterdir() if p.suffix in ('.pt', '.pth', '.pkl', '.safetensors')) == [
        'model.safetensors'
    ]
    import hashlib

    prov = json.loads((d / 'provenance.json').read_text())
    assert prov['model_sha256'] == hashlib.sha256((d / 'model.safetensors').read_bytes()).hexdigest()
    lm = load_model(d)
    assert lm.kind == 'exported' and 'audio' in lm.branches
    p = predict_video(lm, CLIP).table
    probs = (
        p[[c for c in p.columns if c.startswith('p_')]].to_numpy()
        if any(c.startswith('p_') for c in p.columns)
        else None
    )
    assert len(p) > 0 and (probs is None or ((probs >= 0).all() and abs(probs.sum(1) - 1).max() < 1e-3))


def test_no_unsafe_torch_load_in_the_library():
    "No code path of the library unpickles with weights_only=False, except the explicit conversion of a trusted file."
    hits = []
    for f in (REPO / 'gcsa_fer').glob('*.py'):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if 'weights_only=False' in line and f.name != 'checkpoint.py':
                hits.append(f'{f.name}:{i}')
    assert hits == []

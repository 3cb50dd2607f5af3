"""DistributedDataParallel under torchrun, two gloo processes on the CPU: the same global batch and seed as one process gives
the same training (tolerances below), and a killed pair relaunched with the same command resumes and ends as an uninterrupted pair."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
import pandas as pd
import pytest

SETTINGS = [
    'epochs=6',
    'select_epoch=last',
    'batch_size=32',
    'optimizer=adamw',
    'lr=0.003',
    'lr_heads=0.003',
    'audio_width=8',
    'visual_width=16',
    'n_mels=32',
    'clip_seconds=1.0',
    'face_size=32',
    'n_frames=2',
]
TORCHRUN = Path(sys.executable).parent / 'torchrun'


def _cmd(out, nproc):
    run = [
        '-m',
        'gcsa_fer.cli',
        'run',
        '--dataset',
        'synthetic',
        '--modality',
        'av',
        '--out',
        str(out),
        '--device',
        'cpu',
        '--quiet',
        '--set',
        *SETTINGS,
    ]
    return (
        [sys.executable, *run] if nproc == 1 else [str(TORCHRUN), '--standalone', '--nproc_per_node', str(nproc), *run]
    )


def _env():
    return {**os.environ, 'OMP_NUM_THREADS': '1'}


def _run(out, nproc):
    r = subprocess.run(_cmd(out, nproc), env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return pd.read_csv(out / 'history.csv'), json.loads((out / 'metrics.json').read_text())


@pytest.fixture(scope='module')
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp('ddp')
    return d, _run(d / 'one', 1), _run(d / 'two', 2)


@pytest.mark.training
def test_two_processes_train_like_one(pair):
    "Tolerances: each epoch's training loss within 3 % (each process normalises its batch norms over half the batch, and draws its own augmentations), final test accuracy within 5 points."
    _, (h1, m1), (h2, m2) = pair
    assert len(h1) == len(h2) == 6
    assert ((h2['train_loss'] - h1['train_loss']).abs() / h1['train_loss']).max() < 0.03, (h1, h2)
    assert h1['train_loss'].iloc[-1] < 0.7 * h1['train_loss'].iloc[0]  # both learn
    assert abs(m1['test']['accuracy'] - m2['test']['accuracy']) <= 0.05 and m2['test']['accuracy'] > 0.8, (
        m1['test'],
        m2['test'],
    )
    assert m2['status'] == 'complete' and m2['n_train'] == m1['n_train']


def test_only_the_main_process_writes(pair):
    d = pair[0] / 'two'
    assert not [p.name for p in d.iterdir() if p.name.startswith('.')], "no temporary files left behind"
    assert sorted(p.name for p in d.glob('*.pt')) == ['best.pt', 'last.pt']


def test_killed_and_relaunched_pair_resumes(pair):
    d, _, (h2, m2) = pair
    out = d / 'killed'
    p = subprocess.Popen(
        _cmd(out, 2), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        t0 = time.time()
        while time.time() - t0 < 300:
            if (out / 'history.csv').exists() and len(pd.read_csv(out / 'history.csv')) >= 2:
                break
            if p.poll() is not None:
                pytest.fail('the run ended before it could be killed')
            time.sleep(0.2)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    killed_at = len(pd.read_csv(out / 'history.csv'))
    assert 2 <= killed_at < 6
    h3, m3 = _run(out, 2)
    assert list(h3['epoch']) == list(range(1, 7))
    pd.testing.assert_series_equal(h3['train_loss'], h2['train_loss'], rtol=1e-5)  # resumed = uninterrupted
    assert m3['test']['accuracy'] == pytest.approx(m2['test']['accuracy'], abs=1e-9)


def test_the_papermill_run_notebook_takes_nproc(tmp_path):
    import papermill as pm

    nb = Path(__file__).resolve().parent.parent / 'nbs' / 'experiments' / 'run.ipynb'
    pm.execute_notebook(
        str(nb),
        str(tmp_path / 'out.ipynb'),
        parameters={'nproc': 2, 'out_dir': str(tmp_path / 'run'), 'device': 'cpu', 'epochs': 1},
        kernel_name='python3',
        progress_bar=False,
    )
    m = json.loads((tmp_path / 'run' / 'metrics.json').read_text())
    assert m['status'] == 'complete' and m['epochs'] == 1 and (tmp_path / 'run' / 'requested_config.json').exists()


def test_epoch_order_is_the_order_torch_samplers_drew(tmp_path):
    "The explicit epoch order (which the processes share out) is the order DataLoader's shuffle drew before it, so earlier runs stay reproducible."
    import torch
    from torch.utils.data import DataLoader
    from gcsa_fer.core import Config
    from gcsa_fer.datasets import get_dataset
    from gcsa_fer.train import Trainer

    cfg = Config(dataset='synthetic', modality='v').update(
        epochs=1, batch_size=8, face_size=16, n_frames=1, visual_width=8
    )
    ds = get_dataset('synthetic', 'train', cfg)
    tr = Trainer(cfg, ds, ds, tmp_path, progress=False)
    g = torch.Generator().manual_seed(cfg.train.seed * 100003 + 3)
    assert (
        tr.epoch_order(3)
        == next(iter(DataLoader(list(range(len(ds))), batch_size=len(ds), shuffle=True, generator=g))).tolist()
    )


def test_a_field_added_later_does_not_block_resume(tmp_path):
    "A checkpoint written before a configuration field existed resumes when the field has its default, and not when it differs."
    from gcsa_fer.checkpoint import load_checkpoint, save_checkpoint
    from gcsa_fer.core import Config
    from gcsa_fer.datasets import get_dataset
    from gcsa_fer.train import Trainer

    cfg = Config(dataset='synthetic', modality='v').update(
        epochs=1, batch_size=32, face_size=16, n_frames=1, visual_width=8
    )
    ds = get_dataset('synthetic', 'val', cfg)
    Trainer(cfg, ds, ds, tmp_path, progress=False).fit()
    ck = load_checkpoint(tmp_path / 'last.pt')
    del ck['config']['train']['gan_width']
    save_checkpoint(ck, tmp_path / 'last.pt')  # as an older version wrote it
    assert Trainer(cfg, ds, ds, tmp_path, progress=False).load()
    with pytest.raises(ValueError, match='gan_width'):
        Trainer(cfg.replace(gan_width=32), ds, ds, tmp_path, progress=False).load()

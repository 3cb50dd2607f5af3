"""The GPU path, tested on the CPU (issue 35): mixed precision (bf16 autocast runs on the CPU too), the loader and
device settings, the legacy `amp: true` of finished runs, and tools/gpu_check.py (one line and exit 2 without CUDA; a
dry run of the whole script on the CPU)."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import papermill
import pytest
import torch

from gcsa_fer.ablate import run_config, run_status
from gcsa_fer.experiment import run_experiment
from gcsa_fer.core import Config
from gcsa_fer.data import collate
from gcsa_fer.train import Trainer, to_device

REPO = Path(__file__).resolve().parent.parent


def toy(n, seed=0):
    "Audio and action-unit items whose class shows in both (a planted problem, not data)."
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 8, (n,), generator=g)
    audio = torch.randn(n, 1, 16, 24, generator=g) + y.view(n, 1, 1, 1) * 0.3
    feats = torch.randn(n, 35, generator=g) + torch.nn.functional.one_hot(y, 35) * 3
    return [{'audio': audio[i], 'features': feats[i], 'label': y[i], 'id': f'toy{i}'} for i in range(n)]


def trainer(tmp_path, **fields):
    cfg = Config(modality='av').update(epochs=1, batch_size=8, lr=0.05, lr_heads=0.1, audio_width=8, **fields)
    return Trainer(cfg, toy(32), toy(16, 1), tmp_path, progress=False)


def conv_output_dtypes(tr, batch) -> set:
    "The dtypes of every convolution's output in one training step of `tr` on `batch`."
    seen = set()
    hooks = [
        m.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
        for m in tr.model.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    try:
        loss = tr._step(batch)
    finally:
        for h in hooks:
            h.remove()
    assert torch.isfinite(torch.tensor(loss))
    return seen


def test_bf16_autocast_trains_on_the_cpu(tmp_path, one_thread):
    tr = trainer(tmp_path, amp='bf16')
    batch = to_device(collate(toy(8)), tr.device)
    before = [p.detach().clone() for p in tr.model.parameters()]
    assert conv_output_dtypes(tr, batch) == {torch.bfloat16}  # the convolutions ran in bf16
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())  # the weights stay float32
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    pred = tr.predict(toy(16, 1))  # evaluation under the same autocast gives float32 probabilities
    assert pred['p'].dtype == 'float32' and abs(pred['p'].sum(1) - 1).max() < 1e-2


def test_auto_and_off_are_float32_on_the_cpu(tmp_path, one_thread):
    for amp in ('auto', 'off'):
        tr = trainer(tmp_path / amp, amp=amp)
        assert conv_output_dtypes(tr, to_device(collate(toy(8)), tr.device)) == {torch.float32}


def test_fp16_needs_cuda(tmp_path):
    with pytest.raises(ValueError, match='needs CUDA'):
        trainer(tmp_path, amp='fp16', device='cpu')


def test_amp_choices_are_checked():
    with pytest.raises(ValueError, match='amp'):
        Config().update(amp='fp8')


def test_placement_batches_and_model_on_the_trainers_device(tmp_path, one_thread):
    tr = trainer(tmp_path, device='cpu')
    assert {p.device for p in tr.model.parameters()} == {tr.device}
    moved = to_device({'audio': torch.zeros(2, 3), 'label': torch.zeros(2), 'id': ['a', 'b']}, torch.device('meta'))
    assert moved['audio'].device.type == moved['label'].device.type == 'meta' and moved['id'] == ['a', 'b']


def test_pinned_memory_only_on_cuda_and_only_when_asked(tmp_path):
    tr = trainer(tmp_path)
    assert tr.cfg.train.pin_memory and not tr.loader(tr.train_ds, True).pin_memory  # harmless on the CPU
    tr.device = torch.device('cuda')  # what a CUDA trainer's loader is made with (the loader allocates nothing yet)
    assert tr.loader(tr.train_ds, True).pin_memory
    tr.cfg.train.pin_memory = False
    assert not tr.loader(tr.train_ds, True).pin_memory
    tr.cfg.train.num_workers = 2
    assert tr.loader(tr.train_ds, False).num_workers == 2


def test_cudnn_benchmark_is_left_alone_on_the_cpu(tmp_path):
    before = torch.backends.cudnn.benchmark
    trainer(tmp_path, cudnn_benchmark=not before)
    assert torch.backends.cudnn.benchmark == before


def test_a_checkpoint_keeps_the_scaler_and_resumes(tmp_path, one_thread):
    tr = trainer(tmp_path, amp='bf16')
    tr._fit_epoch(0)
    other = trainer(tmp_path, amp='bf16')
    assert other.load() and other.epoch == 1 and other.scaler.state_dict() == {}  # no scaler unless fp16


def test_legacy_amp_booleans_read_as_auto_and_off(tmp_path):
    d = Config().to_dict()
    for old, new in ((True, 'auto'), (False, 'off')):
        d['train']['amp'] = old
        assert Config.from_dict(d).train.amp == new
        (tmp_path / 'config.json').write_text(json.dumps(d))
        assert Config.load(tmp_path / 'config.json').train.amp == new


def test_a_finished_run_saved_with_amp_true_is_still_complete(tmp_path):
    "Runs finished before `amp` took names (their config says `amp: true`) are not run again."
    cfg = Config(dataset='ravdess', modality='a', fold=1).update(epochs=30, device='cpu')
    saved = cfg.to_dict()
    saved['train']['amp'] = True
    for new in ('pin_memory', 'cudnn_benchmark'):  # fields added since: absent from old runs
        del saved['train'][new]
    (tmp_path / 'metrics.json').write_text(json.dumps({'status': 'complete', 'config': saved}))
    assert run_status(tmp_path, cfg) == 'complete'
    saved['train']['amp'] = False  # a run without mixed precision is another configuration than 'auto'
    (tmp_path / 'metrics.json').write_text(json.dumps({'status': 'complete', 'config': saved}))
    assert run_status(tmp_path, cfg) == 'conflict'


def test_gpu_check_without_cuda_is_one_line_and_exit_2():
    env = {**os.environ, 'CUDA_VISIBLE_DEVICES': ''}  # also on a machine with a GPU
    r = subprocess.run(
        [sys.executable, 'tools/gpu_check.py'], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2, r.stderr
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('gpu_check: no CUDA GPU here'), lines


def _gpu_check():
    "tools/gpu_check.py as a module."
    spec = importlib.util.spec_from_file_location('gpu_check', REPO / 'tools' / 'gpu_check.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_without_kernel(notebook, output, parameters, **kw):
    "papermill's `execute_notebook` without a Jupyter kernel: run.ipynb's own two calls, in this process."
    run_experiment(run_config(parameters), parameters['out_dir'], progress=False)
    shutil.copy(notebook, output)


def test_gpu_check_dry_run_writes_every_section(tmp_path, monkeypatch, one_thread):
    "The whole script on the CPU, tiny: the code it runs on a GPU, with the synthetic preset's run (papermill's kernel"
    " left out for speed: the driver's papermill path is tests/test_experiments.py's)."
    monkeypatch.setattr(papermill, 'execute_notebook', run_without_kernel)
    before = torch.backends.cudnn.benchmark
    assert _gpu_check().main(['--dry-run', '--out', str(tmp_path), '--work', str(tmp_path / 'work')]) == 0
    assert torch.backends.cudnn.benchmark == before
    out = tmp_path / 'cpu-dry-run'
    table = pd.read_csv(out / 'gpu_check.csv')
    assert set(table.check) == {'environment', 'forward', 'throughput', 'papermill', 'loader', 'estimate'}
    fwd = table[(table.check == 'forward') & table.metric.str.startswith('max_abs_diff')]
    assert len(fwd) == 4 and fwd.detail.str.startswith('pass').all()  # one model per modality, fp32 and bf16
    assert {'items_per_s_amp_off', 'items_per_s_amp_bf16'} <= set(table[table.check == 'throughput'].metric)
    runs = table[(table.check == 'papermill') & (table.metric == 'status')]
    assert runs.value.tolist() == ['complete']
    est = table[table.check == 'estimate'].set_index('name').value.astype(float)
    assert len(est) == 2 and (est > 0).all()
    names = zipfile.ZipFile(out / 'papermill.zip').namelist()
    assert any(n.endswith('/run.ipynb') for n in names) and any(n.endswith('/metrics.json') for n in names)
    assert 'every check passed' in (out / 'README.md').read_text()


def test_gpu_check_records_a_part_that_raises_and_goes_on(tmp_path, monkeypatch):
    "On a GPU lent for minutes, one broken part must not cost the others: it is a FAIL row, and the exit status is 1."
    gc = _gpu_check()

    def broken(*a, **k):
        raise RuntimeError('CUDA error: an illegal memory access')

    monkeypatch.setattr(gc, 'forward_check', broken)
    monkeypatch.setattr(gc, 'throughput', lambda *a, **k: ([gc.row('throughput', 'm', 'items_per_s_amp_off', 1.0)], {}))
    monkeypatch.setattr(gc, 'papermill_runs', lambda *a, **k: ([], []))
    assert gc.main(['--dry-run', '--out', str(tmp_path), '--work', str(tmp_path / 'work')]) == 1
    table = pd.read_csv(tmp_path / 'cpu-dry-run' / 'gpu_check.csv')
    err = table[table.check == 'forward'].iloc[0]
    assert err.value == 'RuntimeError' and err.detail.startswith('FAIL: CUDA error')
    assert (table.check == 'throughput').any() and (table.check == 'estimate').any()  # the parts after it ran
    assert '1 checks FAILED: forward exception error' in (tmp_path / 'cpu-dry-run' / 'README.md').read_text()

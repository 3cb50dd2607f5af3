"""The CUDA path in one command (`make gpu-check`; on the device tool `bash tools/gpu_run.sh`), at most about 8 minutes
on one GPU. It prints the device and the torch, CUDA and cuDNN versions; compares a CPU and a CUDA forward pass of each
Table-1 model of the paper preset on the same batch (float32, TF32 off: probabilities within FP32_TOL; bf16 autocast:
within BF16_TOL); measures training steps at the paper's shapes through `Trainer._step` with amp off, bf16 and fp16
(items a second, GPU utilisation sampled while they run, peak GPU memory); runs each Table-1 row of the paper preset
(`ravdess`, fold 1, seed 0) through papermill on CUDA for a few epochs on the real RAVDESS data; times the loader
(workers 0 and 4, pinned memory off and on) on that data's cache; and estimates from those rates the wall time of
`make ablation PRESET=ravdess` (300 epochs, 180 runs) and of the whole attention grid (`make attention`, 319 runs).
It writes OUT/<device>/: gpu_check.csv (every figure), README.md (the same as tables), papermill.zip (each run's
executed notebook, metrics, history and papermill command). Without CUDA it stops at once with one line, exit 2.

    python tools/gpu_check.py [--out results/gpu] [--budget 420] [--epochs 3]
    python tools/gpu_check.py --dry-run --out /tmp/g    # the same code on the CPU, tiny (synthetic data): seconds

Exit status: 0 when every check passed, 1 when one failed (the README says which), 2 without CUDA.
"""

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FP32_TOL = 1e-4  # largest |p_cpu - p_cuda| over a batch's class probabilities, float32 with TF32 off
BF16_TOL = 5e-2  # the same for the CUDA forward pass under bf16 autocast (8 bits of mantissa)
PAPER_PRESET, ATTENTION_PRESET, PAPER_BATCH = 'ravdess', 'attention-cpu', 16


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--out', default=str(REPO / 'results' / 'gpu'), help='the results go to OUT/<device>/')
    p.add_argument(
        '--budget', type=float, default=420.0, help='seconds for the whole check (papermill runs stop first)'
    )
    p.add_argument('--epochs', type=int, default=3, help='epochs of each papermill run')
    p.add_argument('--fold', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--runs', type=int, default=None, help='at most this many papermill runs (default: every row)')
    p.add_argument('--work', default=None, help='run folders and feature cache (default: a temporary folder)')
    p.add_argument('--dry-run', action='store_true', help='on the CPU, synthetic data, tiny: tests this script')
    p.add_argument('--travel-size', action='store_true', help='print the MiB that travel to the device tool and exit')
    a = p.parse_args(argv)
    a.command = ' '.join(sys.argv[1:] if argv is None else argv)
    return a


CARRY = ('.gpu-wheels', 'data/ravdess_speech', 'data/ravdess_au')  # the git-ignored paths the device tool carries
TRAVEL_LIMIT_MIB = 64


def travel_size() -> int:
    "Print the size of what travels to the device tool: the files git tracks or would track, and CARRY; 0 if under 64 MiB."

    def git(*a):
        return subprocess.run(['git', 'ls-files', '-z', *a], cwd=REPO, capture_output=True, check=True).stdout

    def mib(paths):
        return sum(p.stat().st_size for p in paths if p.is_file() and not p.is_symlink()) / 2**20

    tree = [REPO / f for f in (git() + git('--others', '--exclude-standard')).decode().split('\0') if f]
    sizes = {'the working tree (git ls-files, tracked and untracked-not-ignored)': mib(tree)}
    for c in CARRY:
        sizes[c] = mib((REPO / c).rglob('*')) if (REPO / c).exists() else None
    for k, v in sizes.items():
        print(f"{'missing' if v is None else f'{v:6.1f} MiB'}  {k}")
    total = sum(v for v in sizes.values() if v)
    print(f'{total:6.1f} MiB  in all (the device tool carries at most {TRAVEL_LIMIT_MIB} MiB)')
    return 0 if total < TRAVEL_LIMIT_MIB and None not in sizes.values() else 1


def row(check: str, name: str, metric: str, value, unit: str = '', detail: str = '') -> dict:
    "One line of gpu_check.csv."
    return {'check': check, 'name': name, 'metric': metric, 'value': value, 'unit': unit, 'detail': detail}


def slug(text: str) -> str:
    return re.sub(r'[^a-z0-9]+', '-', text.lower()).strip('-')


class GpuSampler(threading.Thread):
    "Samples the GPU's utilisation (%) and memory in use (MiB) every `period` seconds (NVML, else nvidia-smi)."

    def __init__(self, index: int = 0, period: float = 0.2):
        super().__init__(daemon=True)
        self.index, self.period, self.samples, self.stopped = index, period, [], threading.Event()
        try:
            import pynvml  # nvidia-ml-py: on CUDA images; else nvidia-smi

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.read = lambda: (
                pynvml.nvmlDeviceGetUtilizationRates(h).gpu,
                pynvml.nvmlDeviceGetMemoryInfo(h).used / 2**20,
            )
            self.source = 'NVML'
        except Exception:
            self.read, self.source = self._smi, 'nvidia-smi'

    def _smi(self):
        q = [
            'nvidia-smi',
            f'--id={self.index}',
            '--query-gpu=utilization.gpu,memory.used',
            '--format=csv,noheader,nounits',
        ]
        u, m = subprocess.run(q, capture_output=True, text=True, timeout=5).stdout.strip().split(',')
        return float(u), float(m)

    def run(self):
        while not self.stopped.is_set():
            with contextlib.suppress(Exception):
                self.samples.append((time.time(), *self.read()))
            self.stopped.wait(self.period)

    def window(self, t0: float, t1: float) -> dict:
        "Mean and peak utilisation, peak memory in use, over the samples taken between `t0` and `t1`."
        s = [x for x in list(self.samples) if t0 <= x[0] <= t1]
        if not s:
            return {'util_mean': None, 'util_max': None, 'mem_used_max_mib': None}
        return {
            'util_mean': round(sum(x[1] for x in s) / len(s), 1),
            'util_max': max(x[1] for x in s),
            'mem_used_max_mib': round(max(x[2] for x in s)),
        }


def source_commit() -> str:
    "The commit the tree came from: git here; on a machine without .git, the stamp `make gpu-check-prep` carried along."
    from gcsa_fer.provenance import git_commit

    c = git_commit(REPO)
    stamp = REPO / '.gpu-wheels' / 'SOURCE'
    return c if c != 'unknown' or not stamp.exists() else stamp.read_text().strip() + ' (carried stamp)'


def environment(dev) -> list[dict]:
    "Device, driver, torch, CUDA and cuDNN versions."
    import torch
    from gcsa_fer.provenance import device_name

    env = {
        'device': device_name(dev),
        'torch': torch.__version__,
        'cuda': torch.version.cuda,
        'cudnn': torch.backends.cudnn.version(),
        'python': platform.python_version(),
        'cpu_cores': os.cpu_count(),
        'commit': source_commit(),
    }
    if dev.type == 'cuda':
        props = torch.cuda.get_device_properties(dev)
        env['capability'] = f'{props.major}.{props.minor}'
        env['gpu_memory_gib'] = round(props.total_memory / 2**30, 1)
        q = ['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader']
        with contextlib.suppress(Exception):
            env['driver'] = subprocess.run(q, capture_output=True, text=True, timeout=10).stdout.strip()
    for k, v in env.items():
        print(f'{k:>15}: {v}')
    return [row('environment', k, k, v) for k, v in env.items()]


def grid(a, dev) -> list[dict]:
    "The runs of the check: the paper preset's Table-1 rows at one fold and seed (dry run: the synthetic preset's)."
    from gcsa_fer.presets import ablation_grid

    if a.dry_run:  # one model of each modality
        runs = ablation_grid('synthetic', seeds=[a.seed], device=dev.type, epochs=a.epochs)
        return [r for r in runs if r['row'] == '+GCSA+CF']
    return ablation_grid(PAPER_PRESET, seeds=[a.seed], folds=[a.fold], device=dev.type, epochs=a.epochs)


def model_name(r: dict) -> str:
    return f"{r['modality']}/{r['row']}"


class Items(list):
    "A list of items with their `labels` (what `balanced=True` draws from)."

    @property
    def labels(self):
        return [int(x['label']) for x in self]


def labelled_items(cfg, n: int, seed: int = 0) -> Items:
    "`n` random items of the shapes `cfg`'s model trains on (`costs.example_batch`), with labels."
    import torch
    from gcsa_fer.costs import example_batch

    torch.manual_seed(seed)
    b = {**example_batch(cfg, n), 'label': torch.randint(0, 8, (n,))}
    return Items({k: v[i] for k, v in b.items()} for i in range(n))


def forward_check(runs: list[dict], dev) -> list[dict]:
    "Each model's class probabilities on one batch, on the CPU and on `dev` (float32 without TF32, and bf16 autocast)."
    import torch
    from gcsa_fer.data import collate
    from gcsa_fer.presets import run_config
    from gcsa_fer.train import Trainer, to_device, _autocast

    out, tf32 = [], (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        for r in runs:
            cfg = run_config(r['parameters']).replace(device='cpu')
            items = labelled_items(cfg, PAPER_BATCH)
            with tempfile.TemporaryDirectory() as tmp:
                model = Trainer(cfg, items, items, tmp, progress=False).model.eval()
            batch = collate(items)
            with torch.no_grad():
                p_cpu = model(batch)['p'].float()
                model.to(dev)
                on = to_device(batch, dev)
                p32 = model(on)['p'].float().cpu()
                with _autocast(dev, 'bf16'):
                    p16 = model(on)['p'].float().cpu()
            d32, d16 = float((p32 - p_cpu).abs().max()), float((p16 - p_cpu).abs().max())
            agree = float((p16.argmax(1) == p_cpu.argmax(1)).float().mean())
            name = model_name(r)
            for metric, d, tol in (('max_abs_diff_fp32', d32, FP32_TOL), ('max_abs_diff_bf16', d16, BF16_TOL)):
                verdict = f"{'pass' if d <= tol else 'FAIL'} (tolerance {tol})"
                out.append(row('forward', name, metric, f'{d:.2e}', 'probability', verdict))
            out.append(row('forward', name, 'argmax_agreement_bf16', round(agree, 3), 'fraction', ''))
            print(f'forward {name:>24}: fp32 {d32:.1e}, bf16 {d16:.1e}, bf16 argmax agreement {agree:.2f}')
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    return out


def step_rate(cfg, dev, sampler, min_seconds: float, min_steps: int) -> dict:
    "Training steps of `cfg`'s model through `Trainer._step` on one batch already on `dev`: items a second and more."
    import torch
    from gcsa_fer.data import collate
    from gcsa_fer.train import Trainer, to_device

    items = labelled_items(cfg, cfg.train.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, items, items, tmp, progress=False)
    tr.model.train()
    batch = to_device(collate(items), dev)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    for _ in range(3):
        tr._step(batch)  # warm-up: kernel choice (cudnn.benchmark), allocation
    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(dev)
    sync()
    t0, n = time.time(), 0
    while n < min_steps or time.time() - t0 < min_seconds:
        loss = tr._step(batch)
        n += 1
    sync()
    t1 = time.time()
    res = {'items_per_s': n * cfg.train.batch_size / (t1 - t0), 'step_s': (t1 - t0) / n, 'steps': n, 'loss': loss}
    if dev.type == 'cuda':
        res['peak_mem_mib'] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    if sampler is not None:
        res.update(sampler.window(t0, t1))
    return res


def throughput(runs: list[dict], dev, sampler, a) -> tuple[list[dict], dict]:
    "Items a second of each model at the paper's shapes and batch, with amp off, bf16 and (on CUDA) fp16."
    from gcsa_fer.presets import run_config

    out, rates = [], {}
    modes = ('off', 'bf16', 'fp16') if dev.type == 'cuda' else ('off', 'bf16')
    for r in runs:
        for amp in modes:
            cfg = run_config(r['parameters']).replace(amp=amp)
            s = step_rate(cfg, dev, sampler, 0.0 if a.dry_run else 1.0, 2 if a.dry_run else 20)
            rates[(model_name(r), amp)] = s
            detail = f"batch {cfg.train.batch_size}, {s['steps']} steps, loss {s['loss']:.3f}"
            out.append(
                row(
                    'throughput', model_name(r), f'items_per_s_amp_{amp}', round(s['items_per_s'], 1), 'items/s', detail
                )
            )
            for k, unit in (('util_mean', '%'), ('util_max', '%'), ('peak_mem_mib', 'MiB')):
                if s.get(k) is not None:
                    out.append(row('throughput', model_name(r), f'{k}_amp_{amp}', s[k], unit, ''))
            print(
                f"throughput {model_name(r):>24} amp={amp:>4}: {s['items_per_s']:9.1f} items/s, util {s.get('util_mean')} %, peak {s.get('peak_mem_mib')} MiB"
            )
    return out, rates


def papermill_runs(runs: list[dict], a, dev, work: Path, sampler, deadline: float) -> tuple[list[dict], list[dict]]:
    "Each run of the grid through papermill (`ablate`, one run at a time) while the budget lasts; their timings."
    import pandas as pd
    from gcsa_fer.ablate import ablate

    order = sorted(range(len(runs)), key=lambda k: (runs[k]['row'] != '+GCSA+CF', k))  # one run of each modality first
    order = order[: a.runs] if a.runs is not None else order
    out, measured = [], []
    for k in order:
        r, folder = runs[k], work / 'runs' / runs[k]['name']
        if time.time() > deadline:
            out.append(row('papermill', r['name'], 'status', 'not run', '', 'the time budget was spent'))
            continue
        t0 = time.time()
        kw = dict(seeds=[a.seed], modalities=[r['modality']], rows=[r['row']], device=dev.type, epochs=a.epochs)
        st = ablate(  # this one run: its modality and row
            'synthetic' if a.dry_run else PAPER_PRESET,
            work / 'runs',
            folds=None if a.dry_run else [a.fold],
            estimate=False,
            progress=False,
            **kw,
        )
        t1 = time.time()
        status = st.set_index('name')['status'].get(r['name'], 'missing')
        m = {'name': r['name'], 'model': model_name(r), 'status': status, 'seconds': t1 - t0}
        if (folder / 'history.csv').exists():
            h = pd.read_csv(folder / 'history.csv')['seconds'].tolist()
            m['epoch_s'] = float(pd.Series(h[1:] or h).median())  # the first epoch pays for kernel choice
            m['fixed_s'] = m['seconds'] - sum(h)
        m.update(sampler.window(t0, t1) if sampler is not None else {})
        measured.append(m)
        out.append(row('papermill', r['name'], 'status', status, '', f'{a.epochs} epochs on {dev.type}'))
        out.append(row('papermill', r['name'], 'wall_seconds', round(m['seconds'], 1), 's', 'kernel start to end'))
        for key, unit in (('epoch_s', 's'), ('fixed_s', 's'), ('util_mean', '%'), ('mem_used_max_mib', 'MiB')):
            if m.get(key) is not None:
                out.append(row('papermill', r['name'], key, round(m[key], 2), unit, ''))
        print(
            f"papermill {r['name']:>34}: {status}, {m['seconds']:.1f} s, epoch {m.get('epoch_s', float('nan')):.2f} s"
        )
    return out, measured


def loader_check(runs: list[dict], dev, work: Path, workers=(0, 4)) -> list[dict]:
    "Items a second of the training loader (to the device) with `workers` processes, pinned memory off and on."
    from gcsa_fer.datasets import get_dataset
    from gcsa_fer.presets import run_config
    from gcsa_fer.train import Trainer, to_device

    r = next(x for x in runs if x['modality'] == ('a' if any(y['modality'] == 'a' for y in runs) else x['modality']))
    cfg = run_config(r['parameters'])
    cache = None if cfg.dataset == 'synthetic' else work / 'runs' / 'cache'
    train = get_dataset(cfg.dataset, 'train', cfg, cache, augment=True)
    out = []
    for w in workers:
        for pin in (False, True):
            c = cfg.replace(num_workers=w, pin_memory=pin)
            with tempfile.TemporaryDirectory() as tmp:
                tr = Trainer(c, train, train, tmp, progress=False)
            t0, n = time.time(), 0
            for b in tr.loader(train, True, 0):
                b = to_device(b, dev)
                n += len(b['label'])
            rate = n / (time.time() - t0)
            name = f'{r["name"]}: workers {w}, pin_memory {pin}'
            out.append(row('loader', name, 'items_per_s', round(rate, 1), 'items/s', f'{n} items, one epoch'))
            print(f'loader {name}: {rate:.0f} items/s')
    return out


def _n_train() -> dict:
    "Training items of each (dataset, modality, fold) from the committed attention runs (results/attention/runs)."
    seen = {}
    for f in sorted((REPO / 'results' / 'attention' / 'runs').glob('*/metrics.json')):
        m = json.loads(f.read_text())
        if m.get('n_train'):
            c = m['config']
            seen[(c['dataset'], c['modality'], c['fold'])] = m['n_train']
    return seen


def _scale(ok: list[dict], rates: dict) -> float | None:
    "How much longer a measured papermill epoch took than its training steps alone (loader, validation, checkpoint)."
    ratios = [
        m['epoch_s'] / (math.ceil(m['n_train'] / PAPER_BATCH) * rates[(m['model'], 'auto')]['step_s'])
        for m in ok
        if m.get('n_train') and (m['model'], 'auto') in rates
    ]
    return sorted(ratios)[len(ratios) // 2] if ratios else None


def estimates(measured, rates, dev, sampler, a) -> list[dict]:
    "Wall time of the paper preset and of the attention grid on this device, from the rates measured above."
    import statistics
    from gcsa_fer.presets import ablation_grid, run_config

    ok = [m for m in measured if m['status'] == 'complete' and 'epoch_s' in m]
    if not ok:
        return [row('estimate', 'all', 'hours', 'n/a', '', 'no papermill run completed: nothing to estimate from')]
    fixed = statistics.median(m['fixed_s'] for m in ok)  # papermill, data, evaluation: per run, not per epoch
    by_model = {m['model']: m['epoch_s'] for m in ok}
    total, guessed, preset = 0.0, set(), 'synthetic' if a.dry_run else PAPER_PRESET
    paper = ablation_grid(preset, device=dev.type)
    for r in paper:
        e = by_model.get(model_name(r))
        if e is None:  # a row the budget left out: the mean of its modality's measured rows, else of all
            same = [m['epoch_s'] for m in ok if m['model'].split('/')[0] == r['modality']] or [m['epoch_s'] for m in ok]
            e = statistics.mean(same)
            guessed.add(model_name(r))
        total += fixed + run_config(r['parameters']).train.epochs * e
    detail = f"{len(paper)} runs: per run {fixed:.1f} s fixed (median) + epochs x that row's measured epoch"
    detail += f"; rows not run, from their modality's mean: {', '.join(sorted(guessed))}" if guessed else ''
    out = [row('estimate', f'make ablation PRESET={preset}', 'hours', float(f'{total / 3600:.3g}'), 'h', detail)]
    # the attention grid: each run's training steps at its own configuration, timed here through Trainer._step,
    # scaled by `_scale`; its training-set sizes are those of the committed CPU runs of the same fold
    scale = _scale(ok, rates)
    if scale is None:
        return out + [row('estimate', 'attention grid', 'hours', 'n/a', '', 'no measured epoch to scale steps by')]
    sizes, att, step_s, missing = _n_train(), 0.0, {}, 0
    runs = ablation_grid(ATTENTION_PRESET, device=dev.type)[: 2 if a.dry_run else None]  # dry run: the code path
    for r in runs:
        cfg = run_config(r['parameters']).replace(device=dev.type)
        n = sizes.get((cfg.dataset, cfg.modality, cfg.fold))
        if n is None:
            missing += 1
            continue
        d = cfg.to_dict()
        key = json.dumps([d['model'], d['preprocess'], d['dataset'], d['modality'], d['train']['batch_size']])
        if key not in step_s:
            step_s[key] = step_rate(cfg, dev, sampler, 0.0 if a.dry_run else 0.3, 1 if a.dry_run else 5)['step_s']
        att += fixed + cfg.train.epochs * math.ceil(n / cfg.train.batch_size) * step_s[key] * scale
    detail = f'{len(runs) - missing} runs ({len(step_s)} configurations timed): per run {fixed:.1f} s fixed + '
    detail += f'epochs x batches x step time x {scale:.2f} (a papermill epoch over its steps alone)'
    detail += f'; {missing} runs without a known training-set size left out' if missing else ''
    name = f'make attention (preset {ATTENTION_PRESET}, device {dev.type})'
    return out + [row('estimate', name, 'hours', float(f'{att / 3600:.3g}'), 'h', detail)]


def write_outputs(dest: Path, rows: list[dict], work: Path, a, started: float, failed: list[dict], done: bool):
    "gpu_check.csv, README.md and papermill.zip in `dest`."
    import pandas as pd

    dest.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows, columns=['check', 'name', 'metric', 'value', 'unit', 'detail'])
    table.to_csv(dest / 'gpu_check.csv', index=False)
    with zipfile.ZipFile(dest / 'papermill.zip', 'w', zipfile.ZIP_DEFLATED) as z:
        for f in sorted((work / 'runs').glob('*/*')):
            if f.parent.name != 'cache' and f.suffix in ('.ipynb', '.json', '.csv', '.txt'):
                z.write(f, f.relative_to(work / 'runs'))
        for f in sorted((work / 'runs').glob('status*.csv')):
            z.write(f, f.name)
    env = dict(zip(table[table.check == 'environment'].metric, table[table.check == 'environment'].value))
    if not done:
        verdict = 'stopped before its end (these are the parts it finished)'
    else:
        verdict = (
            'every check passed'
            if not failed
            else f'{len(failed)} checks FAILED: '
            + '; '.join(f"{r['check']} {r['name']} {r['metric']} ({r['value']}, {r['detail']})" for r in failed)
        )
    lines = [
        f"# GPU check: {env.get('device')}",
        '',
        f"Written by `python tools/gpu_check.py {a.command}` (on the device tool `bash tools/gpu_run.sh`) on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC in {time.time() - started:.0f} s, from commit "
        f"`{env.get('commit')}`. Overall: **{verdict}**.",
        '',
        'The papermill runs train a few epochs to prove the path and time it: their scores are not results.',
        'Every figure is also in gpu_check.csv; the executed notebooks are in papermill.zip.',
        '',
    ]
    if a.dry_run:
        lines[4:4] = ['A dry run on the CPU with synthetic data: it tests the script; its figures measure nothing.', '']
    for check in ('environment', 'forward', 'throughput', 'papermill', 'loader', 'estimate'):
        part = table[table.check == check].drop(columns='check')
        if len(part):
            lines += [f'## {check}', '', part.to_markdown(index=False), '']
    (dest / 'README.md').write_text('\n'.join(lines))


def _failures(rows: list[dict]) -> list[dict]:
    "The rows that say a check failed: a tolerance exceeded, a papermill run that did not complete, an exception."

    def bad_run(r):
        return r['check'] == 'papermill' and r['metric'] == 'status' and r['value'] not in ('complete', 'not run')

    return [r for r in rows if str(r['detail']).startswith('FAIL') or bad_run(r)]


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.travel_size:
        return travel_size()
    started = time.time()
    import torch

    if not a.dry_run and not torch.cuda.is_available():
        print(f'gpu_check: no CUDA GPU here (torch {torch.__version__}): nothing checked; --dry-run runs it on the CPU')
        return 2
    sys.path.insert(0, str(REPO))  # the library of this tree (gpu_run.sh sets PYTHONPATH too)
    dev = torch.device('cpu' if a.dry_run else 'cuda')
    if a.dry_run:
        a.epochs, a.runs = min(a.epochs, 1), 1 if a.runs is None else a.runs
    deadline = started + a.budget - 90  # the last minute and a half: loader, estimates, writing
    rows = environment(dev)
    dest = Path(a.out) / ('cpu-dry-run' if a.dry_run else slug(torch.cuda.get_device_name(dev)))
    sampler = GpuSampler(dev.index or 0) if dev.type == 'cuda' else None
    if sampler is not None:
        sampler.start()
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix='gpu_check-'))
    runs = grid(a, dev)

    def phase(name: str, fn, default=None):
        "One part of the check: an exception is a FAIL row and the other parts still run; the results so far are written."
        try:
            return fn()
        except Exception as e:
            traceback.print_exc()
            rows.append(row(name, 'exception', 'error', type(e).__name__, '', f'FAIL: {str(e).strip()[:300]}'))
            return default
        finally:
            write_outputs(dest, rows, work, a, started, _failures(rows), done=False)

    rows += phase('forward', lambda: forward_check(runs, dev), [])
    trow, rates = phase('throughput', lambda: throughput(runs, dev, sampler, a), ([], {}))
    rows += trow
    for (name, amp), s in list(rates.items()):  # 'auto' is what a run uses: bf16 on CUDA, off on the CPU
        if amp == ('bf16' if dev.type == 'cuda' else 'off'):
            rates[(name, 'auto')] = s
    prow, measured = phase('papermill', lambda: papermill_runs(runs, a, dev, work, sampler, deadline), ([], []))
    rows += prow
    for m in measured:
        f = work / 'runs' / m['name'] / 'metrics.json'
        if f.exists():
            m['n_train'] = json.loads(f.read_text()).get('n_train')
    if any(m['status'] == 'complete' for m in measured):
        rows += phase('loader', lambda: loader_check(runs, dev, work, (0, 2) if a.dry_run else (0, 4)), [])
    rows += phase('estimate', lambda: estimates(measured, rates, dev, sampler, a), [])
    if sampler is not None:
        sampler.stopped.set()
    failed = _failures(rows)
    write_outputs(dest, rows, work, a, started, failed, done=True)
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)
    verdict = 'every check passed' if not failed else f'{len(failed)} checks FAILED'
    print(f'gpu_check: {verdict}; {dest}/ (README.md, gpu_check.csv, papermill.zip) in {time.time() - started:.0f} s')
    return 0 if not failed else 1


if __name__ == '__main__':
    sys.exit(main())

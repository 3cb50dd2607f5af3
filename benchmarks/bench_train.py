"""Training throughput (clips/s): end to end (cached dataset -> DataLoader -> device -> step), with the batches
already on the device (model only), and the loader alone. If end to end is much slower than on-device,
the data pipeline starves the accelerator. Not a test: it prints figures.

    python benchmarks/bench_train.py                      # RAVDESS A+V (AU features) on the shipped data
    python benchmarks/bench_train.py --dataset synthetic --device cuda --workers 4
    python benchmarks/bench_train.py --models             # the audio model of each recipe: clips/s and parameters, one run
"""
import argparse, platform, os, subprocess, time
import numpy as np
import torch
from torch.utils.data import DataLoader
from gcsa_fer.core import Config, get_device, seed_everything
from gcsa_fer.data import collate
from gcsa_fer.datasets import get_dataset
from gcsa_fer.train import build_model, make_loss, make_optimizer, to_device, visual_input_of, _autocast


RECIPE_MODELS = {   # the audio branch (MCNN + GCSA) as each recipe builds it, and the input it sees
    'old CPU preset (before the 6-fold recipe)': {'n_mels': 40, 'hop_length': 320, 'clip_seconds': 3.0, 'batch_size': 16},
    'paper recipe (64 mels, 10 ms hop, 3 s)': {'n_mels': 64, 'hop_length': 160, 'clip_seconds': 3.0, 'batch_size': 16},
}

def compare_models(steps: int = 5, rounds: int = 3, device: str = 'auto'):
    "Training steps per second of each recipe's audio model on random inputs of its shape, in one run, with parameter counts."
    from gcsa_fer.ablate import RECIPES
    from gcsa_fer.preprocess import n_mel_frames
    models = {**RECIPE_MODELS, 'CPU recipe (RECIPES["cpu"], this release)': {k: v for k, v in RECIPES['cpu'].items()}}
    dev = get_device(device); setups = {}
    for name, params in models.items():
        cfg = Config(dataset='ravdess', modality='a').update(attention='gcsa', device=device, **params)
        seed_everything(0)
        model = build_model(cfg).to(dev).train(); opt, _ = make_optimizer(model, cfg); loss_fn = make_loss(cfg).to(dev)
        B, pre = cfg.train.batch_size, cfg.preprocess
        b = {'audio': torch.randn(B, 1, pre.n_mels, n_mel_frames(pre.clip_seconds, pre), device=dev), 'label': torch.randint(0, 8, (B,), device=dev)}
        def step(model=model, opt=opt, loss_fn=loss_fn, b=b):
            l = loss_fn(model(b)['p'], b['label']); opt.zero_grad(set_to_none=True); l.backward(); opt.step()
        for _ in range(3): step()
        setups[name] = (step, B, sum(p.numel() for p in model.parameters()), tuple(b['audio'].shape[1:]), [])
    for _ in range(rounds):   # interleaved rounds, the median of each: a busy machine slows every model alike
        for name, (step, B, _, _, times) in setups.items():
            if dev.type == 'cuda': torch.cuda.synchronize()
            t0 = time.time()
            for _ in range(steps): step()
            if dev.type == 'cuda': torch.cuda.synchronize()
            times.append(B * steps / (time.time() - t0))
    rows = [(n, float(np.median(t)), par, shape) for n, (_, _, par, shape, t) in setups.items()]
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f'CPU {platform.machine()} x{os.cpu_count()}, {torch.get_num_threads()} threads'
    print(f"audio model (MCNN + GCSA) training throughput, random inputs, median of {rounds} interleaved rounds of {steps} steps; device: {name}; commit {commit}")
    base = rows[0][1]
    for n, cps, par, shape in rows:
        print(f"  {n:48s} input {str(shape):16s} {cps:8.1f} clips/s  ({cps / base:4.2f}x the first)  {par:9,d} parameters")

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dataset', default='ravdess'); ap.add_argument('--modality', default='av')
    ap.add_argument('--attention', default='gcsa'); ap.add_argument('--device', default='auto')
    ap.add_argument('--batch-size', type=int, default=16); ap.add_argument('--batches', type=int, default=20)
    ap.add_argument('--workers', type=int, default=0); ap.add_argument('--cache', default='runs/cache')
    ap.add_argument('--set', action='append', default=[], metavar='NAME=VALUE', help='other Config fields, e.g. n_mels=40')
    ap.add_argument('--models', action='store_true', help="compare the audio model of each recipe (clips/s, parameters) and exit")
    a = ap.parse_args()
    if a.models: compare_models(device=a.device); return
    extra = dict(kv.split('=', 1) for kv in a.set)
    cfg = Config(dataset=a.dataset, modality=a.modality).update(attention=a.attention, device=a.device, batch_size=a.batch_size,
                                                                num_workers=a.workers, **extra)
    dev = get_device(cfg.train.device); seed_everything(0)
    t0 = time.time(); ds = get_dataset(cfg.dataset, 'train', cfg, None if cfg.dataset == 'synthetic' else a.cache, augment=True)
    print(f"dataset {cfg.dataset} ({len(ds)} training items) ready in {time.time() - t0:.1f} s (cache: {a.cache})")
    model = build_model(cfg, *visual_input_of(ds[0])).to(dev).train()
    opt, _ = make_optimizer(model, cfg); loss_fn = make_loss(cfg).to(dev)
    dl = lambda: DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=True, collate_fn=collate, num_workers=a.workers,
                            pin_memory=dev.type == 'cuda', drop_last=True, persistent_workers=False)
    def step(b):
        with _autocast(dev, cfg.train.amp): out = model(b)
        l = loss_fn(out['p'], b['label']); opt.zero_grad(set_to_none=True); l.backward(); opt.step()
    def sync():
        if dev.type == 'cuda': torch.cuda.synchronize()
    def batches():
        while True:
            for b in dl(): yield b
    it = batches()
    for _ in range(3): step(to_device(next(it), dev))           # warm-up
    sync(); t0 = time.time(); n = 0
    for _ in range(a.batches): b = next(it); step(to_device(b, dev)); n += len(b['label'])
    sync(); e2e = n / (time.time() - t0)
    on_dev = [to_device(next(it), dev) for _ in range(min(a.batches, 10))]
    sync(); t0 = time.time(); n = 0
    for i in range(a.batches): b = on_dev[i % len(on_dev)]; step(b); n += len(b['label'])
    sync(); dev_only = n / (time.time() - t0)
    t0 = time.time(); n = 0
    for _ in range(a.batches): n += len(next(it)['label'])
    loader = n / (time.time() - t0)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f'CPU {platform.machine()} x{os.cpu_count()}, {torch.get_num_threads()} threads'
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
    print(f"device: {name}; commit {commit}; {cfg.dataset} {cfg.modality} attention={cfg.model.attention} batch {cfg.train.batch_size}, {a.workers} workers")
    print(f"  end to end (loader + transfer + step): {e2e:8.1f} clips/s")
    print(f"  data already on the device (step only): {dev_only:8.1f} clips/s")
    print(f"  loader alone:                           {loader:8.1f} clips/s")
    print(f"  end to end / on-device ratio: {e2e / dev_only:.2f} (1.0 = the pipeline keeps up)")


if __name__ == '__main__':
    main()

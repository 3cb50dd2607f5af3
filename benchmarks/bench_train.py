"""Training throughput (clips/s): end to end (cached dataset -> DataLoader -> device -> step), with the batches
already on the device (model only), and the loader alone. If end to end is much slower than on-device,
the data pipeline starves the accelerator. Not a test: it prints figures.

    python benchmarks/bench_train.py                      # RAVDESS A+V (AU features) on the shipped data
    python benchmarks/bench_train.py --dataset synthetic --device cuda --workers 4
"""
import argparse, platform, os, subprocess, time
import torch
from torch.utils.data import DataLoader
from gcsa_fer.core import Config, get_device, seed_everything
from gcsa_fer.data import collate, get_dataset
from gcsa_fer.train import build_model, make_loss, make_optimizer, to_device, visual_input_of, _autocast


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dataset', default='ravdess'); ap.add_argument('--modality', default='av')
    ap.add_argument('--attention', default='gcsa'); ap.add_argument('--device', default='auto')
    ap.add_argument('--batch-size', type=int, default=16); ap.add_argument('--batches', type=int, default=20)
    ap.add_argument('--workers', type=int, default=0); ap.add_argument('--cache', default='runs/cache')
    ap.add_argument('--set', action='append', default=[], metavar='NAME=VALUE', help='other Config fields, e.g. n_mels=40')
    a = ap.parse_args()
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

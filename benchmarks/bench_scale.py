"""Memory and throughput of the sharded feature cache at Aff-Wild2 scale, on a synthetic Aff-Wild2 tree (not data).

For each size (default 20 k and 200 k cropped-aligned 112x112 frames) it writes a synthetic tree in the published layout
(`testing.write_abaw_tree`: -1 labels, missing crops, _left/_right videos), then, each step in a fresh process:
  build  - `cache.build_cache` on 2 workers: frames/s;
  train  - one epoch of a visual-only model (RHCNN, width 16) on the cached windows through the trainer's data path
           (DataLoader, collate, shuffled order): peak resident memory (VmHWM);
  rates  - loader frames/s (iterating the shuffled DataLoader alone) against the model's frames/s (training steps on one
           batch already in memory), and pread vs np.memmap reads of the same shards;
and prints one line per size, then the 200 k / 20 k memory ratio. All in one run, so ratios compare like with like.

    python benchmarks/bench_scale.py [--sizes 20000 200000] [--work /tmp/gcsa_scale] [--keep]
"""
import argparse, json, os, resource, shutil, subprocess, sys, time
from pathlib import Path

FRAMES_PER_VIDEO, N_FRAMES, SIZE = 2000, 8, 112

def vmhwm_mb() -> float:
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'): return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def _setup(tree):
    import torch
    from gcsa_fer.core import PreprocessConfig
    from gcsa_fer.data import AbawExpr
    torch.set_num_threads(2)
    cfg = PreprocessConfig(face_size=SIZE, n_frames=N_FRAMES)
    return AbawExpr(tree, 'train', modalities=('frames',), cfg=cfg)

def step_build(tree, cache):
    from gcsa_fer.cache import build_cache
    ds = _setup(tree); t = time.time()
    folder = build_cache(ds, cache, n_workers=2, progress=False)
    rep = json.loads((folder / 'report.json').read_text())
    return {'windows': rep['n_items'], 'frames': rep['n_items'] * N_FRAMES, 'build_s': time.time() - t,
            'build_fps': rep['n_items'] * N_FRAMES / (time.time() - t), 'shards': rep['n_shards'], 'folder': str(folder),
            'cache_gb': sum(p.stat().st_size for p in folder.glob('shard-*.bin')) / 1e9, 'rss_mb': vmhwm_mb()}

def _loader(c, batch):
    import torch
    from torch.utils.data import DataLoader
    from gcsa_fer.data import collate
    order = torch.randperm(len(c), generator=torch.Generator().manual_seed(0)).tolist()
    return DataLoader(c, batch_size=batch, sampler=order, collate_fn=collate, num_workers=0)

def step_train(folder):
    import torch
    from gcsa_fer.cache import CachedDataset
    from gcsa_fer.fusion import AVModel
    from gcsa_fer.rhcnn import RHCNN
    torch.set_num_threads(2)
    c = CachedDataset(folder); rss_open = vmhwm_mb()
    model = AVModel(visual=RHCNN(8, 'gcsa', width=16)); opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-1); t = time.time(); n = 0
    for b in _loader(c, 32):
        out = model(b); loss = loss_fn(out['p'].flatten(0, 1).clamp_min(1e-6).log(), b['label'].flatten())
        opt.zero_grad(); loss.backward(); opt.step(); n += b['frames'].shape[0] * N_FRAMES
    return {'epoch_s': time.time() - t, 'epoch_fps': n / (time.time() - t), 'rss_mb': vmhwm_mb(), 'rss_after_open_mb': rss_open}

def step_rates(folder, max_batches=150):
    import numpy as np, torch
    from gcsa_fer.cache import CachedDataset
    from gcsa_fer.fusion import AVModel
    from gcsa_fer.rhcnn import RHCNN
    torch.set_num_threads(2)
    c = CachedDataset(folder)
    t = time.time(); n = 0
    for i, b in enumerate(_loader(c, 32)):
        n += b['frames'].shape[0] * N_FRAMES
        if i + 1 >= max_batches: break
    loader_fps = n / (time.time() - t)
    batch = next(iter(_loader(c, 32)))
    model = AVModel(visual=RHCNN(8, 'gcsa', width=16)); opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(3): out = model(batch); opt.zero_grad(); out['p'].mean().backward(); opt.step()
    t = time.time(); steps = 20
    for _ in range(steps): out = model(batch); opt.zero_grad(); out['p'].mean().backward(); opt.step()
    model_fps = steps * batch['frames'].shape[0] * N_FRAMES / (time.time() - t)
    idx = np.random.default_rng(0).permutation(len(c))[:2000]                    # pread (the cache) against np.memmap, same items
    t = time.time()
    for i in idx: c[int(i)]
    pread_ips = len(idx) / (time.time() - t)
    maps = {}; off, shp = c.offsets['frames'], c.shapes['frames']; t = time.time()
    for i in idx:
        j = int(c.shard_of[i]); m = maps.get(j)
        if m is None: m = maps[j] = np.memmap(c._files[j], dtype=np.uint8, mode='r')
        o = int(off[i]); k = int(np.prod(shp[i])); torch.from_numpy(np.array(m[o:o + k]).reshape(tuple(shp[i])))
    mmap_ips = len(idx) / (time.time() - t)
    return {'loader_fps': loader_fps, 'model_fps': model_fps, 'loader_over_model': loader_fps / model_fps,
            'pread_items_s': pread_ips, 'memmap_items_s': mmap_ips}

def child(step, *args):
    out = subprocess.run([sys.executable, __file__, '--child', step, *args], capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '2'})
    if out.returncode: raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[20000, 200000])
    p.add_argument('--work', default='/tmp/gcsa_scale')
    p.add_argument('--keep', action='store_true', help='keep the trees and caches')
    p.add_argument('--child', nargs='+', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        step, *args = a.child
        print(json.dumps({'build': step_build, 'train': step_train, 'rates': step_rates}[step](*args))); return
    from gcsa_fer.testing import write_abaw_tree
    import torch
    work = Path(a.work); rows = []
    print(f"torch {torch.__version__}, {os.cpu_count()} cores; {SIZE}x{SIZE} crops, windows of {N_FRAMES} frames, {FRAMES_PER_VIDEO} frames a video")
    for size in a.sizes:
        tree = work / f'aw2-{size}'
        if not (tree / '.written').exists():
            t = time.time(); write_abaw_tree(tree, n_videos=max(1, size // FRAMES_PER_VIDEO), frames_per_video=FRAMES_PER_VIDEO, size=SIZE, val_fraction=0.0)
            (tree / '.written').write_text(f"{time.time() - t:.0f} s")
        b = child('build', str(tree), str(work / f'cache-{size}'))
        tr = child('train', b['folder']); r = child('rates', b['folder'])
        row = {'target_frames': size, **{k: v for k, v in b.items() if k != 'folder'}, 'build_rss_mb': b['rss_mb'], 'train_rss_mb': tr['rss_mb'],
               'rss_after_open_mb': tr['rss_after_open_mb'], 'epoch_s': tr['epoch_s'], 'epoch_fps': tr['epoch_fps'], **r}
        rows.append(row)
        print(f"{size:>7} frames: {b['windows']} windows, {b['cache_gb']:.2f} GB in {b['shards']} shards | build {b['build_fps']:.0f} frames/s "
              f"(peak RSS {b['rss_mb']:.0f} MB) | one epoch {tr['epoch_s']:.0f} s, peak RSS {tr['rss_mb']:.0f} MB (after opening the cache "
              f"{tr['rss_after_open_mb']:.0f} MB) | loader {r['loader_fps']:.0f} frames/s vs model {r['model_fps']:.0f} frames/s "
              f"(x{r['loader_over_model']:.1f}) | random items/s: pread {r['pread_items_s']:.0f}, memmap {r['memmap_items_s']:.0f}", flush=True)
        if not a.keep: shutil.rmtree(work / f'cache-{size}', ignore_errors=True)
    if len(rows) > 1:
        print(f"peak RSS while training, {rows[-1]['target_frames']} vs {rows[0]['target_frames']} frames: {rows[-1]['train_rss_mb']:.0f} / "
              f"{rows[0]['train_rss_mb']:.0f} MB = {rows[-1]['train_rss_mb'] / rows[0]['train_rss_mb']:.3f}")
    (work / 'bench_scale.json').write_text(json.dumps(rows, indent=1))

if __name__ == '__main__': main()

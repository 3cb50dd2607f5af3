"""Data pipeline benchmark (not a test): cache build time and clips/s for RAVDESS (1,440 clips) and the
shipped CREMA-D clips, and Haar face detection ms per frame. Run: `.venv/bin/python benchmarks/bench_data.py`."""
import argparse, os, shutil, tempfile, time
from pathlib import Path
import torch
from gcsa_fer.data import Ravdess, CremaD
from gcsa_fer.cache import build_cache, CachedDataset
from gcsa_fer.preprocess import read_video, detect_face

def bench_build(name, ds, root, n_workers, force=False):
    t = time.perf_counter(); folder = build_cache(ds, root, n_workers=n_workers, progress=False, force=force)
    dt = time.perf_counter() - t
    t = time.perf_counter(); c = CachedDataset(folder, like=ds); _ = [c[i] for i in range(len(c))]; dr = time.perf_counter() - t
    mb = sum(p.stat().st_size for p in folder.glob('shard-*.bin')) / 2**20
    print(f"{name:34s} {len(ds):5d} clips  build {dt:7.2f} s  {len(ds)/dt:7.1f} clips/s  "
          f"skipped {c.report['n_skipped']}  cache {mb:6.1f} MB  read all {dr:5.2f} s")

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--workers', type=int, default=2); a = ap.parse_args()
    print(f"cpu cores: {os.cpu_count()}, workers: {a.workers}, torch threads: {torch.get_num_threads()}")
    root = Path(tempfile.mkdtemp(prefix='gcsa-bench-'))
    try:
        bench_build('ravdess audio+AU (all splits)', Ravdess(split='all'), root, a.workers)
        bench_build('ravdess again (files in page cache)', Ravdess(split='all'), root, a.workers, force=True)
        bench_build('ravdess, 1 worker (val)', Ravdess(split='val'), root, 1)
        bench_build('cremad av (faces + audio)', CremaD(kind='av'), root, a.workers)
        bench_build('cremad audio', CremaD(kind='audio'), root, a.workers)
        frames, _ = read_video(sorted(Path(CremaD().root, 'VideoFlash').glob('*.flv'))[0])
        for f in frames[:5]: detect_face(f)
        t = time.perf_counter(); found = sum(detect_face(f) is not None for f in frames); dt = time.perf_counter() - t
        print(f"haar face detection: {1000*dt/len(frames):.1f} ms/frame on {frames.shape[2]}x{frames.shape[1]} frames "
              f"({found}/{len(frames)} with a face)")
    finally: shutil.rmtree(root, ignore_errors=True)

if __name__ == '__main__': main()

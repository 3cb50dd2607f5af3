"""Reading a whole sharded cache once, item by item in a shuffled order: os.pread (what `CachedDataset` does) against np.memmap
of the same shard files, each in a fresh process: items/s and peak resident memory (VmHWM), in one run.

    python benchmarks/bench_cache_read.py [--frames 20000] [--work /tmp/gcsa_scale]
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from bench_scale import vmhwm_mb   # the same peak-RSS reading as the scale benchmark

def read_all(folder, how):
    import numpy as np, torch
    from gcsa_fer.cache import CachedDataset
    c = CachedDataset(folder); start = vmhwm_mb()
    order = np.random.default_rng(0).permutation(len(c)); t = time.time(); maps = {}
    for i in order:
        if how == 'pread': c[int(i)]
        else:
            j = int(c.shard_of[i]); m = maps.get(j)
            if m is None: m = maps[j] = np.memmap(c._files[j], dtype=np.uint8, mode='r')
            for k, off in c.offsets.items():
                o, shp = int(off[i]), tuple(int(d) for d in c.shapes[k][i])
                n = int(np.prod(shp)) * np.dtype(c.dtypes[k]).itemsize
                torch.from_numpy(np.frombuffer(m[o:o + n].tobytes(), dtype=c.dtypes[k]).reshape(shp).copy())
    return {'how': how, 'items': len(c), 'items_s': len(c) / (time.time() - t), 'rss_open_mb': start, 'rss_peak_mb': vmhwm_mb()}

def main():
    p = argparse.ArgumentParser(); p.add_argument('--frames', type=int, default=20000); p.add_argument('--work', default='/tmp/gcsa_scale')
    p.add_argument('--child', nargs=2, help=argparse.SUPPRESS); a = p.parse_args()
    if a.child: print(json.dumps(read_all(*a.child))); return
    from bench_scale import FRAMES_PER_VIDEO, SIZE, step_build
    from gcsa_fer.testing import write_abaw_tree
    tree = Path(a.work) / f'aw2-{a.frames}'
    if not (tree / '.written').exists():
        write_abaw_tree(tree, n_videos=max(1, a.frames // FRAMES_PER_VIDEO), frames_per_video=FRAMES_PER_VIDEO, size=SIZE, val_fraction=0.0)
        (tree / '.written').write_text('ok')
    b = step_build(str(tree), str(Path(a.work) / f'cache-{a.frames}'))
    print(f"{b['frames']} frames, {b['cache_gb']:.2f} GB in {b['shards']} shards")
    for how in ('pread', 'memmap'):
        r = json.loads(subprocess.run([sys.executable, __file__, '--child', b['folder'], how], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        print(f"{how:>6}: {r['items_s']:.0f} items/s, peak RSS {r['rss_peak_mb']:.0f} MB (after opening {r['rss_open_mb']:.0f} MB)", flush=True)

if __name__ == '__main__': main()

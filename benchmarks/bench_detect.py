"""Face-detector benchmark (not a test). Two sets, chosen with --sets:

- `wild`: the found rate of each detector on the everyday photos of `wild_faces_dev` (3,328 news photos and film
  stills, about 250x250; `--every N` takes every N-th), and the milliseconds each detection takes;
- `frames640`: the milliseconds per 640x480 frame: `--frames` wild photos (every photo of a fixed stride), each scaled
  to 480 pixels high and centred on a grey 640x480 frame, as a webcam or a video call would show a face;
- `london`, `cremad`: the earlier sets (102 London studio photos 512x512; 8 frames of each CREMA-D clip, 480x360).

Images are decoded before the clock starts; one pass, one thread (OpenCV, torch, the litert interpreter), on this
machine. `ms_per_image` and `ms_median` are wall time; `cpu_ms` is the process's CPU time per image, which other load
on the machine inflates less. Compare detectors within one run.

    .venv/bin/python benchmarks/bench_detect.py [--detectors haar lbp blazeface] [--sets wild frames640] [--every 1]
"""
import argparse, os, platform, statistics, subprocess, time
import cv2, numpy as np, pandas as pd, torch
from gcsa_fer.data import shipped_data_dir
from gcsa_fer.detect import compare_detectors, detect_face, resolve_detector
from gcsa_fer.faces import read_image
from gcsa_fer.preprocess import read_video, sample_times


def on_frame(im: np.ndarray, w: int = 640, h: int = 480) -> np.ndarray:
    "The photo scaled to `h` pixels high and centred on a grey w x h frame (cropped at the sides if wider)."
    s = h / im.shape[0]
    im = cv2.resize(im, (round(im.shape[1] * s), h), interpolation=cv2.INTER_LINEAR)[:, :w]
    out = np.full((h, w, 3), 128, np.uint8)
    x = (w - im.shape[1]) // 2
    out[:, x : x + im.shape[1]] = im
    return out


def wild_rates(paths, detectors) -> pd.DataFrame:
    "Found rate and mean ms per detection of each detector over the photos (decoded one at a time, not timed)."
    rows = []
    for d in detectors:
        detect_face(read_image(paths[0]), d)  # load the detector outside the timing
        found, spent, cpu = 0, 0.0, 0.0
        for p in paths:
            im = read_image(p)
            t, c = time.perf_counter(), time.process_time()
            found += detect_face(im, d) is not None
            spent, cpu = spent + time.perf_counter() - t, cpu + time.process_time() - c
        rows.append({'detector': d, 'images': len(paths), 'found': found, 'rate': found / len(paths),
                     'ms_per_image': 1000 * spent / len(paths), 'cpu_ms': 1000 * cpu / len(paths),
                     'images_of': 'wild_faces_dev photos (~250x250)'})
    return pd.DataFrame(rows)


def frame_times(frames, detectors) -> pd.DataFrame:
    "Median and mean ms per 640x480 frame, and the found rate on them."
    rows = []
    for d in detectors:
        detect_face(frames[0], d)
        ms, cpu, found = [], [], 0
        for f in frames:
            t, c = time.perf_counter(), time.process_time()
            found += detect_face(f, d) is not None
            ms.append(1000 * (time.perf_counter() - t))
            cpu.append(1000 * (time.process_time() - c))
        rows.append({'detector': d, 'images': len(frames), 'found': found, 'rate': found / len(frames),
                     'ms_per_image': statistics.fmean(ms), 'ms_median': statistics.median(ms),
                     'cpu_ms': statistics.fmean(cpu), 'images_of': 'wild photos on 640x480 frames'})
    return pd.DataFrame(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--detectors', nargs='+', default=['haar', 'lbp', 'blazeface'])
    ap.add_argument('--sets', nargs='+', default=['wild', 'frames640'], choices=['wild', 'frames640', 'london', 'cremad'])
    ap.add_argument('--every', type=int, default=1, help='wild: every N-th photo of the manifest (default: all)')
    ap.add_argument('--frames', type=int, default=100, help='frames640: how many frames')
    ap.add_argument('--threads', type=int, default=1, help='threads (default 1: what one worker of a 2-core machine has)')
    a = ap.parse_args()
    cv2.setNumThreads(a.threads); torch.set_num_threads(a.threads)
    for d in a.detectors:
        resolve_detector(d)  # DetectorUnavailable now, with what to install, not after minutes of another detector
    d = shipped_data_dir()
    wild = [d / 'wild_faces_dev' / p for p in pd.read_csv(d / 'wild_faces_dev' / 'manifest.csv')['path']]
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
    print(f"{platform.machine()}, {os.cpu_count()} cores, OpenCV {cv2.__version__}, {a.threads} thread(s), commit {commit}")
    tables = []
    if 'wild' in a.sets:
        tables.append(wild_rates(wild[:: a.every], a.detectors))
    if 'frames640' in a.sets:
        step = max(1, len(wild) // a.frames)
        tables.append(frame_times([on_frame(read_image(p)) for p in wild[::step][: a.frames]], a.detectors))
    if 'london' in a.sets:
        london = [read_image(p) for p in sorted((d / 'london_faces_dev' / 'images').glob('*/*.jpg'))]
        tables.append(compare_detectors(london, a.detectors).assign(images_of='London dev photos 512x512'))
    if 'cremad' in a.sets:
        crema = []
        for clip in sorted((d / 'cremad_sample' / 'VideoFlash').glob('*.flv')):
            frames, times = read_video(clip); crema += [frames[i] for i in sample_times(times, 8)]
        tables.append(compare_detectors(crema, a.detectors).assign(images_of='CREMA-D frames 480x360'))
    t = pd.concat(tables)
    cols = ['detector', 'images', 'found', 'rate', 'ms_per_image', 'ms_median', 'cpu_ms', 'images_of']
    t = t[[c for c in cols if c in t]].round({'rate': 3, 'ms_per_image': 1, 'ms_median': 1, 'cpu_ms': 1})
    print(t.to_string(index=False, na_rep=''))


if __name__ == '__main__': main()

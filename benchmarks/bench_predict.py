"""Prediction benchmark (not a test): wall time of `predict_video` on a 20 s 640x360 video with speech and a face,
split into the video pass (decoding, face detection and the face model, streamed) and the audio (decoding and the
audio model), as a ratio to the video's duration (below 1 is faster than real time); with `--memory`, the peak
resident memory of `predict` on a 20 s and a 10 min 1280x720 video, each in a fresh process.
Run: `.venv/bin/python benchmarks/bench_predict.py [--threads N] [--run DIR | --faces] [--memory]`.
`--faces` times the shipped face model (models/faces) alone, as issue "faces in" asks.

The video is written here with PyAV: the six shipped CREMA-D clips, looped to 20 s, each frame scaled to 640x360
(the 480x360 frame centred on a grey 640 canvas, so the face keeps its size), H.264 at 30 fps with their
16 kHz audio as AAC. The model is the default configuration (MCNN width 16, RHCNN width 32, 64 mel bands,
64-pixel faces) with untrained weights, which costs what a trained one does; `--run` times a real model folder.
"""
import argparse, os, tempfile, time
from pathlib import Path
import numpy as np, torch

REPO = Path(__file__).resolve().parent.parent


def make_video(path: Path, seconds: float = 20.0, size=(640, 360), fps: int = 30, sr: int = 16000) -> Path:
    "Loop the CREMA-D clips (frames and sound) into one `seconds`-long video at `size`."
    import av
    from gcsa_fer.preprocess import read_video, read_audio, resample
    clips = sorted((REPO / 'data' / 'cremad_sample' / 'VideoFlash').glob('*.flv'))
    W, H = size
    frames, sound = [], []
    for c in clips:
        fr, _ = read_video(c)
        canvas = np.full((len(fr), H, W, 3), 110, np.uint8)
        h, w = min(H, fr.shape[1]), min(W, fr.shape[2]); y0, x0 = (H - h) // 2, (W - w) // 2
        canvas[:, y0:y0 + h, x0:x0 + w] = fr[:, :h, :w]
        frames.append(canvas)
        a, r = read_audio(c); sound.append(resample(a, r, sr).numpy())
    frames, sound = np.concatenate(frames), np.concatenate(sound)
    n_f, n_a = int(seconds * fps), int(seconds * sr)
    sound = np.resize(sound, n_a).astype(np.float32)
    with av.open(str(path), 'w') as c:
        vs = c.add_stream('libx264', rate=fps, options={'preset': 'ultrafast'}); vs.width, vs.height, vs.pix_fmt = W, H, 'yuv420p'
        ast = c.add_stream('aac', rate=sr, layout='mono')
        for i in range(n_f):                       # frames are looped, not copied: a 10 min video fits in memory here too
            for p in vs.encode(av.VideoFrame.from_ndarray(frames[i % len(frames)], format='rgb24')): c.mux(p)
        for p in vs.encode(): c.mux(p)
        chunk = 1024
        for i in range(0, n_a, chunk):
            af = av.AudioFrame.from_ndarray(sound[None, i:i + chunk], format='fltp', layout='mono'); af.sample_rate = sr; af.pts = i
            for p in ast.encode(af): c.mux(p)
        for p in ast.encode(): c.mux(p)
    return path


CHILD = """
import resource, sys, time, torch
torch.set_num_threads({threads})
from gcsa_fer.predict import predict_videos
from gcsa_fer.models import load_model
lm = load_model({run!r})
t = time.perf_counter()
preds, summary = predict_videos([{video!r}], lm, None, progress=False, verbose=False)
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]   # peak RSS of this program image (ru_maxrss would include the forking parent's)
print(time.perf_counter() - t, int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(preds[0].table))
"""

def peak_memory(run: str, video: Path, threads: int) -> tuple[float, float, int]:
    "Seconds, peak RSS (MiB) and windows of `predict` on `video` in a fresh Python process."
    import subprocess, sys
    out = subprocess.run([sys.executable, '-c', CHILD.format(threads=threads or 2, run=str(run), video=str(video))],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    ap.add_argument('--run', default='', help='a run folder or exported model folder to time instead of the default configuration')
    ap.add_argument('--hop', type=float, default=0.5)
    ap.add_argument('--faces', action='store_true', help='time the shipped face model (models/faces) alone')
    ap.add_argument('--memory', action='store_true', help='also measure peak memory on a 20 s and a 10 min 1280x720 video')
    ap.add_argument("--keep-videos", default="", help="folder to keep the generated videos in (reused when present)")
    ap.add_argument('--repeats', type=int, default=2, help='timed repetitions (the best is reported); one warm-up run first')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    from gcsa_fer.core import Config
    from gcsa_fer.train import build_model
    from gcsa_fer.models import LoadedModel, load_model
    from gcsa_fer.predict import predict_video
    print(f"cpu cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, torch {torch.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix='gcsa-bench-predict-'))
    t = time.perf_counter(); video = make_video(tmp / 'bench_20s_640x360.mp4'); print(f"wrote the test video in {time.perf_counter() - t:.1f} s")
    if a.faces: a.run = str(REPO / 'models' / 'faces')
    if a.run: lm = load_model(a.run)
    else:
        cfg = Config(dataset='cremad', modality='av')
        lm = LoadedModel(build_model(cfg).eval(), cfg, 'pixels', tmp, 'run')
    print(lm.describe())
    predict_video(lm, video, hop=a.hop)                                   # warm-up: imports, Haar cascade, resampler
    best = None
    for _ in range(a.repeats):
        tm = {}; t = time.perf_counter()
        pred = predict_video(lm, video, hop=a.hop, timings=tm)
        tm['total'] = time.perf_counter() - t
        if best is None or tm['total'] < best['total']: best = tm
    dur = float(pred.frame_times[-1] + 1 / 30)
    print(f"video: {dur:.1f} s, 640x360, {len(pred.frame_times)} frames; {len(pred.table)} windows (hop {a.hop} s), "
          f"sources {pred.table['source'].value_counts().to_dict()}")
    print(f"{'stage':10s} {'seconds':>8s} {'x duration':>11s}")
    for k in ('decode', 'audio', 'total'):
        print(f"{k:10s} {best.get(k, 0.0):8.2f} {best.get(k, 0.0) / dur:11.3f}")
    other = best['total'] - sum(best.get(k, 0.0) for k in ('decode', 'audio'))
    print(f"{'(other)':10s} {other:8.2f} {other / dur:11.3f}")
    if a.memory:
        run = a.run or str(REPO / 'models' / 'faces')
        rows = []
        for secs in (20, 600):
            v = Path(a.keep_videos or tmp) / f'mem_{secs}s_1280x720.mp4'; v.parent.mkdir(parents=True, exist_ok=True)
            if not v.exists():
                t = time.perf_counter(); make_video(v, secs, (1280, 720), fps=25)
                print(f"wrote a {secs} s 1280x720 video in {time.perf_counter() - t:.0f} s")
            rows.append((secs, *peak_memory(run, v, a.threads)))
        for secs, sec, mib, w in rows: print(f"peak RSS {secs:4d} s 1280x720: {mib:7.1f} MiB ({w} windows, {sec:.1f} s, {sec / secs:.3f} x duration)")
        print(f"peak RSS ratio 10 min / 20 s: {rows[1][2] / rows[0][2]:.3f} (target: within 10 %)")


if __name__ == '__main__': main()

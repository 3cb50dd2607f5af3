"""Face-expression inference cost per frame (not a test): the default face model (the FER2013 mini-Xception, zero-shot)
next to the London-trained RHCNN (models/faces), in the same process on the same crops, and the Haar face detection on a
640x360 frame that comes before either. Crops: CREMA-D sample frames (actor 1001) cut as `predict` cuts them. Then
`predict` (the shipped speech model with each face model, `models.default_predictor`) on a 20 s 640x360 video (the
CREMA-D clips looped, `bench_predict.make_video`), as a fraction of the video's duration (target: at most 0.25).

Run: `.venv/bin/python benchmarks/bench_face_models.py [--threads 2] [--repeats 3] [--no-predict]`.
"""

import argparse
import functools
import os
import time
from pathlib import Path
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent


def crops_and_frames(fps: float = 10.0) -> tuple[np.ndarray, list]:
    "64x64 face crops of the CREMA-D clips, and the 640x360 frames they come from (each 480x360 frame on a grey canvas)."
    from gcsa_fer.pretrain import face_crops_from, _video_frames

    clips = sorted((REPO / 'data' / 'cremad_sample' / 'VideoFlash').glob('*.flv'))
    crops, _ = face_crops_from(clips, fps=fps)
    frames = []
    for f in (f for c in clips for f in _video_frames(c, 2.0)):
        canvas = np.full((360, 640, 3), 110, np.uint8)
        canvas[:, 80:560] = f[:360, :480]
        frames.append(canvas)
    return crops, frames


def best_time(fn, repeats: int) -> float:
    "The fastest of `repeats` timed calls, after one untimed warm-up."
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--no-predict', action='store_true', help='skip predict on the 20 s video')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from gcsa_fer.detect import detect_face
    from gcsa_fer.mini_xception import load_face_model

    crops, frames = crops_and_frames()
    print(f'cpu cores: {torch.get_num_threads()} torch threads, torch {torch.__version__}; '
          f'{len(crops)} face crops (64x64), {len(frames)} frames (640x360); load average {os.getloadavg()[0]:.1f}'
          + (' (other work shares the CPU: compare the rows, not the absolute times)' if os.getloadavg()[0] > 1 else ''))  # fmt: skip
    detect = best_time(lambda: [detect_face(f, 'haar') for f in frames], a.repeats) / len(frames)
    print(f"{'what':60s} {'ms/frame':>9s} {'frames/s':>9s}")
    print(f"{'Haar face detection, one 640x360 frame':60s} {1000 * detect:9.2f} {1 / detect:9.0f}")
    for name in ('pretrained', 'london'):
        fm = load_face_model(name)
        params = sum(p.numel() for p in fm.net.parameters()) if hasattr(fm.net, 'parameters') else None
        for batch in (32, 1):
            fm.batch = batch
            s = best_time(lambda: fm.predict_proba(crops), a.repeats) / len(crops)
            what = f'{fm.name} (batch {batch})'
            print(
                f'{what:60s} {1000 * s:9.2f} {1 / s:9.0f}'
                + (f'   {params:,} parameters' if params and batch == 32 else '')
            )
    if not a.no_predict:
        predict_on_video(a.repeats)


def predict_on_video(repeats: int, seconds: float = 20.0):
    "Wall time of `predict_videos` on a 20 s 640x360 video with each face model, best of `repeats` after a warm-up."
    import sys
    import tempfile
    from gcsa_fer.models import default_predictor
    from gcsa_fer.predict import predict_videos

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_predict import make_video

    with tempfile.TemporaryDirectory() as d:
        video = make_video(Path(d) / 'test.mp4', seconds)
        print(f"predict on a {seconds:g} s 640x360 video (30 fps, speech + face; windows of 0.5 s):")
        print(f"{'face model':60s} {'seconds':>9s} {'x duration':>11s}  stages (s)")
        for name in ('pretrained', 'london'):
            lm, tm = default_predictor(face_model=name), {}
            s = best_time(
                functools.partial(
                    predict_videos, [video], lm, None, plot=False, progress=False, verbose=False, timings=tm
                ),
                repeats,
            )
            stages = ', '.join(f'{k} {v / (repeats + 1):.2f}' for k, v in tm.items())  # mean over the calls
            print(f"{lm.faces.name:60s} {s:9.2f} {s / seconds:11.3f}  {stages}")


if __name__ == '__main__':
    main()

"""Face-detector benchmark (not a test): detection rate and milliseconds per image of each detector on the shipped
London dev photos (102 studio portraits, 512x512) and on CREMA-D frames (8 equally spaced frames of each of the 6
shipped clips, 480x360). One pass each, on this machine; compare detectors within one run.

    .venv/bin/python benchmarks/bench_detect.py [--detectors haar lbp] [--threads 1]
"""
import argparse, os, platform
import cv2, pandas as pd, torch
from gcsa_fer.data import shipped_data_dir
from gcsa_fer.detect import compare_detectors
from gcsa_fer.faces import read_image
from gcsa_fer.preprocess import read_video, sample_times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--detectors', nargs='+', default=['haar', 'lbp'])
    ap.add_argument('--threads', type=int, default=1, help='OpenCV threads (default 1: what one worker of a 2-core machine has)')
    a = ap.parse_args()
    cv2.setNumThreads(a.threads); torch.set_num_threads(a.threads)
    d = shipped_data_dir()
    london = [read_image(p) for p in sorted((d / 'london_faces_dev' / 'images').glob('*/*.jpg'))]
    crema = []
    for clip in sorted((d / 'cremad_sample' / 'VideoFlash').glob('*.flv')):
        frames, times = read_video(clip); crema += [frames[i] for i in sample_times(times, 8)]
    print(f"{platform.machine()}, {os.cpu_count()} cores, OpenCV {cv2.__version__}, {a.threads} thread(s)")
    t = pd.concat([compare_detectors(london, a.detectors).assign(images_of='London dev photos 512x512'),
                   compare_detectors(crema, a.detectors).assign(images_of='CREMA-D frames 480x360')])
    print(t.round({'rate': 3, 'ms_per_image': 1}).to_string(index=False))


if __name__ == '__main__': main()

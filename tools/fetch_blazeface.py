"""Fetch the short-range BlazeFace face detector (a file of the `mediapipe==0.10.21` wheel) into the cache, checked by
sha256: from the folder in $GCSA_FER_DATA_MIRROR when it holds the wheel, else from PyPI (`pip download`, nothing
installed). Offline without a mirror it prints one line and exits with status 2. Run by `make data`.

    python tools/fetch_blazeface.py [--mirror DIR] [--cache DIR]
"""

import argparse
import os
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--mirror', default=os.environ.get('GCSA_FER_DATA_MIRROR'), help='a folder holding the wheel')
    ap.add_argument('--cache', default=None, help='the cache folder (default: $GCSA_FER_CACHE or ~/.cache/gcsa_fer)')
    a = ap.parse_args(argv)
    from gcsa_fer.blazeface import blazeface_weights
    from gcsa_fer.fer_weights import WeightsUnavailable
    from gcsa_fer.fetch import ChecksumError

    try:
        files = blazeface_weights(a.cache, a.mirror)
    except (WeightsUnavailable, ChecksumError) as e:
        print(f'gcsa_fer: error: {e}', file=sys.stderr)
        sys.exit(2)
    print(f"BlazeFace weights: {files['tflite'].parent} (checked)")


if __name__ == '__main__':
    main()

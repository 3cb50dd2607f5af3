"""Measure a training outcome that a test bounds, over seeds, thread counts and CPU kernels, before setting the bound.

    python tools/test_margins.py london_fold --seeds 0 1 2        # every (ATEN_CPU_CAPABILITY, OMP_NUM_THREADS) pair

Each (seed, capability, threads) runs in its own process (the capability is read when torch starts). Prints one line per
run and the minimum of each metric; `tests/margins.md` keeps what was measured for each bound in the tests."""

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
import pandas as pd

HERE = Path(__file__).resolve().parent.parent


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('case', help='a key of tests/training_cases.CASES')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--capabilities', nargs='+', default=['default', 'avx2'])
    p.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    p.add_argument('--csv', default=None, help='also write the runs here')
    p.add_argument('--one', action='store_true', help=argparse.SUPPRESS)  # internal: run one case in this process
    a = p.parse_args()
    if a.one:
        sys.path.insert(0, str(HERE / 'tests'))
        from training_cases import CASES

        with tempfile.TemporaryDirectory() as d:
            print(json.dumps(CASES[a.case](d, a.seeds[0])))
        return
    rows = []
    for seed, cap, threads in itertools.product(a.seeds, a.capabilities, a.threads):
        env = {
            **os.environ,
            'ATEN_CPU_CAPABILITY': cap,
            'OMP_NUM_THREADS': str(threads),
            'MKL_NUM_THREADS': str(threads),
        }
        t0 = time.time()
        r = subprocess.run(
            [sys.executable, __file__, a.case, '--one', '--seeds', str(seed)],
            env=env,
            capture_output=True,
            text=True,
            cwd=HERE,
        )
        if r.returncode:
            sys.exit(f"{a.case} seed {seed} {cap} {threads} threads failed:\n{r.stderr[-2000:]}")
        row = {
            'seed': seed,
            'capability': cap,
            'threads': threads,
            **json.loads(r.stdout.strip().splitlines()[-1]),
            'seconds': round(time.time() - t0, 1),
        }
        rows.append(row)
        print(' '.join(f'{k}={v:.3f}' if isinstance(v, float) else f'{k}={v}' for k, v in row.items()), flush=True)
    df = pd.DataFrame(rows)
    metrics = [
        c for c in df.columns if c not in ('seed', 'capability', 'threads', 'seconds') and df[c].dtype.kind == 'f'
    ]
    print(
        f"\n{a.case}: {len(df)} runs; "
        + '; '.join(f"{c}: min {df[c].min():.3f}, median {df[c].median():.3f}, max {df[c].max():.3f}" for c in metrics)
    )
    if a.csv:
        df.to_csv(a.csv, index=False)


if __name__ == '__main__':
    main()

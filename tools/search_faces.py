"""Recipe search for the face-pixel path on the shipped London dev set (5 folds by subject).

Each variant is a `cross_validate` of `face_config(**overrides)` into OUT/<name>; a variant is chosen by its mean
*validation* macro-F1, never by test scores. Resumable: finished folds are skipped. Prints one line per variant and
writes OUT/log.csv.

    python tools/search_faces.py [--out results/faces/search-runs] [--only NAME ...]
"""

import argparse
import json
import time
from pathlib import Path
import pandas as pd
import torch
from gcsa_fer.face_training import face_config, cross_validate

VARIANTS = {  # name -> (attention, overrides)
    'gcsa': ('gcsa', {}),
    'none': ('none', {}),
    'gcsa-gate3': ('gcsa', {'gate_bias': 3.0}),  # gates start open (sigmoid(3) = 0.95): attention starts near identity
    'gcsa-meanmax': ('gcsa', {'visual_pool': 'meanmax'}),
    'gcsa-300ep': ('gcsa', {'epochs': 300}),
    'none-300ep': ('none', {'epochs': 300}),
    'gcsa-grid': ('gcsa', {'visual_pool': 'grid'}),  # keep where on the face a feature is (4x4 grid of means)
    'none-grid': ('none', {'visual_pool': 'grid'}),
    'gcsa-grid-300ep': ('gcsa', {'visual_pool': 'grid', 'epochs': 300}),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='results/faces/search-runs')
    p.add_argument('--only', nargs='+', default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    out = Path(a.out)
    rows = pd.read_csv(out / 'log.csv').to_dict('records') if (out / 'log.csv').exists() else []
    done = {r['variant'] for r in rows}
    for name, (att, ov) in VARIANTS.items():
        if (a.only and name not in a.only) or name in done:
            continue
        t = time.time()
        tab = cross_validate(face_config(attention=att, **ov), out / name, progress=False)
        row = {
            'variant': name,
            'attention': att,
            **{k: json.dumps(v) for k, v in ov.items()},
            'val_macro_f1': tab['val_macro_f1'].mean(),
            'test_accuracy': tab['accuracy'].mean(),
            'test_accuracy_std': tab['accuracy'].std(ddof=1),
            'baseline_accuracy': tab['baseline_accuracy'].mean(),
            'minutes': round((time.time() - t) / 60, 1),
        }
        rows.append(row)
        print(' '.join(f'{k}={v:.3f}' if isinstance(v, float) else f'{k}={v}' for k, v in row.items()), flush=True)
        pd.DataFrame(rows).to_csv(out / 'log.csv', index=False)


if __name__ == '__main__':
    main()

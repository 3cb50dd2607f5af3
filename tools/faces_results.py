"""Collect a face-folder cross-validation (the output of `gcsa_fer train`) into a results folder: cv.csv, cv.json,
each fold's metrics.json and a README.md table with its provenance (command, commit, device, wall time).

    python tools/faces_results.py runs/faces-london results/faces --command "gcsa_fer train --data data/london_faces_dev --out runs/faces-london"
"""

import argparse
import json
import shutil
from pathlib import Path
import pandas as pd


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('runs')
    ap.add_argument('out')
    ap.add_argument('--command', default='')
    a = ap.parse_args(argv)
    runs, out = Path(a.runs), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cv, table = json.loads((runs / 'cv.json').read_text()), pd.read_csv(runs / 'cv.csv')
    shutil.copy2(runs / 'cv.csv', out / 'cv.csv')
    shutil.copy2(runs / 'cv.json', out / 'cv.json')
    metrics = {}
    for k in table['fold']:
        m = json.loads((runs / f'fold{k}' / 'metrics.json').read_text())
        metrics[k] = m
        (out / 'runs' / f'fold{k}').mkdir(parents=True, exist_ok=True)
        shutil.copy2(runs / f'fold{k}' / 'metrics.json', out / 'runs' / f'fold{k}' / 'metrics.json')
        shutil.copy2(runs / f'fold{k}' / 'history.csv', out / 'runs' / f'fold{k}' / 'history.csv')
    first = metrics[table['fold'].iloc[0]]

    def pct(s):
        return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"

    lines = [
        f"# Faces: {len(table)}-fold cross-validation by subject",
        '',
        f"Command: `{a.command}`" if a.command else '',
        '',
        f"Commit `{first.get('git_commit')}`, device {first.get('device')}, torch {first.get('torch')}; "
        f"{sum(m['wall_seconds'] for m in metrics.values()) / 60:.1f} min for the folds.",
        '',
        f"Attention: `{cv['attention']}`. Test accuracy {pct(cv['accuracy'])} %, macro-F1 over the classes present "
        f"{pct(cv['macro_f1'])} % (mean ± std over folds); logistic regression on 32x32 grey pixels of the same crops "
        f"(the floor, same folds): accuracy {pct(cv['baseline_accuracy'])} %."
        + (
            f" Within-subject accuracy (each test person's photos compared with each other, a diagnostic, not a single photo's "
            f"accuracy: `face_training.within_subject_accuracy`): {pct(cv['within_subject_accuracy'])} %."
            if cv.get('within_subject_accuracy')
            else ''
        ),
        '',
        table.assign(
            **{c: (100 * table[c]).round(1) for c in table.columns if c.endswith(('accuracy', 'macro_f1'))}
        ).to_markdown(index=False),
        '',
    ]
    (out / 'README.md').write_text('\n'.join(l for l in lines if l is not None) + '\n')
    print((out / 'README.md').read_text())


if __name__ == '__main__':
    main()

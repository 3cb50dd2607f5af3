"""The visual-branch study on the seven FER classes of wild_faces_dev (issue 34, item 3), 5 folds by subject, every
row on the same folds, into results/wild_faces/: the pixel LR floor, the mini-Xception zero-shot, the linear probe on
its frozen features, mini-Xception fine-tuned with GCSA / the matched control / no attention, RHCNN from scratch (Base,
+GCSA, matched control) and RHCNN + GCSA distilled from the mini-Xception. table.csv / table.md (macro-F1 over the
classes with at least --min-test test photos in every fold, accuracy), recall.csv (per-class recall), confusion.png
(seaborn), paired.csv (GCSA against its controls, paired by fold and seed, with the detectable difference) and
budget.json; README.md with the command, commit and device.

    make wild-faces                                           # the whole study (budget: results/wild_faces/README.md)
    python tools/wild_faces_results.py --rows pixel-lr rhcnn-gcsa --folds 1 --seeds 1   # part of it
    python tools/wild_faces_results.py --report-only          # the tables from the finished records alone
    python tools/wild_faces_results.py --decide               # does the exported best row become predict's default?

Resumable: each finished (row, fold, seed) is a record, OUT/runs/<row>/fold<k>-seed<s>.json (its test labels and
predictions), read and never run again; the run folders (checkpoints, the crop cache) go to --work (runs/wild_faces).
"""

from __future__ import annotations
import argparse
import datetime
import json
import sys
import time
from pathlib import Path
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import confusion_matrix, f1_score
from gcsa_fer.paired_stats import paired_differences, paired_summary
from gcsa_fer.catalogue import shipped_data_dir
from gcsa_fer.core import EXPR_CLASSES, atomic_write
from gcsa_fer.datasets import get_dataset
from gcsa_fer.evaluate import read_predictions
from gcsa_fer.experiment import run_experiment
from gcsa_fer.face_training import face_config, pixel_baseline
from gcsa_fer.mini_xception import load_face_model
from gcsa_fer.model_export import export_default_model
from gcsa_fer.pretrain import distill, face_arrays, linear_probe, pretrained_config, zero_shot
from gcsa_fer.provenance import device_name, loaded_commit
from gcsa_fer.readers.faces import FaceFolder, expr_index

REPO = Path(__file__).resolve().parent.parent
COMMAND = 'python tools/wild_faces_results.py'
NOTES = '<!-- written by hand below this line; the command keeps it -->'
# key -> (the table's name, how it is made, its attention); the keys are what --rows takes
ROWS = {
    'pixel-lr': ('pixel LR floor (32x32 grey)', 'pixel', None),
    'zero-shot': ('mini-Xception zero-shot', 'zero-shot', None),
    'probe': ('linear probe on frozen mini-Xception features', 'probe', None),
    'minix-gcsa': ('mini-Xception fine-tuned + GCSA', 'fine-tune', 'gcsa'),
    'minix-matched': ('mini-Xception fine-tuned + matched control', 'fine-tune', 'matched'),
    'minix-none': ('mini-Xception fine-tuned, no attention', 'fine-tune', 'none'),
    'rhcnn-none': ('RHCNN from scratch (Base)', 'scratch', 'none'),
    'rhcnn-gcsa': ('RHCNN + GCSA from scratch', 'scratch', 'gcsa'),
    'rhcnn-matched': ('RHCNN + matched control from scratch', 'scratch', 'matched'),
    'rhcnn-distilled': ('RHCNN + GCSA distilled from the mini-Xception, then trained', 'distilled', 'gcsa'),
}
# The attention study's gate/skip variants (issue 32: `make_attention`'s gcsa-residual, matched-noskip, gcsa-open) on
# both backbones: with them the paired differences separate the gate from the skip, as on audio (results/attention).
VARIANTS = {
    'gcsa-residual': 'GCSA with skip',
    'matched-noskip': 'matched control without skip',
    'gcsa-open': 'GCSA, gates open',
}
for _key, _name in VARIANTS.items():
    ROWS[f'minix-{_key}'] = (f'mini-Xception fine-tuned + {_name}', 'fine-tune', _key)
    ROWS[f'rhcnn-{_key}'] = (f'RHCNN + {_name} from scratch', 'scratch', _key)
# GCSA against its controls, paired by (fold, seed): these rows run with every seed, the others with the first
GATE_SKIP = [  # gate vs no gate with and without the skip; skip vs no skip with and without the gate; open gates
    ('gcsa-residual', 'matched'),
    ('gcsa', 'matched-noskip'),
    ('gcsa-residual', 'gcsa'),
    ('matched', 'matched-noskip'),
    ('gcsa-open', 'gcsa'),
]
COMPARISONS = [
    (f'{b}-{x}', f'{b}-{y}') for b in ('minix', 'rhcnn') for x, y in [('gcsa', 'matched'), ('gcsa', 'none'), *GATE_SKIP]
]
SEEDED = sorted({r for pair in COMPARISONS for r in pair})
NETWORKS = [k for k, (_, kind, _) in ROWS.items() if kind in ('fine-tune', 'scratch', 'distilled')]  # exportable
# The budget chosen from the timing run (results/wild_faces/README.md says how); --quick is a smoke run of the command.
BUDGET = dict(face_size=48, fine_tune_epochs=1, scratch_epochs=8, distill_epochs=5, seeds=3, n_folds=5)
QUICK = dict(face_size=32, fine_tune_epochs=1, scratch_epochs=1, distill_epochs=1, seeds=2)
DETECTOR = 'blazeface'  # finds 98 % of these faces, Haar 83 % (results/faces/detectors_wild.txt)
LEFT_OUT = ('contempt',)  # not one of the seven FER classes (8 photos of this set)


def study_manifest(data: str, work: Path, left_out=LEFT_OUT) -> Path:
    "The face set's manifest without the `left_out` classes, its paths absolute: WORK/manifest.csv."
    root = Path(data)
    root = root if root.exists() else shipped_data_dir() / data
    csv = root if root.is_file() else root / 'manifest.csv'
    man = pd.read_csv(csv, dtype=str)
    drop = {expr_index(c) for c in left_out}
    man = man[[expr_index(v) not in drop for v in man['label']]]
    man = man.assign(path=[str((csv.parent / p).resolve()) for p in man['path']])
    work.mkdir(parents=True, exist_ok=True)
    man.to_csv(work / 'manifest.csv', index=False)
    return work / 'manifest.csv'


def row_config(row: str, manifest: Path, fold: int, seed: int, budget: dict, **over):
    "The `Config` of a network row's run on `fold` with `seed`."
    _, kind, attention = ROWS[row]
    make = pretrained_config if kind == 'fine-tune' else face_config
    epochs = budget['fine_tune_epochs'] if kind == 'fine-tune' else budget['scratch_epochs']
    return make(str(manifest), attention, n_folds=budget['n_folds'], fold=fold, seed=seed, epochs=epochs,
                face_size=budget['face_size'], detector=DETECTOR, **over)  # fmt: skip


def _arrays(manifest: Path, fold: int, budget: dict, cache: Path) -> dict:
    "Each split's crops and labels for `fold` (the crops the trained rows see)."
    cfg = row_config('rhcnn-gcsa', manifest, fold, 0, budget)
    return {s: face_arrays(cfg, s, cache) for s in ('train', 'val', 'test')}


def among(p: np.ndarray, classes) -> list[int]:
    "The most probable of `classes` (EXPR indices) for each row of `p` (N x 8 EXPR probabilities)."
    classes = np.asarray(classes)
    return classes[np.asarray(p)[:, classes].argmax(1)].tolist()


def run_one(row: str, fold: int, seed: int, manifest: Path, budget: dict, work: Path, classes, quiet: bool) -> dict:
    "Train or apply one row on one fold: the test labels and predictions (EXPR indices) and what it took."
    kind, cache = ROWS[row][1], work / 'cache'
    if kind == 'pixel':
        cfg = row_config('rhcnn-gcsa', manifest, fold, 0, budget)
        return {'labels': list(get_dataset('faces', 'test', cfg, cache).labels),
                'predicted': pixel_baseline(cfg, cache, predictions=True)['predicted']}  # fmt: skip
    if kind in ('zero-shot', 'probe'):
        split = _arrays(manifest, fold, budget, cache)
        labels = split['test'][1].tolist()
        if kind == 'zero-shot':
            return {
                'labels': labels,
                'predicted': among(load_face_model('pretrained').expr_proba(split['test'][0]), classes),
            }
        p = linear_probe(split['train'], split['val'], split['test'], predictions=True)
        return {'labels': labels, 'predicted': p['predicted'], 'C': p['C']}
    over, extra = {}, {}
    if kind == 'distilled':
        split = _arrays(manifest, fold, budget, cache)
        student = work / row / f'fold{fold}-seed{seed}' / 'distill'
        own = np.concatenate([split['train'][0], split['val'][0]])  # the fold's own training photos, labels unused
        d = distill('pretrained', (), student, cfg=row_config('rhcnn-gcsa', manifest, fold, seed, budget), crops=own,
                    epochs=budget['distill_epochs'], seed=seed, progress=not quiet)  # fmt: skip
        over = {'visual_backbone': f"rhcnn:{d['weights']}"}
        extra = {'distill_agreement_held_out': d['agreement_held_out'], 'distill_seconds': d['seconds']}
    run = work / row / f'fold{fold}-seed{seed}'
    m = run_experiment(row_config(row, manifest, fold, seed, budget, **over), run, cache, progress=not quiet)
    if m.get('status') != 'complete':
        raise RuntimeError(f"{row} fold {fold} seed {seed} did not finish: {m}")
    pt = read_predictions(run / 'predictions_test.csv')
    return {'labels': pt['label'].tolist(), 'predicted': among(pt['p'], classes), 'best_epoch': m['best_epoch'],
            'seconds_training': m.get('seconds_training'), **extra}  # fmt: skip


def record_path(out: Path, row: str, fold: int, seed: int) -> Path:
    return out / 'runs' / row / f'fold{fold}-seed{seed}.json'


def seeds_of(row: str, budget: dict) -> list[int]:
    "The seeds a row runs with: every seed for the rows of the GCSA comparison, the first for the others."
    return list(range(budget['seeds'])) if row in SEEDED else [0]


def run_study(rows, folds, budget: dict, data: str, out: Path, work: Path, quiet: bool) -> list[dict]:
    "Every (row, fold, seed) not recorded yet, most informative first (one seed of every row before more seeds)."
    manifest = study_manifest(data, work)
    classes = sorted({int(c) for c in _labels_of(manifest)})
    todo = sorted(((s, k, r) for r in rows for k in folds for s in seeds_of(r, budget)), key=lambda t: (t[0], t[1]))
    for seed, fold, row in todo:
        path = record_path(out, row, fold, seed)
        if path.exists():
            rec = json.loads(path.read_text())
            if _no_seeds(rec['budget']) != _no_seeds(budget):
                raise SystemExit(
                    f"{path} was made with another budget ({rec['budget']}); use another --out, or remove the record"
                )
            continue
        t0, c0 = time.time(), time.process_time()
        print(f'{row} fold {fold} seed {seed} ...', flush=True)
        rec = run_one(row, fold, seed, manifest, budget, work, classes, quiet)
        rec |= {k: [int(v) for v in rec[k]] for k in ('labels', 'predicted')}
        rec = {'row': row, 'fold': fold, 'seed': seed, 'budget': budget, **rec, 'seconds': round(time.time() - t0, 1),
               'cpu_seconds': round(time.process_time() - c0, 1),
               'commit': loaded_commit(), 'finished': _now()}  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda t: t.write_text(json.dumps(rec)))
        print(f'{row} fold {fold} seed {seed}: {rec["seconds"]:.0f} s', flush=True)
    return load_records(out)


def fold_counts(manifest: Path, n_folds: int) -> pd.DataFrame:
    "Photos of each split, and test photos of each class, in every fold (no crop is cut)."
    out = []
    for k in range(1, n_folds + 1):
        split = {s: FaceFolder(manifest, s, fold=k, n_folds=n_folds) for s in ('train', 'val', 'test')}
        tests = np.bincount(split['test'].labels, minlength=8)
        present = sorted(set(_labels_of(manifest)))
        out.append(
            {'fold': k, **{s: len(d) for s, d in split.items()}, **{EXPR_CLASSES[c]: int(tests[c]) for c in present}}
        )
    return pd.DataFrame(out)


def _no_seeds(budget: dict) -> dict:
    "A budget but its number of seeds (more seeds later keep the records of the first ones)."
    return {k: v for k, v in budget.items() if k != 'seeds'}


def _labels_of(manifest: Path) -> list[int]:

    return [expr_index(v) for v in pd.read_csv(manifest, dtype=str)['label']]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='minutes')


def load_records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / 'runs').glob('*/fold*-seed*.json'))]


def reported_classes(records: list[dict], min_test: int) -> list[int]:
    "The classes with at least `min_test` test photos in every fold (the folds' test labels are the same for every row)."
    tests = {r['fold']: np.bincount(r['labels'], minlength=8) for r in records}
    counts = np.stack(list(tests.values()))
    return [c for c in range(8) if (counts[:, c] >= min_test).all()]


def scores(records: list[dict], reported) -> pd.DataFrame:
    "One line per record: macro-F1 over the `reported` classes, accuracy over every test photo, recall per class."
    out = []
    for r in records:
        y, p = np.asarray(r['labels']), np.asarray(r['predicted'])
        rec = {f'recall {EXPR_CLASSES[c]}': float((p[y == c] == c).mean()) for c in np.unique(y)}
        out.append({'row': r['row'], 'fold': r['fold'], 'seed': r['seed'], 'n_test': len(y), 'accuracy': float((y == p).mean()),
                    'macro_f1': float(f1_score(y, p, labels=reported, average='macro', zero_division=0)), **rec})  # fmt: skip
    return pd.DataFrame(out)


def summarise(per_run: pd.DataFrame) -> pd.DataFrame:
    "One line per row: the seeds averaged within each fold, then mean ± std over the folds."
    out = []
    for row in [r for r in ROWS if r in set(per_run['row'])]:
        f = per_run[per_run['row'] == row].groupby('fold')[['accuracy', 'macro_f1']].mean()
        s = per_run.loc[per_run['row'] == row, 'seed']
        out.append({'key': row, 'row': ROWS[row][0], 'folds': len(f), 'seeds': s.nunique(),
                    'macro_f1': f['macro_f1'].mean(), 'macro_f1_std': f['macro_f1'].std(ddof=1),
                    'accuracy': f['accuracy'].mean(), 'accuracy_std': f['accuracy'].std(ddof=1),
                    'per_fold_macro_f1': ' '.join(f'{v:.3f}' for v in f['macro_f1'])})  # fmt: skip
    return pd.DataFrame(out)


def recall_table(records: list[dict]) -> pd.DataFrame:
    "Recall of each class, every fold and seed of a row pooled: row x class."
    out = {}
    for row in [r for r in ROWS if any(x['row'] == r for x in records)]:
        y = np.concatenate([x['labels'] for x in records if x['row'] == row])
        p = np.concatenate([x['predicted'] for x in records if x['row'] == row])
        out[ROWS[row][0]] = {EXPR_CLASSES[c]: float((p[y == c] == c).mean()) for c in np.unique(y)}
    return pd.DataFrame(out).T.rename_axis('row')


def confusion_png(records: list[dict], classes, path: Path) -> None:
    "One heatmap per row (seaborn): true class by predicted class, each true class's photos as shares."
    import matplotlib  # optional heavy dependencies, imported where they are used

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import seaborn as sns

    rows = [r for r in ROWS if any(x['row'] == r for x in records)]
    n = len(rows)
    cols = min(n, 3)
    fig, axes = plt.subplots(
        (n + cols - 1) // cols, cols, figsize=(4.6 * cols, 4.2 * ((n + cols - 1) // cols)), squeeze=False
    )
    names = [EXPR_CLASSES[c] for c in classes]
    for ax, row in zip(axes.flat, rows):
        y = np.concatenate([x['labels'] for x in records if x['row'] == row])
        p = np.concatenate([x['predicted'] for x in records if x['row'] == row])
        cm = confusion_matrix(y, p, labels=classes, normalize='true')
        sns.heatmap(cm, ax=ax, vmin=0, vmax=1, cmap='Blues', annot=True, fmt='.2f', cbar=False,
                    xticklabels=names, yticklabels=names, annot_kws={'size': 7})  # fmt: skip
        ax.set(title=ROWS[row][0], xlabel='predicted', ylabel='true')
        ax.title.set_fontsize(8)
    for ax in list(axes.flat)[n:]:
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def paired(per_run: pd.DataFrame) -> pd.DataFrame:
    "GCSA minus each control, macro-F1 in points, paired by (fold, seed), with `gcsa_fer.paired_stats`."
    runs = per_run.assign(test_macro_f1=100 * per_run['macro_f1'])
    out = []
    for a, b in COMPARISONS:
        d = paired_differences(runs, a, b)
        if len(d):
            out.append({'comparison': f'{ROWS[a][0]} minus {ROWS[b][0]}', **paired_summary(d['diff'], d['fold'])})
    return pd.DataFrame(out)


def paired_png(pair: pd.DataFrame, path: Path):
    "Each comparison's mean paired difference with its fold-clustered 95 % interval (points), one line a comparison."
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.42 * len(pair) + 1))
    y = np.arange(len(pair))[::-1]
    err = [pair['mean_diff'] - pair['hb_ci_low'], pair['hb_ci_high'] - pair['mean_diff']]
    ax.errorbar(pair['mean_diff'], y, xerr=err, fmt='o', color='black', capsize=3)
    ax.axvline(0, color='grey', lw=0.8, ls='--')
    ax.set(yticks=y, yticklabels=pair['comparison'], xlabel='paired difference of test macro-F1 (points), 95 % CI')
    fig.savefig(path, dpi=110, bbox_inches='tight')
    plt.close(fig)


DETECTORS = REPO / 'results' / 'faces' / 'detectors_wild.txt'  # benchmarks/bench_detect.py's comparison on these photos


def pct(m, s) -> str:
    return f'{100 * m:.1f} ± {100 * s:.1f}' if pd.notna(s) else f'{100 * m:.1f}'


def report(out: Path, min_test: int, wall: float | None = None) -> pd.DataFrame:
    "The tables, the figure and the README from the records in OUT/runs alone."
    records = load_records(out)
    if not records:
        raise SystemExit(f'{out}/runs holds no records: nothing to report')
    budget = records[0]['budget']
    reported = reported_classes(records, min_test)
    per_run = scores(records, reported)
    table = summarise(per_run)
    table.to_csv(out / 'table.csv', index=False)
    per_run.to_csv(out / 'runs.csv', index=False)
    recall = recall_table(records)
    recall.to_csv(out / 'recall.csv')
    pair = paired(per_run)
    pair.to_csv(out / 'paired.csv', index=False)
    classes = sorted({c for r in records for c in r['labels']})
    confusion_png(records, classes, out / 'confusion.png')
    if not pair.empty:
        paired_png(pair, out / 'paired.png')
    show = table.assign(**{'macro-F1 %': [pct(m, s) for m, s in zip(table['macro_f1'], table['macro_f1_std'])],
                           'accuracy %': [pct(m, s) for m, s in zip(table['accuracy'], table['accuracy_std'])]})  # fmt: skip
    md = show[['row', 'folds', 'seeds', 'macro-F1 %', 'accuracy %', 'per_fold_macro_f1']].to_markdown(index=False)
    (out / 'table.md').write_text(md + '\n')
    names = ', '.join(EXPR_CLASSES[c] for c in reported)
    gone = ', '.join(EXPR_CLASSES[c] for c in classes if c not in reported) or 'none'
    minutes = sum(r['seconds'] for r in records) / 60
    lines = [
        f'# The visual-branch study on seven classes of wild_faces_dev ({budget["n_folds"]} folds by subject)',
        '',
        f'Command: `{COMMAND}' + (' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else '') + '`',
        '',
        f'Records made at {", ".join(f"`{c}`" for c in sorted({r["commit"] for r in records}))}, this report at '
        f'`{loaded_commit()}`; device '
        f'{device_name(torch.device("cpu"))}, torch {torch.__version__}, {torch.get_num_threads()} thread(s); '
        f'{len(records)} records, {minutes:.0f} min of work recorded'
        + (f', this invocation {wall / 60:.0f} min wall' if wall is not None else '')
        + '.',
        '',
        f'Budget (`budget.json`): {json.dumps(budget)}; face detector {DETECTOR}.',
        '',
        f'Macro-F1 over the classes with at least {min_test} test photos in every fold: **{names}** '
        f'(left out of the macro-F1, still in the accuracy and the recall: {gone}). Mean ± std over the folds, seeds '
        'averaged within a fold first.',
        '',
        md,
        '',
        'Per-class recall, every fold and seed pooled (`recall.csv`); confusion matrices in `confusion.png`.',
        '',
        recall.map(lambda v: f'{100 * v:.0f}').to_markdown(),
        '',
        'GCSA minus its controls, macro-F1 points paired by (fold, seed) (`paired.csv`; `gcsa_fer.paired_stats.paired_summary`); '
        '`fold_detectable` is the smallest true difference the folds would detect (80 % power, 5 %, t on the folds):',
        '',
        _paired_md(pair),
        '',
        '![paired differences](paired.png)' if not pair.empty else '',
        '',
    ]
    if DETECTORS.exists():  # the face detectors that cut the crops, compared on these photos (its own command)
        lines += ['Face detectors on these photos (`results/faces/detectors_wild.txt`, its command on its first line):',
                  '', '```', DETECTORS.read_text().strip(), '```', '']  # fmt: skip
    (out / 'budget.json').write_text(json.dumps(budget, indent=1) + '\n')
    old = (out / 'README.md').read_text() if (out / 'README.md').exists() else ''
    kept = old[old.index(NOTES) :] if NOTES in old else NOTES + '\n'
    (out / 'README.md').write_text('\n'.join(lines) + '\n' + kept)
    print('\n'.join(lines))
    return table


def _paired_md(pair: pd.DataFrame) -> str:
    if pair.empty:
        return '(no comparison has both of its rows yet)'
    cols = ['comparison', 'n_pairs', 'mean_diff', 'hb_ci_low', 'hb_ci_high', 'fold_better_in', 'n_folds',
            'fold_wilcoxon_p', 'detectable', 'fold_detectable']  # fmt: skip
    return pair[[c for c in cols if c in pair]].round(2).to_markdown(index=False)


# The default-model rule (issue 34, item 4)
MIN_GAIN = 0.05  # fold-mean macro-F1 over the zero-shot model's


def best_network(table: pd.DataFrame) -> pd.Series | None:
    "The trained row (a network `predict` can load) with the best fold-mean macro-F1, or None."
    nets = table[table['key'].isin(NETWORKS)]
    return None if nets.empty else nets.sort_values('macro_f1', ascending=False).iloc[0]


def decide_default(table: pd.DataFrame, london: dict) -> tuple[bool, str, str | None]:
    "Does the best network row become predict's default face model? (yes/no, the reason, that row's key)."
    best = best_network(table)
    if 'zero-shot' not in set(table['key']) or best is None:
        return False, 'the study table lacks the zero-shot row or every trained row: keep the zero-shot default', None
    zs = table.set_index('key').loc['zero-shot', 'macro_f1']
    gain = best['macro_f1'] - zs
    said = f"{best['row']}: fold-mean macro-F1 {100 * best['macro_f1']:.1f} against zero-shot {100 * zs:.1f}"
    if gain < MIN_GAIN - 1e-12:
        return (
            False,
            f'{said}, {100 * gain:+.1f} points, under the {100 * MIN_GAIN:.0f} needed: keep the zero-shot default',
            best['key'],
        )
    if best['key'] not in london or 'zero-shot' not in london:
        return False, f'{said}, but no London dev accuracy for both models: keep the zero-shot default', best['key']
    a, z = london[best['key']], london['zero-shot']
    if a < z - 1e-12:
        return (
            False,
            f'{said}, but London dev accuracy {100 * a:.1f} < zero-shot {100 * z:.1f}: keep the zero-shot default',
            best['key'],
        )
    return (
        True,
        f'{said} (+{100 * gain:.1f} points) and London dev accuracy {100 * a:.1f} >= {100 * z:.1f}: it becomes the default',
        best['key'],
    )


def train_final(row: str, budget: dict, data: str, work: Path, quiet: bool) -> Path:
    "`row` trained on every photo of the study (no test subjects, the last epoch kept): its run folder."
    manifest = study_manifest(data, work)
    run, cache, over = work / 'final' / row, work / 'cache', {}
    if ROWS[row][1] == 'distilled':
        cfg = row_config('rhcnn-gcsa', manifest, 0, 0, budget)
        crops = face_arrays(cfg, 'all', cache)[0]
        d = distill('pretrained', (), run / 'distill', cfg=cfg, crops=crops, epochs=budget['distill_epochs'],
                    progress=not quiet)  # fmt: skip
        over = {'visual_backbone': f"rhcnn:{d['weights']}"}
    cfg = row_config(row, manifest, 0, 0, budget, select_epoch='last', **over)
    m = run_experiment(cfg, run, cache, progress=not quiet)
    if m.get('status') != 'complete':
        raise RuntimeError(f'the final {row} did not finish: {m}')
    return run


def london_accuracy(models: dict, work: Path) -> dict:
    "Each face model's accuracy on every London dev photo, the argmax among the set's two classes (as `zero_shot`)."
    cfg = face_config('', detector=DETECTOR)
    crops, labels = face_arrays(cfg, 'all', work / 'cache-london')
    return {k: zero_shot(load_face_model(m), crops, labels)['accuracy'] for k, m in models.items()}


def model_card(row: str, table: pd.DataFrame, recall: pd.DataFrame, london: dict, why: str, budget: dict) -> str:
    "What the exported model was trained on, its classes, its per-class figures and its limits (markdown)."
    t = table.set_index('key').loc[row]
    rec = recall.loc[ROWS[row][0]].dropna()
    figures = pd.DataFrame({'recall % (folds pooled)': (100 * rec).round(0)}).to_markdown()
    return '\n'.join(
        [
            f"## The wild-faces study's best row: {ROWS[row][0]}",
            '',
            f'Data: wild_faces_dev (everyday photos, mostly news photos of public figures and film stills), the seven FER '
            f'classes ({", ".join(rec.index)}; contempt left out), every photo and subject; face crops by '
            f"{DETECTOR}, {budget['face_size']} px; budget {json.dumps(budget)}; the last epoch kept.",
            '',
            f"Cross-validated by subject ({t['folds']} folds, the same recipe; `results/wild_faces/`): macro-F1 "
            f"{pct(t['macro_f1'], t['macro_f1_std'])} %, accuracy {pct(t['accuracy'], t['accuracy_std'])} %. This model "
            'was trained on every subject, so it has no held-out figure of its own.',
            '',
            figures,
            '',
            'London dev, all 102 photos, the argmax among its two classes: '
            + ', '.join(f'{k} {100 * v:.1f} %' for k, v in london.items()),
            '',
            f'Default-model rule: {why}',
            '',
            'Limits: mostly adult public figures photographed by the press; Neutral and Happiness are 72 % of the photos '
            'and Fear has 18 photos of 13 people, so the rare classes\' figures are uncertain; one face a photo; the labels '
            'are one annotator\'s reading of a posed or candid face, not what the person felt. Not for decisions about people.',
            '',
        ]
    )


def export(out: Path, models: Path, data: str, work: Path, quiet: bool) -> tuple[bool, str]:
    "Train the study's best network row on every photo, export it to MODELS/wild-faces with its model card, measure both models on London dev (OUT/london.json) and apply the default-model rule."
    table, recall = pd.read_csv(out / 'table.csv'), pd.read_csv(out / 'recall.csv', index_col=0)
    best = best_network(table)
    if best is None:
        raise SystemExit(f'{out}/table.csv has no trained row to export')
    row = best['key']
    rec = json.loads(next((out / 'runs' / row).glob('fold*-seed*.json')).read_text())
    budget = {**rec['budget'], 'seeds': 1}  # the recipe the study measured
    folder = export_default_model(train_final(row, budget, data, work, quiet), models / 'wild-faces', 'visual')
    london = london_accuracy({'zero-shot': 'pretrained', row: str(folder)}, work)
    (out / 'london.json').write_text(json.dumps(london, indent=1) + '\n')
    yes, why, _ = decide_default(table, london)
    card = model_card(row, table, recall, london, why, budget)
    (out / 'MODEL_CARD.md').write_text(card)
    (folder / 'README.md').write_text((folder / 'README.md').read_text() + '\n' + card)
    return yes, why


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', default='wild_faces_dev', help='a face folder with a manifest (path,label,subject)')
    ap.add_argument('--out', default=str(REPO / 'results' / 'wild_faces'))
    ap.add_argument('--work', default=str(REPO / 'runs' / 'wild_faces'), help='run folders and the crop cache')
    ap.add_argument('--rows', nargs='+', choices=list(ROWS), default=list(ROWS))
    ap.add_argument('--folds', type=int, nargs='+', default=None, help='default: all --n-folds')
    ap.add_argument('--seeds', type=int, default=None, help=f"seeds of the GCSA comparison's rows ({BUDGET['seeds']})")
    ap.add_argument('--n-folds', type=int, default=BUDGET['n_folds'])
    for k in ('face_size', 'fine_tune_epochs', 'scratch_epochs', 'distill_epochs'):
        ap.add_argument('--' + k.replace('_', '-'), type=int, default=None, help=f'default {BUDGET[k]}')
    ap.add_argument(
        '--min-test', type=int, default=10, help='a class is in the macro-F1 with this many test photos a fold'
    )
    ap.add_argument('--quick', action='store_true', help=f'a smoke run of the command: {QUICK}')
    ap.add_argument('--report-only', action='store_true', help='the tables from the finished records, nothing run')
    ap.add_argument('--decide', action='store_true', help="OUT/table.csv and OUT/london.json: predict's default?")
    ap.add_argument('--export', action='store_true', help='train the best trained row on every photo into --models')
    ap.add_argument('--models', default=str(REPO / 'models'), help='--export writes MODELS/wild-faces')
    ap.add_argument('--counts', action='store_true', help='the photos of each fold and class, nothing run')
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args(argv)
    out, t0 = Path(a.out), time.time()
    if a.decide:
        london = json.loads((out / 'london.json').read_text()) if (out / 'london.json').exists() else {}
        yes, why, _ = decide_default(pd.read_csv(out / 'table.csv'), london)
        print(why)
        return 0 if yes else 1
    if a.counts:
        print(fold_counts(study_manifest(a.data, Path(a.work)), a.n_folds).to_markdown(index=False))
        return 0
    if a.export:
        yes, why = export(out, Path(a.models), a.data, Path(a.work), a.quiet)
        print(why)
        return 0
    if not a.report_only:
        budget = {**BUDGET, **(QUICK if a.quick else {}), 'n_folds': a.n_folds}
        given = {
            k: getattr(a, k) for k in ('face_size', 'fine_tune_epochs', 'scratch_epochs', 'distill_epochs', 'seeds')
        }
        budget |= {k: v for k, v in given.items() if v is not None}
        folds = a.folds or list(range(1, a.n_folds + 1))
        run_study(a.rows, folds, budget, a.data, out, Path(a.work), a.quiet)
    report(out, a.min_test, time.time() - t0)
    return 0


if __name__ == '__main__':
    sys.exit(main())

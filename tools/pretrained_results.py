"""The pretrained face models on London dev (5 folds by subject), all rows in one run on the same folds, into
results/pretrained/: the fine-tuning recipe chosen on validation (recipe.csv), then zero-shot, a linear probe on frozen
features, fine-tuned with and without GCSA, RHCNN distilled then fine-tuned, RHCNN from scratch (today's face recipe)
and the pixel LR floor (table.csv, table.md, folds.csv); the CREMA-D sample clips zero-shot, frame by frame (cremad.csv);
README.md with the command, commit, device and wall times.

    OMP_NUM_THREADS=1 nice python tools/pretrained_results.py                 # about 1.5 h on a busy 2-core CPU
    python tools/pretrained_results.py --folds 1 --quick --out /tmp/p         # a smoke run: 2 epochs everywhere

Runs go to --runs (default runs/pretrained; resumable: a finished run is read, not trained again).
"""

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parent.parent
COMMAND = 'python tools/pretrained_results.py'
NOTES = '<!-- written by hand below this line; the command keeps it -->'
# The fine-tuning recipes compared on validation (`FINE_TUNE_RECIPE` is the one chosen); freeze: epochs with the
# pretrained trunk frozen (its learning rate 0) before the rest of the epochs train everything.
RECIPES = {
    'lr1e-4': (dict(lr=1e-4, lr_heads=3e-3), 0),
    'lr3e-4': (dict(lr=3e-4, lr_heads=3e-3), 0),
    'lr1e-3': (dict(lr=1e-3, lr_heads=3e-3), 0),
    'freeze15-lr3e-4': (dict(lr=3e-4, lr_heads=3e-3), 15),
}


def per_fold(fn, folds):
    "Concatenate the one-row tables `fn(k)` returns."
    return pd.concat([fn(k) for k in folds], ignore_index=True)


def two_stage(runs: Path, k: int, over: dict, freeze: int, quiet: bool) -> pd.DataFrame:
    "Fold k: the trunk frozen for `freeze` epochs, then everything trains from there for the rest."
    from gcsa_fer.checkpoint import load_checkpoint, save_weights
    from gcsa_fer.pretrain import fine_tune_faces

    frozen = runs / 'frozen'
    fine_tune_faces('', frozen, folds=[k], progress=not quiet, **{**over, 'epochs': freeze, 'lr': 0.0})
    kept = frozen / f'fold{k}' / 'best.pt'
    init = frozen / f'fold{k}' / 'visual.safetensors'
    sd = load_checkpoint(kept)['model']
    save_weights({n[len('visual.') :]: v for n, v in sd.items() if n.startswith('visual.')}, init)
    rest = {**over, 'epochs': over['epochs'] - freeze, 'visual_backbone': f'mini_xception:{init}'}
    return fine_tune_faces('', runs, folds=[k], progress=not quiet, **rest)


def recipe_search(runs: Path, folds, epochs: int, quiet: bool) -> tuple[pd.DataFrame, dict]:
    "Each recipe's folds; the table of validation (and test) means; the recipe with the best mean validation macro-F1."
    from gcsa_fer.pretrain import fine_tune_faces

    tables, rows = {}, []
    for name, (over, freeze) in RECIPES.items():
        over = {**over, 'epochs': epochs}
        freeze = min(freeze, epochs // 2) if freeze else 0
        t0 = time.time()
        if freeze:
            t = per_fold(lambda k: two_stage(runs / name, k, over, freeze, quiet), folds)
        else:
            t = fine_tune_faces('', runs / name, folds=folds, progress=not quiet, **over)
        tables[name] = t
        rows.append({'recipe': name, **over, 'freeze_epochs': freeze, 'val_macro_f1': t['val_macro_f1'].mean(),
                     'test_accuracy': t['accuracy'].mean(), 'best_epochs': ' '.join(map(str, t['best_epoch'])),
                     'minutes': round((time.time() - t0) / 60, 1)})  # fmt: skip
        print(f"recipe {name}: validation macro-F1 {rows[-1]['val_macro_f1']:.3f}", flush=True)
    table = pd.DataFrame(rows)
    best = table.sort_values(['val_macro_f1', 'freeze_epochs'], ascending=[False, True]).iloc[0]['recipe']
    table['chosen'] = table['recipe'] == best
    return table, {'name': best, 'table': tables[best]}


def zero_shot_and_probe(runs: Path, folds) -> tuple[pd.DataFrame, pd.DataFrame]:
    "Per fold: the FER model zero-shot on the test subjects; logistic regression on its frozen features."
    from gcsa_fer.face_training import face_config
    from gcsa_fer.mini_xception import load_face_model
    from gcsa_fer.pretrain import face_arrays, linear_probe, zero_shot

    fm, zs, lp = load_face_model('pretrained'), [], []
    for k in folds:
        cfg = face_config('', fold=k)
        split = {s: face_arrays(cfg, s, runs / 'cache') for s in ('train', 'val', 'test')}
        z = zero_shot(fm, *split['test'])
        zs.append({'fold': k, 'accuracy': z['accuracy'], 'macro_f1': z['macro_f1'],
                   'accuracy_all_classes': z['accuracy_all_classes'], 'predicted': json.dumps(z['predicted'])})  # fmt: skip
        lp.append({'fold': k, **linear_probe(split['train'], split['val'], split['test'])})
    return pd.DataFrame(zs), pd.DataFrame(lp)


def distilled(
    runs: Path, folds, epochs: int, distill_epochs: int, fps: float, quiet: bool
) -> tuple[pd.DataFrame, list]:
    "Per fold: RHCNN+GCSA distilled from the FER model on CREMA-D frames and the fold's training and validation photos (labels unused), then trained with the face recipe from there."
    from gcsa_fer.face_training import cross_validate, face_config
    from gcsa_fer.fetch import shipped_data_dir
    from gcsa_fer.pretrain import distill, face_arrays

    clips = sorted((shipped_data_dir() / 'cremad_sample' / 'VideoFlash').glob('*.flv'))
    tables, records = [], []
    for k in folds:
        cfg = face_config('', fold=k)
        own = np.concatenate([face_arrays(cfg, s, runs / 'cache')[0] for s in ('train', 'val')])
        done = runs / 'distill' / f'fold{k}' / 'distill.json'
        if (
            done.exists() and json.loads(done.read_text())['epochs'] == distill_epochs
        ):  # a finished distillation is read
            rec = {**json.loads(done.read_text()), 'weights': done.parent / 'student.safetensors'}
        else:
            rec = distill('pretrained', clips, done.parent, cfg=face_config(), crops=own,
                          epochs=distill_epochs, fps=fps, seed=k, progress=not quiet)  # fmt: skip
        records.append(
            {
                'fold': k,
                **{n: rec[n] for n in ('n_crops', 'n_held_out', 'agreement_train', 'agreement_held_out', 'seconds')},
            }
        )
        c = face_config('', fold=k, epochs=epochs, visual_backbone=f"rhcnn:{rec['weights']}")
        tables.append(cross_validate(c, runs / 'rhcnn-distilled', [k], progress=not quiet))
    return pd.concat(tables, ignore_index=True), records


def cremad_zero_shot(fps: float) -> pd.DataFrame:
    "The FER model on every sampled frame of the six CREMA-D sample clips (actor 1001): one row per frame."
    from gcsa_fer.core import EXPR_CLASSES
    from gcsa_fer.fetch import shipped_data_dir
    from gcsa_fer.mini_xception import load_face_model
    from gcsa_fer.pretrain import face_crops_from

    root = shipped_data_dir() / 'cremad_sample'
    clips = pd.read_csv(root / 'manifest.csv').query("modality == 'audio+video'")
    fm, rows = load_face_model('pretrained'), []
    present = np.sort(clips['affwild2_expr_label'].unique())
    for _, c in clips.iterrows():
        crops, _ = face_crops_from([root / c['path']], fps=fps)
        p = fm.expr_proba(crops)
        for q in p:
            rows.append({'clip': c['clip'], 'label': EXPR_CLASSES[c['affwild2_expr_label']],
                         'predicted_6': EXPR_CLASSES[present[q[present].argmax()]], 'predicted_all': EXPR_CLASSES[q.argmax()]})  # fmt: skip
    return pd.DataFrame(rows)


def summarise(rows: dict, folds) -> pd.DataFrame:
    "One line per row: mean ± std over folds of test accuracy and macro-F1, and the per-fold accuracies."
    out = []
    for name, (t, note) in rows.items():
        t = t.set_index('fold').loc[list(folds)]
        out.append({'row': name, 'folds': len(t), 'accuracy': t['accuracy'].mean(), 'accuracy_std': t['accuracy'].std(ddof=1),
                    'macro_f1': t['macro_f1'].mean(), 'macro_f1_std': t['macro_f1'].std(ddof=1),
                    'per_fold_accuracy': ' '.join(f'{a:.3f}' for a in t['accuracy']), 'epochs': note})  # fmt: skip
    return pd.DataFrame(out)


SCRATCH = 'RHCNN + GCSA from scratch (face recipe)'


def paired(folds_table: pd.DataFrame) -> pd.DataFrame:
    "Each row's test accuracy minus RHCNN from scratch's, fold by fold: mean and std (points), folds better / equal / worse."
    acc = folds_table.pivot(index='fold', columns='row', values='accuracy')
    d = 100 * acc.drop(columns=SCRATCH).sub(acc[SCRATCH], axis=0)
    d = d[[r for r in folds_table['row'].unique() if r != SCRATCH]]  # the table's order
    return pd.DataFrame({'row': d.columns, 'mean_points': d.mean().values, 'std_points': d.std(ddof=1).values,
                         'better': (d > 1e-9).sum().values, 'equal': (d.abs() <= 1e-9).sum().values,
                         'worse': (d < -1e-9).sum().values, 'per_fold': [' '.join(f'{v:+.1f}' for v in d[c]) for c in d]})  # fmt: skip


def run_minutes(runs: Path) -> float:
    "Training minutes recorded by the runs themselves (their epochs' seconds, in metrics.json) and the distillations."
    s = sum(json.loads(m.read_text()).get('seconds_training', 0) for m in runs.rglob('metrics.json'))
    return (s + sum(json.loads(m.read_text()).get('seconds', 0) for m in runs.rglob('distill.json'))) / 60


def pct(m, s) -> str:
    return f'{100 * m:.1f} ± {100 * s:.1f}' if pd.notna(s) else f'{100 * m:.1f}'


def write(out: Path, a, table, recipes, chosen, folds_table, records, crema, started, wall, runs: Path) -> None:
    from gcsa_fer.provenance import device_name, loaded_commit

    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / 'table.csv', index=False)
    recipes.to_csv(out / 'recipe.csv', index=False)
    folds_table.to_csv(out / 'folds.csv', index=False)
    pair = paired(folds_table)
    pair.to_csv(out / 'paired.csv', index=False)
    crema.to_csv(out / 'cremad.csv', index=False)
    (out / 'distill.json').write_text(json.dumps(records, indent=1))
    show = table.assign(**{'test accuracy %': [pct(m, s) for m, s in zip(table['accuracy'], table['accuracy_std'])],
                           'test macro-F1 %': [pct(m, s) for m, s in zip(table['macro_f1'], table['macro_f1_std'])]})  # fmt: skip
    md = show[['row', 'folds', 'test accuracy %', 'test macro-F1 %', 'per_fold_accuracy', 'epochs']].to_markdown(
        index=False
    )
    (out / 'table.md').write_text(md + '\n')
    zs_all = folds_table.loc[folds_table['row'] == 'zero-shot', 'accuracy_all_classes'].mean()
    six = (crema['predicted_6'] == crema['label']).mean()
    allc = (crema['predicted_all'] == crema['label']).mean()
    per_clip = crema.assign(right=crema['predicted_6'] == crema['label']).groupby('label')['right'].mean()
    rec = pd.DataFrame(records)
    lines = [
        '# Pretrained face models on London dev (5 folds by subject)',
        '',
        f'Command: `{COMMAND}' + (' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else '') + '`',
        '',
        f'Commit `{loaded_commit()}`, device {device_name(torch.device("cpu"))}, torch {torch.__version__}, '
        f'{torch.get_num_threads()} thread(s), OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}; '
        f'started {started}; this invocation {wall / 60:.0f} min wall, the runs record {run_minutes(runs):.0f} min of '
        'training (a finished run is read, not trained again), on a CPU shared with other work.',
        '',
        md,
        '',
        'Test accuracy minus RHCNN from scratch, fold by fold (points; `paired.csv`):',
        '',
        pair.round(1).to_markdown(index=False),
        '',
        f"Fine-tuning recipe chosen on the validation subjects (mean validation macro-F1 over the folds): **{chosen}** "
        f"(`recipe.csv`). Zero-shot accuracy is the argmax among the classes the set holds (Neutral, Happiness); "
        f"over all seven FER classes it is {pct(zs_all, float('nan'))} %.",
        '',
        f"Distillation (`distill.json`): {rec['n_crops'].mean():.0f} face crops a fold (CREMA-D sample frames at "
        f"{a.fps:g} a second and the fold's own training and validation photos, labels unused), {a.distill_epochs} epochs; "
        f"the student agrees with the teacher on {100 * rec['agreement_held_out'].mean():.0f} % of held-out crops.",
        '',
        f"CREMA-D sample clips (actor 1001, six clips, {len(crema)} frames at {a.fps:g} a second), zero-shot frame-level "
        f"accuracy among the six classes: {100 * six:.1f} % (over all seven FER classes: {100 * allc:.1f} %); per clip: "
        + ', '.join(f'{c} {100 * v:.0f} %' for c, v in per_clip.items())
        + ' (`cremad.csv`).',
        '',
    ]
    old = (out / 'README.md').read_text() if (out / 'README.md').exists() else ''
    kept = old[old.index(NOTES) :] if NOTES in old else NOTES + '\n'
    (out / 'README.md').write_text('\n'.join(lines) + '\n' + kept)
    print('\n'.join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', default=str(REPO / 'runs' / 'pretrained'))
    ap.add_argument('--out', default=str(REPO / 'results' / 'pretrained'))
    ap.add_argument('--folds', type=int, nargs='+', default=[1, 2, 3, 4, 5])
    ap.add_argument('--fine-tune-epochs', type=int, default=30)
    ap.add_argument('--scratch-epochs', type=int, default=150, help="today's face recipe (FACE_RECIPE)")
    ap.add_argument('--distill-epochs', type=int, default=30)
    ap.add_argument('--fps', type=float, default=10.0, help='CREMA-D frames a second (distillation and zero-shot)')
    ap.add_argument('--quick', action='store_true', help='2 epochs everywhere: a smoke run of the command')
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args(argv)
    if a.quick:
        a.fine_tune_epochs = a.scratch_epochs = a.distill_epochs = 2
    from gcsa_fer.face_training import cross_validate, face_config
    from gcsa_fer.pretrain import fine_tune_faces

    runs, folds, t0 = Path(a.runs), a.folds, time.time()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='minutes')
    recipes, chosen = recipe_search(runs / 'recipe', folds, a.fine_tune_epochs, a.quiet)
    over, freeze = RECIPES[chosen['name']]
    over = {**over, 'epochs': a.fine_tune_epochs}
    if freeze:
        plain = per_fold(
            lambda k: two_stage(
                runs / 'fine-tuned-none',
                k,
                {**over, 'attention': 'none'},
                min(freeze, a.fine_tune_epochs // 2),
                a.quiet,
            ),
            folds,
        )
    else:
        plain = fine_tune_faces(
            '', runs / 'fine-tuned-none', attention='none', folds=folds, progress=not a.quiet, **over
        )
    zs, lp = zero_shot_and_probe(runs, folds)
    scratch = cross_validate(
        face_config('', epochs=a.scratch_epochs), runs / 'rhcnn-scratch', folds, progress=not a.quiet
    )
    dist, records = distilled(runs, folds, a.scratch_epochs, a.distill_epochs, a.fps, a.quiet)
    floor = scratch[['fold', 'baseline_accuracy', 'baseline_macro_f1']].set_axis(
        ['fold', 'accuracy', 'macro_f1'], axis=1
    )
    ft = f'{a.fine_tune_epochs} (recipe {chosen["name"]})'
    rows = {
        'mini-Xception zero-shot': (zs, '0'),
        'linear probe on frozen mini-Xception features': (lp, 'LR, C on validation'),
        'mini-Xception fine-tuned + GCSA': (chosen['table'], ft),
        'mini-Xception fine-tuned, no attention': (plain, ft),
        'RHCNN + GCSA distilled, then fine-tuned': (dist, f'{a.distill_epochs} distill + {a.scratch_epochs}'),
        'RHCNN + GCSA from scratch (face recipe)': (scratch, str(a.scratch_epochs)),
        'pixel LR floor (32x32 grey)': (floor, 'LR'),
    }
    table = summarise(rows, folds)
    folds_table = pd.concat([t.assign(row=n) for n, (t, _) in rows.items()], ignore_index=True)
    folds_table = folds_table.assign(row=folds_table['row'].replace({'mini-Xception zero-shot': 'zero-shot'}))
    crema = cremad_zero_shot(a.fps)
    write(Path(a.out), a, table, recipes, chosen['name'], folds_table, records, crema, started, time.time() - t0, runs)


if __name__ == '__main__':
    main()

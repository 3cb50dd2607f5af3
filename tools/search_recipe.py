"""The recipe search behind `RECIPES['cpu']`: each experiment is the CPU recipe with some fields changed, trained on
some RAVDESS folds with the library's own `run_experiment`; every finished run is appended to the experiment log.

    python tools/search_recipe.py --name gate0 --folds 1 2 --set gate_bias=0
    python tools/search_recipe.py --summary          # the log, one line per experiment (fold means)
    python tools/search_recipe.py --grid inductive-norm   # issue 36: the inductive protocol's audio_norm
    python tools/search_recipe.py --grid levers           # issue 36: each lever, then the kept ones together
    python tools/search_recipe.py --grid levers --dry-run # what it would run, configurations checked, no training

A grid (`GRIDS`) is a list of experiments on folds 1-2 with one row and protocol; after its runs it ranks them by
validation macro-F1 (fold mean; test is shown, never used), keeps each lever that beats the grid's base on
validation, runs the kept levers together (`<grid>-combined`), then that recipe at two more seeds and the three
seeds' averaged probabilities (`<grid>-ensemble`), and writes the ranking and the choices to results/search/<grid>.txt.

Runs go to runs/search/<name>/f<fold>/ (resumable: a finished run is skipped); the log is results/search/log.csv and
each run's per-epoch history is copied to results/search/<name>/f<fold>_history.csv."""

from __future__ import annotations
import argparse
import json
import shutil
import sys
from pathlib import Path
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import numpy as np
from gcsa_fer.core import Config
from gcsa_fer.ablate import RECIPES
from gcsa_fer.cli import _kv as _kv_config
from gcsa_fer.evaluate import read_predictions
from gcsa_fer.experiment import run_experiment
from gcsa_fer.metrics import macro_f1, unweighted_accuracy
from gcsa_fer.protocols import PROTOCOLS, protocol_of

LOG = ROOT / 'results' / 'search' / 'log.csv'


def config(fold: int, modality: str, attention: str, loss: str, sets: dict, seed: int = 0) -> Config:
    "The CPU recipe with `sets` changed, for one fold (checked: a bad field fails here, before any training)."
    return Config(dataset='ravdess', modality=modality).update(
        **{**RECIPES['cpu'], 'attention': attention, 'loss': loss, 'seed': seed, 'device': 'cpu', 'fold': fold, **sets}
    )


def _append(rec: dict):
    "One row more in the log (read, extended, written back)."
    LOG.parent.mkdir(parents=True, exist_ok=True)
    log = pd.concat([pd.read_csv(LOG), pd.DataFrame([rec])], ignore_index=True) if LOG.exists() else pd.DataFrame([rec])
    log.to_csv(LOG, index=False, float_format='%.2f')


def run(name: str, folds, modality: str, attention: str, loss: str, sets: dict, seed: int = 0):
    for fold in folds:
        out = ROOT / 'runs' / 'search' / name / f'f{fold}'
        cfg = config(fold, modality, attention, loss, sets, seed)
        done = out / 'metrics.json'
        if done.exists() and json.loads(done.read_text()).get('status') == 'complete':
            print(f'{name} fold {fold}: complete, skipped')
            continue
        res = run_experiment(cfg, out, cache_dir=ROOT / 'runs' / 'search' / 'cache', progress=False)
        rec = {
            'name': name,
            'modality': modality,
            'attention': attention,
            'loss': loss,
            'changes': json.dumps(sets, sort_keys=True),
            'protocol': protocol_of({**cfg.to_dict()['preprocess']}, modality),
            'fold': fold,
            'seed': seed,
            'val_macro_f1': 100 * res['val']['macro_f1'],
            'test_macro_f1': 100 * res['test']['macro_f1'],
            'test_uar': 100 * res['test']['unweighted_accuracy'],
            'kept_epoch': res['best_epoch'],
            'epochs': cfg.train.epochs,
            'last_val_macro_f1': 100 * res['last_epoch']['val']['macro_f1'],
            'last_test_macro_f1': 100 * res['last_epoch']['test']['macro_f1'],
            'wall_seconds': res['wall_seconds'],
            'device': res['device'],
            'git_commit': res['git_commit'],
        }
        _append(rec)
        (LOG.parent / name).mkdir(exist_ok=True)
        shutil.copy(out / 'history.csv', LOG.parent / name / f'f{fold}_history.csv')
        print(
            f"{name} fold {fold}: val {rec['val_macro_f1']:.1f}, test {rec['test_macro_f1']:.1f} macro-F1 ({rec['wall_seconds']:.0f} s)",
            flush=True,
        )


MATCHED = {'attention': 'matched', 'loss': 'ce'}  # the best A row of the transductive table; the search trains it


def _levers(norm: str) -> dict:
    "Issue 36's levers, each one change to the inductive recipe (named with its audio_norm, so runs are reused)."
    base = {**PROTOCOLS['inductive'], 'audio_norm': norm}
    one = {
        '': {},
        '-speed0.1': {'speed_perturb': 0.1},
        '-pitch2': {'pitch_shift': 2.0},
        '-specaug-weak': {'freq_mask': 4, 'time_mask': 10},
        '-specaug-strong': {'freq_mask': 12, 'time_mask': 40},
        '-mixup0': {'mixup': 0.0},
        '-mixup0.6': {'mixup': 0.6},
        '-60ep': {'epochs': 60},
        '-wide': {'audio_width': 24, 'audio_width2': 48},
    }
    return {f'ind-{norm}{k}': {**base, **v} for k, v in one.items()}


def grids() -> dict:
    "The grids of `--grid`: experiments (name: fields changed from the CPU recipe), the row, folds, base, levers or not."
    norm = PROTOCOLS['inductive']['audio_norm']
    return {
        'inductive-norm': {
            'experiments': {f'ind-{n}': {**PROTOCOLS['inductive'], 'audio_norm': n} for n in ('utterance', 'train')},
            'base': f'ind-{norm}',
            'levers': False,
        },
        'levers': {'experiments': _levers(norm), 'base': f'ind-{norm}', 'levers': True},
    }


GRID_ROW, GRID_MODALITY, GRID_FOLDS, ENSEMBLE_SEEDS = MATCHED, 'a', (1, 2), (1, 2)


def ranking(names, folds=GRID_FOLDS, seed: int = 0) -> pd.DataFrame:
    "Fold means of the logged runs of `names` at `seed` (only names with every fold), best validation first."
    log = pd.read_csv(LOG) if LOG.exists() else pd.DataFrame(columns=['name', 'fold', 'seed'])
    log = log[log['name'].isin(list(names)) & log['fold'].isin(list(folds)) & (log['seed'] == seed)]
    log = log.drop_duplicates(['name', 'fold'], keep='last')
    g = log.groupby('name').agg(
        folds=('fold', 'nunique'), val_f1=('val_macro_f1', 'mean'), test_f1=('test_macro_f1', 'mean')
    )
    return g[g['folds'] == len(folds)].sort_values('val_f1', ascending=False)


def choose(rank: pd.DataFrame, experiments: dict, base: str) -> tuple[list, dict]:
    "The levers that beat `base` on validation, and their fields together (of two levers setting a field, the better one's)."
    if base not in rank.index:
        return [], dict(experiments.get(base, {}))
    kept = [
        n for n in rank.index if n != base and n in experiments and rank.loc[n, 'val_f1'] > rank.loc[base, 'val_f1']
    ]
    fields = dict(experiments[base])
    for n in reversed(kept):  # the best lever last, so it wins a field two levers set
        fields.update(experiments[n])
    return kept, fields


def ensemble(names, folds=GRID_FOLDS) -> list[dict]:
    "Per fold: the runs `names` (seeds of one recipe) with their class probabilities averaged, val and test scores."
    recs = []
    for fold in folds:
        rec = {'fold': fold}
        for split in ('val', 'test'):
            preds = [
                read_predictions(ROOT / 'runs' / 'search' / n / f'f{fold}' / f'predictions_{split}.csv') for n in names
            ]
            if any(p['id'] != preds[0]['id'] for p in preds):
                raise ValueError(f'fold {fold} {split}: the runs {names} did not predict the same items')
            y, prob = preds[0]['label'], np.mean([p['p'] for p in preds], axis=0)
            rec[f'{split}_macro_f1'] = 100 * macro_f1(y, prob)
            rec[f'{split}_uar'] = 100 * unweighted_accuracy(y, prob.argmax(-1))
        recs.append(rec)
    return recs


def run_grid(grid: str, dry_run: bool = False):
    "Run grid `grid` (resumable), choose on validation, and write results/search/<grid>.txt."
    g = grids()[grid]
    exps, base = g['experiments'], g['base']
    for name, sets in exps.items():
        for fold in GRID_FOLDS:
            config(
                fold, GRID_MODALITY, GRID_ROW['attention'], GRID_ROW['loss'], sets
            )  # every configuration checked first
    for name, sets in exps.items():
        print(f"{grid}: {name} on folds {list(GRID_FOLDS)}: {json.dumps(sets, sort_keys=True)}", flush=True)
        if not dry_run:
            run(name, GRID_FOLDS, GRID_MODALITY, GRID_ROW['attention'], GRID_ROW['loss'], sets)
    if dry_run:
        if g['levers']:
            print(
                f"then: the levers that beat {base} on validation together ({grid}-combined), the best recipe at "
                f"seeds {list(ENSEMBLE_SEEDS)} and the three seeds' averaged probabilities ({grid}-ensemble)"
            )
        return None
    lines = [
        f'grid {grid}: row {GRID_ROW}, modality {GRID_MODALITY}, folds {list(GRID_FOLDS)}, seed 0; chosen on validation'
    ]
    rank = ranking(exps)
    if g['levers']:
        kept, fields = choose(rank, exps, base)
        lines.append(f'levers kept (validation above {base}): {kept or "none"}')
        if len(kept) > 1:
            run(f'{grid}-combined', GRID_FOLDS, GRID_MODALITY, GRID_ROW['attention'], GRID_ROW['loss'], fields)
            exps = {**exps, f'{grid}-combined': fields}
            rank = ranking(exps)
        best = rank.index[0]
        lines.append(f'best recipe on validation: {best}: {json.dumps(exps[best], sort_keys=True)}')
        seeds = [f'{best}-s{s}' for s in ENSEMBLE_SEEDS]
        for s, n in zip(ENSEMBLE_SEEDS, seeds):
            run(n, GRID_FOLDS, GRID_MODALITY, GRID_ROW['attention'], GRID_ROW['loss'], exps[best], seed=s)
        ens = pd.DataFrame(ensemble([best, *seeds]))
        lines.append(
            f'{grid}-ensemble ({best}, seeds 0, {", ".join(map(str, ENSEMBLE_SEEDS))}): validation '
            f'{ens["val_macro_f1"].mean():.1f} against {rank.loc[best, "val_f1"]:.1f} for seed 0 alone; test '
            f'{ens["test_macro_f1"].mean():.1f} (shown, not used)'
        )
    else:
        lines.append(f'chosen on validation: {rank.index[0] if len(rank) else "nothing yet"}')
    text = rank.round(1).to_string() + '\n\n' + '\n'.join(lines) + '\n'
    (LOG.parent / f'{grid}.txt').write_text(text)
    print(text)
    return rank


def summary() -> pd.DataFrame:
    log = pd.read_csv(LOG)
    g = log.groupby(['name', 'modality', 'attention', 'loss', 'changes'], sort=False)
    return (
        g.agg(
            folds=('fold', lambda f: ' '.join(map(str, sorted(f)))),
            val_f1=('val_macro_f1', 'mean'),
            test_f1=('test_macro_f1', 'mean'),
            test_f1_std=('test_macro_f1', 'std'),
            test_uar=('test_uar', 'mean'),
            last_test_f1=('last_test_macro_f1', 'mean'),
            minutes=('wall_seconds', lambda s: s.sum() / 60),
        )
        .round(1)
        .reset_index()
    )


def plot_curves(names, path, title: str = ''):
    "Validation macro-F1 per epoch of the experiments `names`, one line per fold (from the copied histories)."
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    for i, name in enumerate(names):
        for j, h in enumerate(sorted((LOG.parent / name).glob('f*_history.csv'))):
            d = pd.read_csv(h)
            ax.plot(
                d['epoch'],
                100 * d['val_macro_f1'],
                color=f'C{i}',
                alpha=0.8,
                ls=['-', '--', ':', '-.'][j % 4],
                label=f'{name}, {h.stem.split("_")[0].replace("f", "fold ")}',
            )
    ax.set_xlabel('epoch')
    ax.set_ylabel('validation macro-F1 (%)')
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--name')
    ap.add_argument('--folds', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--modality', default='a', choices=['a', 'v', 'av'])
    ap.add_argument('--attention', default='gcsa')
    ap.add_argument('--loss', default='ce')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument(
        '--set',
        action='append',
        metavar='NAME=VALUE',
        default=[],
        help='a configuration field changed from the CPU recipe',
    )
    ap.add_argument(
        '--summary',
        action='store_true',
        help='print the log, one line per experiment, and write results/search/summary.txt',
    )
    ap.add_argument(
        '--curves', nargs='+', metavar='NAME', help='plot the validation curves of these experiments into --png'
    )
    ap.add_argument('--png', default=str(LOG.parent / 'curves.png'))
    ap.add_argument(
        '--grid', choices=['inductive-norm', 'levers'], help='run a grid of experiments and choose on validation'
    )
    ap.add_argument('--dry-run', action='store_true', help='with --grid: check and print what would run, train nothing')
    ap.add_argument('--protocol', choices=list(PROTOCOLS), help="with --name: the protocol's fields before --set's")
    a = ap.parse_args()
    if a.grid:
        run_grid(a.grid, a.dry_run)
        sys.exit(0)
    if a.summary:
        text = summary().to_string(index=False)
        print(text)
        (LOG.parent / 'summary.txt').write_text(text + '\n')
        sys.exit(0)
    if a.curves:
        print(plot_curves(a.curves, a.png, f"validation curves: {', '.join(a.curves)}"))
        sys.exit(0)
    if not a.name:
        ap.error('--name is required')
    sets = {**(PROTOCOLS[a.protocol] if a.protocol else {}), **_kv_config(a.set)}
    run(a.name, a.folds, a.modality, a.attention, a.loss, sets, a.seed)

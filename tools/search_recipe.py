"""The recipe search behind `RECIPES['cpu']`: each experiment is the CPU recipe with some fields changed, trained on
some RAVDESS folds with the library's own `run_experiment`; every finished run is appended to the experiment log.

    python tools/search_recipe.py --name gate0 --folds 1 2 --set gate_bias=0
    python tools/search_recipe.py --summary          # the log, one line per experiment (fold means)

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
from gcsa_fer.core import Config
from gcsa_fer.ablate import RECIPES
from gcsa_fer.cli import _kv as _kv_config
from gcsa_fer.experiment import run_experiment

LOG = ROOT / 'results' / 'search' / 'log.csv'


def run(name: str, folds, modality: str, attention: str, loss: str, sets: dict, seed: int = 0):
    for fold in folds:
        out = ROOT / 'runs' / 'search' / name / f'f{fold}'
        cfg = Config(dataset='ravdess', modality=modality).update(
            **{
                **RECIPES['cpu'],
                'attention': attention,
                'loss': loss,
                'seed': seed,
                'device': 'cpu',
                'fold': fold,
                **sets,
            }
        )
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
        LOG.parent.mkdir(parents=True, exist_ok=True)
        log = (
            pd.concat([pd.read_csv(LOG), pd.DataFrame([rec])], ignore_index=True)
            if LOG.exists()
            else pd.DataFrame([rec])
        )
        log.to_csv(LOG, index=False, float_format='%.2f')
        (LOG.parent / name).mkdir(exist_ok=True)
        shutil.copy(out / 'history.csv', LOG.parent / name / f'f{fold}_history.csv')
        print(
            f"{name} fold {fold}: val {rec['val_macro_f1']:.1f}, test {rec['test_macro_f1']:.1f} macro-F1 ({rec['wall_seconds']:.0f} s)",
            flush=True,
        )


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
    a = ap.parse_args()
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
    run(a.name, a.folds, a.modality, a.attention, a.loss, _kv_config(a.set), a.seed)

"""The +GAN rows: the same runs with and without GAN-generated training items, on the two kinds of real visual data shipped.

  ravdess-au : the RAVDESS visual branch on the 35 OpenFace action units (the ravdess-cpu preset's V Base run), 6 actor-disjoint folds;
  faces      : RHCNN + GCSA on the London dev photos (`FACE_RECIPE`), 5 folds by subject.
Each fold is run twice with the same seed: without GAN, and with a GAN trained on that fold's training items only and
`--per-class` generated items per class added. Resumable (finished runs are kept). Writes OUT/folds.csv (per fold) and
OUT/table.csv (mean +- std and the per-fold difference), and prints both.

    python tools/gan_ablation.py [--runs runs/gan-ablation] [--out results/gan] [--only ravdess-au faces]
"""

import argparse
import json
import time
from pathlib import Path
import pandas as pd
import torch
from gcsa_fer.ablate import ablation_grid, run_config
from gcsa_fer.experiment import run_experiment
from gcsa_fer.face_training import face_config


def configs(name, faces_folds=range(1, 6)):
    if name == 'ravdess-au':
        for r in ablation_grid('ravdess-cpu', modalities=['v'], rows=['Base'], protocols='transductive'):
            yield r['parameters']['overrides']['fold'], run_config(r['parameters'])
    else:
        for k in faces_folds:
            yield k, face_config(device='cpu').update(fold=k)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--runs', default='runs/gan-ablation')
    p.add_argument('--out', default='results/gan')
    p.add_argument('--only', nargs='+', default=['ravdess-au', 'faces'])
    p.add_argument(
        '--faces-folds', type=int, nargs='+', default=[1, 2, 3, 4, 5], help='which of the 5 face folds (default: all)'
    )
    p.add_argument(
        '--per-class', type=int, nargs=2, default=[60, 20], metavar=('AU', 'FACES'), help='generated items per class'
    )
    p.add_argument(
        '--steps', type=int, nargs=2, default=[2000, 600], metavar=('AU', 'FACES'), help='GAN training steps'
    )
    p.add_argument(
        '--width',
        type=int,
        nargs=2,
        default=[64, 32],
        metavar=('AU', 'FACES'),
        help='GAN width (32 for 64x64 faces: 0.2 s a step on 2 cores, 64: 0.5 s)',
    )
    a = p.parse_args()
    torch.set_num_threads(2)
    rows = []
    for name in a.only:
        i = ['ravdess-au', 'faces'].index(name)
        for fold, cfg in configs(name, a.faces_folds):
            for gan in (False, True):
                c = cfg.replace()
                if gan:
                    c.update(gan_per_class=a.per_class[i], gan_steps=a.steps[i], gan_width=a.width[i])
                run = Path(a.runs) / name / f"{'gan' if gan else 'base'}-f{fold}"
                t = time.time()
                done = run / 'metrics.json'
                m = (
                    json.loads(done.read_text())
                    if done.exists() and json.loads(done.read_text()).get('status') == 'complete'
                    else run_experiment(c, run, Path(a.runs) / name / 'cache', progress=False)
                )
                q = (m.get('gan') or {}).get('quality_on_val', {})
                rows.append(
                    {
                        'data': name,
                        'fold': fold,
                        'gan': gan,
                        'test_accuracy': 100 * m['test']['accuracy'],
                        'test_macro_f1_present': 100 * m['test']['macro_f1_present'],
                        'n_train': m['n_train'],
                        'gan_trtr': q.get('trtr_accuracy'),
                        'gan_tstr': q.get('tstr_accuracy'),
                        'gan_c2st': q.get('c2st_accuracy'),
                        'gan_wasserstein_mean': q.get('wasserstein_mean'),
                        'commit': m.get('git_commit'),
                        'device': m.get('device'),
                    }
                )
                print(
                    f"{name} fold {fold} {'+GAN' if gan else 'base'}: accuracy {rows[-1]['test_accuracy']:.1f} % ({time.time() - t:.0f} s)",
                    flush=True,
                )
    df = pd.DataFrame(rows)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / 'folds.csv', index=False, float_format='%.4f')
    piv = df.pivot_table(index=['data', 'fold'], columns='gan', values=['test_accuracy', 'test_macro_f1_present'])
    t = []
    for d in df['data'].unique():
        s = piv.loc[d]
        for metric in ('test_accuracy', 'test_macro_f1_present'):
            base, gan = s[(metric, False)], s[(metric, True)]
            diff = gan - base
            t.append(
                {
                    'data': d,
                    'metric': metric,
                    'folds': len(s),
                    'base_mean': base.mean(),
                    'base_std': base.std(),
                    'gan_mean': gan.mean(),
                    'gan_std': gan.std(),
                    'diff_mean': diff.mean(),
                    'diff_std': diff.std(),
                    'folds_better': int((diff > 0).sum()),
                    'folds_worse': int((diff < 0).sum()),
                    'per_fold_diff': ' '.join(f'{v:+.1f}' for v in diff),
                }
            )
        q = df[(df['data'] == d) & df['gan']][['gan_trtr', 'gan_tstr', 'gan_c2st', 'gan_wasserstein_mean']].mean()
        t[-1].update({k: q[k] for k in q.index})
        t[-2].update({k: q[k] for k in q.index})
    tab = pd.DataFrame(t)
    tab.to_csv(out / 'table.csv', index=False, float_format='%.4f')
    print(tab.round(2).to_string(index=False))


if __name__ == '__main__':
    main()

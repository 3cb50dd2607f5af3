"""What `tools/gpu_session.sh` brought back of the paper recipe's runs (FOLDER/paper-audio.tar.gz and session.json, the
device tool's files_at): every run's epochs in one CSV, the validation curves (seaborn) and a README table, into
OUT (default results/gpu/<device>/paper-audio). Runs stopped at the session's limit are shown as what they are:
unfinished, their figures a curve so far and not the recipe's result. Checkpoints are not copied (a later GPU session
carries the tarball's run folders to resume them).

    python tools/gpu_paper_results.py /work/.device/1 [--out DIR] [--device nvidia-h200]
"""

import argparse
import json
import tarfile
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import pandas as pd
import seaborn as sns

REPO = Path(__file__).resolve().parent.parent


def read_runs(paper: Path) -> pd.DataFrame:
    "Every epoch of every run folder under `paper`, with its row, fold and planned epochs."
    frames = []
    for h in sorted(paper.glob('*/history.csv')):
        cfg = json.loads((h.parent / 'config.json').read_text())
        done = (h.parent / 'metrics.json').exists()
        d = pd.read_csv(h).assign(run=h.parent.name, attention=cfg['model']['attention'], fold=cfg['fold'],
                                  planned=cfg['train']['epochs'], finished=done)  # fmt: skip
        frames.append(d)
    if not frames:
        raise SystemExit(f'no run folder with a history.csv under {paper}')
    return pd.concat(frames, ignore_index=True)


ROW = {'none': 'Base', 'matched': 'matched control', 'gcsa': '+GCSA'}


def summary(h: pd.DataFrame) -> pd.DataFrame:
    "One line a run: epochs done of planned, best validation macro-F1 so far and its epoch, the median epoch time."
    out = []
    for run, d in h.groupby('run', sort=False):
        best = d.loc[d['val_macro_f1'].idxmax()]
        out.append({'run': run, 'row': ROW.get(d['attention'].iloc[0], d['attention'].iloc[0]),
                    'fold': int(d['fold'].iloc[0]), 'epochs': f"{len(d)} of {int(d['planned'].iloc[0])}",
                    'finished': bool(d['finished'].iloc[0]), 'best val macro-F1 so far': round(100 * best['val_macro_f1'], 1),
                    'at epoch': int(best['epoch']), 'last val macro-F1': round(100 * d['val_macro_f1'].iloc[-1], 1),
                    'median epoch s': round(float(d['seconds'].median()), 2)})  # fmt: skip
    return pd.DataFrame(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('folder', help="the device tool's files_at: paper-audio.tar.gz and session.json")
    ap.add_argument('--device', default='nvidia-h200')
    ap.add_argument('--out', default=None, help='default: results/gpu/DEVICE/paper-audio')
    a = ap.parse_args(argv)
    src, out = Path(a.folder), Path(a.out or REPO / 'results' / 'gpu' / a.device / 'paper-audio')
    out.mkdir(parents=True, exist_ok=True)
    session = json.loads((src / 'session.json').read_text())
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(src / 'paper-audio.tar.gz') as tar:
        tar.extractall(tmp, filter='data')
        h = read_runs(Path(tmp) / 'paper')
    h = h.assign(row=h['attention'].map(ROW))
    h.drop(columns=['attention']).to_csv(out / 'history.csv', index=False)
    s = summary(h)
    s.to_csv(out / 'summary.csv', index=False)
    g = sns.relplot(data=h.assign(val_f1=100 * h['val_macro_f1']), x='epoch', y='val_f1', hue='row', col='fold',
                    kind='line', height=3.2, aspect=1.3)  # fmt: skip
    g.set_axis_labels('epoch', 'validation macro-F1 (%)')
    g.figure.suptitle('Paper recipe (SGD, lr 1e-4, batch 16) on the H200: the curves so far', y=1.03)
    g.savefig(out / 'curves.png', dpi=110, bbox_inches='tight')
    (out / 'session.json').write_text(json.dumps(session, indent=1) + '\n')
    (out / 'README.md').write_text(
        f"# The paper recipe's core audio rows on one GPU: unfinished curves\n\n"
        f"Written by `python tools/gpu_paper_results.py FILES_AT` from what `bash tools/gpu_session.sh` brought back "
        f"(finished {session['finished']}; the runs had {session['run_limit_s']} s, all {len(s)} at once on the "
        f"GPU after the GPU check). **{int(s['finished'].sum())} of {len(s)} runs reached their "
        f"{int(h['planned'].max())} epochs**; an unfinished run's figures are a validation curve so far, not a result "
        "of the recipe, and no test figure is shown.\n\n" + s.to_markdown(index=False) + '\n\n![curves](curves.png)\n'
    )
    print(s.to_string(index=False))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

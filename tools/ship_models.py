"""Choose and export the shipped models from a finished ablation, by validation only:

    python tools/ship_models.py runs/ravdess-cpu            # writes models/default (audio) and models/ravdess-av (V+A)

For each modality the row with the best mean validation macro-F1 over the folds is taken, and within it the
fold whose run has the best validation macro-F1; test scores play no part. The model card and provenance.json
say which run, which fold and which actors it was trained, validated and tested on."""

from __future__ import annotations
import argparse
import json
import sys
from pathlib import Path
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from gcsa_fer.ablate import collect_runs
from gcsa_fer.data import ravdess_actors
from gcsa_fer.model_export import export_default_model


def choose(runs: pd.DataFrame, modality: str) -> pd.Series:
    "The run of the row with the best mean validation macro-F1, at its fold with the best validation macro-F1."
    sub = runs[runs['modality'] == modality]
    if sub.empty:
        raise ValueError(f"no complete {modality} runs")
    row = sub.groupby('row')['val_macro_f1'].mean().idxmax()
    return sub[sub['row'] == row].sort_values(['val_macro_f1', 'fold'], ascending=[False, True]).iloc[0]


def ship(runs_dir, out_root=ROOT / 'models', force: bool = False):
    runs_dir, out_root = Path(runs_dir), Path(out_root)
    runs = collect_runs(runs_dir)
    for modality, folder, branches in (('A', 'default', ['audio']), ('V+A', 'ravdess-av', None)):
        r = choose(runs, modality)
        out = out_root / folder
        d = export_default_model(runs_dir / r['run'], out, branches)
        prov = json.loads((d / 'provenance.json').read_text())
        local = prov['source_run']
        prov["source_run"] = (
            f"runs/{runs_dir.name}/{r['run']} (run by `make ablation`; its metrics are in results/{runs_dir.name}/runs/{r['run']})"
        )
        prov['chosen_by'] = (
            f"validation: row {r['row']} has the best mean validation macro-F1 of the {modality} rows over "
            f"{runs[runs['modality'] == modality]['fold'].nunique()} folds; fold {r['fold']} has its best validation macro-F1"
        )
        prov['actors'] = {s: list(ravdess_actors(s, int(r['fold']))) for s in ('train', 'val', 'test')}
        (d / 'provenance.json').write_text(json.dumps(prov, indent=1))
        card = (d / 'README.md').read_text().replace(f'`{local}`', f"`runs/{runs_dir.name}/{r['run']}`")
        card += (
            f"\nChosen by validation only: {prov['chosen_by']}. Trained on RAVDESS actors {prov['actors']['train']}, "
            f"validated on {prov['actors']['val']}, tested on {prov['actors']['test']} (fold {r['fold']} of the 6 EmoBox folds).\n"
        )
        (d / 'README.md').write_text(card)
        print(f"{modality}: {r['run']} (val {r['val_macro_f1']:.1f}, test {r['test_macro_f1']:.1f} macro-F1) -> {d}")


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('runs')
    ap.add_argument('--out', default=str(ROOT / 'models'))
    a = ap.parse_args()
    ship(a.runs, a.out)

"""Reference outputs of the shipped models, for the regression test that they load and predict as before.

Writes tests/golden/shipped_predictions.csv: the class probabilities of
  - the default predictor (models/default speech + models/faces) on a CREMA-D clip, window by window;
  - models/ravdess-av (MCNN on speech + MLP on action units, fused) on the first RAVDESS test items;
  - models/faces on the first London dev photos.
Re-run it only when a shipped model is retrained on purpose:  python tools/shipped_golden.py
"""

import sys
from pathlib import Path
import pandas as pd
import torch
from gcsa_fer.core import EXPR_CLASSES
from gcsa_fer.models import default_predictor, load_model
from gcsa_fer.predict import predict_video, predict_image
from gcsa_fer.datasets import get_dataset
from gcsa_fer.data import collate

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / 'data/cremad_sample/VideoFlash/1001_DFA_HAP_XX.flv'


def shipped_predictions(n_items: int = 4) -> pd.DataFrame:
    rows = []
    t = predict_video(default_predictor(face_model='london'), CLIP).table  # the golden's face model: London
    for _, r in t.iterrows():
        rows.append(
            {
                'model': 'default+faces',
                'input': f"{CLIP.name}#{r['window']}",
                'source': r['source'],
                **{c: r[c] for c in EXPR_CLASSES},
            }
        )
    lm = load_model(REPO / 'models/ravdess-av')
    ds = get_dataset('ravdess', 'test', lm.cfg)
    batch = collate([ds[i] for i in range(n_items)])
    with torch.no_grad():
        p = lm.model({k: v for k, v in batch.items() if k in ('audio', 'features')}, level='clip')['p']
    for i in range(n_items):
        rows.append(
            {'model': 'ravdess-av', 'input': batch['id'][i], 'source': 'av', **dict(zip(EXPR_CLASSES, p[i].tolist()))}
        )
    faces = load_model(REPO / 'models/faces')
    for f in sorted((REPO / 'data/london_faces_dev').glob('**/*.jpg'))[:n_items]:
        r = predict_image(faces, f).table.iloc[0]
        rows.append({'model': 'faces', 'input': f.name, 'source': r['source'], **{c: r[c] for c in EXPR_CLASSES}})
    return pd.DataFrame(rows)


if __name__ == '__main__':
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / 'tests/golden/shipped_predictions.csv'
    df = shipped_predictions()
    df.to_csv(out, index=False, float_format='%.6f')
    print(df.round(3).to_string())

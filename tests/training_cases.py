"""Training outcomes the tests bound, as functions of a seed, so that `tools/test_margins.py` can measure each one over seeds,
thread counts and CPU kernels (`ATEN_CPU_CAPABILITY`) before a bound is set. Each returns a dict of plain floats."""

from pathlib import Path
import numpy as np


def london_fold(out, seed: int = 0) -> dict:
    "Fold 1 of 3 by subject on London dev (34 subjects train and validate, 17 test), 40 epochs at 32 px: test accuracy and within-subject accuracy."
    from gcsa_fer.face_training import face_config, within_subject_accuracy
    from gcsa_fer.experiment import run_experiment
    from gcsa_fer.datasets import get_dataset
    from gcsa_fer.evaluate import read_predictions

    cfg = face_config(device='cpu', face_size=32, epochs=40, visual_pool='grid').update(fold=1, n_folds=3, seed=seed)
    m = run_experiment(cfg, Path(out), progress=False)
    te = get_dataset(cfg.dataset, 'test', cfg, Path(out) / 'cache')
    pt = read_predictions(Path(out) / 'predictions_test.csv')
    subject = dict(zip(te.ids, te.speakers))
    return {
        'n_test': m['test']['n'],
        'n_train': m['n_train'],
        'accuracy': m['test']['accuracy'],
        'within_subject': within_subject_accuracy(pt['p'], pt['label'], [subject[i] for i in pt['id']]),
    }


def write_planted_faces(root, n_subjects: int = 30, size: int = 48, seed: int = 0) -> Path:
    "A face folder with a planted expression: every subject has a noisy 'face' of their own; 'happy' adds a bright bar where a mouth is."
    import cv2

    rng = np.random.default_rng(seed)
    root = Path(root)
    rows = ['path,label,subject']
    for s in range(n_subjects):
        face = np.clip(rng.normal(120, 30, (size, size, 3)) + rng.normal(0, 20, (1, 1, 3)), 0, 255)
        for label in ('neutral', 'happy'):
            img = np.clip(face + rng.normal(0, 10, face.shape), 0, 255)
            if label == 'happy':
                img[int(size * 0.68) : int(size * 0.78), int(size * 0.3) : int(size * 0.7)] = 240
            rel = f'{label}/s{s:02d}.png'
            (root / label).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / rel), img.astype(np.uint8))
            rows.append(f'{rel},{label},s{s:02d}')
    (root / 'manifest.csv').write_text('\n'.join(rows) + '\n')
    return root


def planted_faces(out, seed: int = 0) -> dict:
    "RHCNN on the planted face folder, fold 1 of 3 by subject, 25 epochs at 32 px: any working trainer finds the bar."
    from gcsa_fer.face_training import face_config
    from gcsa_fer.experiment import run_experiment

    data = write_planted_faces(Path(out) / 'faces')
    cfg = face_config(data, device='cpu', face_size=32, epochs=25, detector='none', face_margin=0.0).update(
        fold=1, n_folds=3, seed=seed
    )
    m = run_experiment(cfg, Path(out) / 'run', progress=False)
    return {'n_test': m['test']['n'], 'accuracy': m['test']['accuracy']}


def toy_av(out, seed: int = 0) -> dict:
    "The trainer's example in nbs/10_train.ipynb (planted class-dependent noise in both modalities, 8 epochs), with a seed: final validation macro-F1."
    import torch
    from gcsa_fer.core import Config
    from gcsa_fer.train import Trainer

    def toy(n, s):
        g = torch.Generator().manual_seed(s)
        y = torch.randint(0, 8, (n,), generator=g)
        audio = torch.randn(n, 1, 16, 24, generator=g) + y.view(n, 1, 1, 1) * 0.3
        feats = torch.randn(n, 35, generator=g) + torch.nn.functional.one_hot(y, 35) * 3
        return [{'audio': audio[i], 'features': feats[i], 'label': y[i], 'id': f'toy{i}'} for i in range(n)]

    cfg = Config(modality="av").update(epochs=8, batch_size=16, lr=0.05, lr_heads=0.1, audio_width=8, seed=seed)
    hist = Trainer(cfg, toy(128, 0), toy(64, 1), Path(out), progress=False).fit()
    return {'val_macro_f1': float(hist['val_macro_f1'].iloc[-1])}


CASES = {'london_fold': london_fold, 'planted_faces': planted_faces, 'toy_av': toy_av}

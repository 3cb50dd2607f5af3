"The shipped models load and predict as they did when they were exported (tests/golden, written by tools/shipped_golden.py), and a run's m, n live in its weights."

import dataclasses
import importlib.util
import json
from pathlib import Path
import numpy as np
import pandas as pd
from gcsa_fer.checkpoint import load_checkpoint
from gcsa_fer.models import load_model

REPO = Path(__file__).resolve().parent.parent


def _golden_module():
    spec = importlib.util.spec_from_file_location('shipped_golden', REPO / 'tools' / 'shipped_golden.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shipped_models_predict_as_before():
    ref = pd.read_csv(REPO / 'tests/golden/shipped_predictions.csv')
    now = _golden_module().shipped_predictions()
    assert now[['model', 'input', 'source']].equals(ref[['model', 'input', 'source']])
    cols = [c for c in ref.columns if c not in ('model', 'input', 'source')]
    np.testing.assert_allclose(now[cols].to_numpy(float), ref[cols].to_numpy(float), atol=1e-4)
    assert (
        set(ref['model']) == {'default+faces', 'ravdess-av', 'faces'} and (ref['source'] == 'av').sum() >= 8
    )  # fusion is exercised


def test_shipped_av_model_fuses_with_its_recorded_weights():
    lm = load_model(REPO / 'models/ravdess-av')
    prov = json.loads((REPO / 'models/ravdess-av/provenance.json').read_text())
    assert (lm.model.m, lm.model.n) == (prov['fusion']['m'], prov['fusion']['n'])


def test_the_m_n_chosen_on_validation_reach_the_checkpoint(tmp_path, monkeypatch, one_thread):
    "An AV run whose search picks (4, 1), trained with (1, 1): the kept checkpoint and the loaded model say (4, 1)."
    import gcsa_fer.evaluate as ev
    from gcsa_fer.core import Config
    from gcsa_fer.experiment import run_experiment

    real = ev.search_fusion_weights
    monkeypatch.setattr(ev, 'search_fusion_weights', lambda pa, pv, y: dataclasses.replace(real(pa, pv, y), m=4, n=1))
    cfg = Config(dataset='synthetic', modality='av').update(
        epochs=1, batch_size=32, audio_width=8, visual_width=16, n_mels=32, clip_seconds=1.0, face_size=32, n_frames=2
    )
    m = run_experiment(cfg, tmp_path / 'run', progress=False)
    assert (m['fusion']['m'], m['fusion']['n']) == (4, 1) and (cfg.train.fusion_m, cfg.train.fusion_n) == (1, 1)
    assert load_checkpoint(tmp_path / 'run/best.pt')['model']['fusion_weights'].tolist() == [4.0, 1.0]
    lm = load_model(tmp_path / 'run')
    assert (lm.model.m, lm.model.n) == (4, 1)

"tools/search_recipe.py's grids (issue 36): the choice on validation, the kept levers together, the seed ensemble, the dry run."

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gcsa_fer.evaluate import save_predictions
from gcsa_fer.metrics import macro_f1

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location('search_recipe', REPO / 'tools' / 'search_recipe.py')
sr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sr)


def _log(tmp_path, monkeypatch, rows):
    monkeypatch.setattr(sr, 'LOG', tmp_path / 'log.csv')
    pd.DataFrame(rows).to_csv(sr.LOG, index=False)


def test_levers_kept_only_when_validation_beats_the_base(tmp_path, monkeypatch):
    val = {'base': (60, 62), 'speed': (63, 64), 'mix0': (61, 62), 'mix6': (62, 64), 'wide': (55, 58), 'half': (99,)}
    rows = [
        {'name': n, 'fold': f, 'seed': 0, 'val_macro_f1': v, 'test_macro_f1': 0.0}
        for n, vs in val.items()
        for f, v in zip((1, 2), vs)
    ]
    rows.append({'name': 'speed', 'fold': 1, 'seed': 1, 'val_macro_f1': 0.0, 'test_macro_f1': 0.0})  # another seed
    _log(tmp_path, monkeypatch, rows)
    rank = sr.ranking(val)
    assert list(rank.index) == ['speed', 'mix6', 'mix0', 'base', 'wide']  # 'half' lacks fold 2: not ranked
    exps = {
        'base': {'audio_norm': 'utterance'},
        'speed': {'audio_norm': 'utterance', 'speed_perturb': 0.1},
        'mix0': {'audio_norm': 'utterance', 'mixup': 0.0},
        'mix6': {'audio_norm': 'utterance', 'mixup': 0.6},
        'wide': {'audio_norm': 'utterance', 'audio_width': 24},
    }
    kept, fields = sr.choose(rank, exps, 'base')
    assert kept == ['speed', 'mix6', 'mix0']  # test scores are never looked at
    assert fields == {'audio_norm': 'utterance', 'speed_perturb': 0.1, 'mixup': 0.6}  # of two mixups, the better


def test_seed_ensemble_averages_probabilities(tmp_path, monkeypatch):
    monkeypatch.setattr(sr, 'ROOT', tmp_path)
    y = np.array([0, 1, 2, 3])
    p1 = np.eye(8)[[0, 1, 5, 5]] * 0.6 + 0.4 / 8
    p2 = np.eye(8)[[6, 1, 2, 3]] * 0.9 + 0.1 / 8
    for name, p in (('r', p1), ('r-s1', p2)):
        for split in ('val', 'test'):
            d = tmp_path / 'runs' / 'search' / name / 'f1'
            d.mkdir(parents=True, exist_ok=True)
            save_predictions({'p': p, 'label': y, 'id': ['a', 'b', 'c', 'd']}, d / f'predictions_{split}.csv')
    (rec,) = sr.ensemble(['r', 'r-s1'], folds=(1,))
    assert rec['val_macro_f1'] == pytest.approx(100 * macro_f1(y, (p1 + p2) / 2))
    assert rec['val_macro_f1'] > 100 * macro_f1(y, p1)


def test_grid_dry_run_checks_every_configuration_and_trains_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sr, 'LOG', tmp_path / 'log.csv')
    assert sr.run_grid('levers', dry_run=True) is None
    out = capsys.readouterr().out
    assert 'speed_perturb' in out and 'levers-ensemble' in out and not sr.LOG.exists()
    monkeypatch.setattr(sr, '_levers', lambda norm: {'ind-x': {'speed_perturb': 0.9}})  # outside its rule
    with pytest.raises(ValueError, match='speed_perturb'):
        sr.run_grid('levers', dry_run=True)

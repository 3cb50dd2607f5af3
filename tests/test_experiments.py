"""The papermill layer: an end-to-end run of experiments/run.ipynb on synthetic data, the ablation driver's
skip / failed / re-run behaviour, the report's aggregation, and resume equivalence of a whole run."""

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import papermill as pm
import pytest
import torch

from gcsa_fer.ablate import ablate, run_status
from gcsa_fer.presets import RECIPES, ablation_grid
from gcsa_fer.tables import ablation_table, collect_runs, table_markdown, step_table
from gcsa_fer.core import Config
from gcsa_fer import cli
from gcsa_fer.experiment import run_experiment

ROOT = Path(__file__).resolve().parent.parent
TINY = {k: v for k, v in RECIPES['smoke'].items() if k != 'epochs'}


def test_run_notebook_end_to_end(tmp_path):
    out = tmp_path / 'run'
    pm.execute_notebook(
        str(ROOT / 'nbs/experiments/run.ipynb'),
        str(tmp_path / 'executed.ipynb'),
        kernel_name='python3',
        progress_bar=False,
        parameters={'out_dir': str(out), 'epochs': 1, 'modality': 'av'},
    )
    m = json.loads((out / 'metrics.json').read_text())
    assert m['status'] == 'complete' and m['config']['train']['epochs'] == 1
    assert m['config']['model']['audio_width'] == 8  # synthetic data: the smoke recipe
    assert 0 <= m['test']['macro_f1'] <= 1 and 1 <= m['fusion']['m'] <= 5
    for f in ('curves.png', 'confusion_test.png', 'fusion_grid.png', 'predictions_test.csv', 'history.csv', 'best.pt'):
        assert (out / f).stat().st_size > 0, f
    nb = nbformat.read(tmp_path / 'executed.ipynb', as_version=4)
    assert any('parameters' in c.metadata.get('tags', []) for c in nb.cells)


PAPERMILL = str(Path(sys.executable).parent / 'papermill')


def _papermill(tmp_path, name, *args):
    "papermill's own command line on run.ipynb (as a user types it); the run's config.json."
    out = tmp_path / name
    r = subprocess.run(
        [
            PAPERMILL,
            str(ROOT / 'nbs/experiments/run.ipynb'),
            str(tmp_path / f'{name}.ipynb'),
            '-k',
            'python3',
            '-p',
            'out_dir',
            str(out),
            '-p',
            'cache_dir',
            str(tmp_path / 'cache'),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((out / 'config.json').read_text())


def test_papermill_parameters_win_and_the_recipe_gives_the_rest(tmp_path):
    "-p dataset ravdess alone is the paper's recipe, never the smoke settings; each -p value is recorded as given."
    got = _papermill(
        tmp_path, 'paper', *'-p dataset ravdess -p modality v -p epochs 1 -p batch_size 64 -p device cpu'.split()
    )
    assert got == Config(dataset='ravdess', modality='v').update(epochs=1, batch_size=64, device='cpu').to_dict()
    assert (
        got['train']['optimizer'] == 'sgd' and got['preprocess']['n_mels'] == 64 and got['model']['audio_width'] == 16
    )
    got = _papermill(
        tmp_path,
        'cpu',
        *'-p dataset ravdess -p modality v -p recipe cpu -p epochs 1 -p fold 2 -p device cpu'.split(),
        '-y',
        '{"overrides": {"lr": 0.01}}',
    )
    want = Config(dataset='ravdess', modality='v').update(
        **{**RECIPES['cpu'], 'lr': 0.01, 'epochs': 1, 'fold': 2, 'device': 'cpu'}
    )
    assert got == want.to_dict()


def _fake_notebook(path: Path):
    "A stand-in for run.ipynb: logs each execution, fails for seed 1 unless a 'fixed' file exists, else writes metrics.json."
    nb = nbformat.v4.new_notebook(
        metadata={
            'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'python3'},
            'language_info': {'name': 'python'},
        }
    )
    params = nbformat.v4.new_code_cell(
        "out_dir = ''\nrecipe = 'auto'\nseed = epochs = batch_size = fold = None\n"
        "dataset = modality = attention = loss = device = data_root = ''\noverrides = {}"
    )
    params.metadata['tags'] = ['parameters']
    body = nbformat.v4.new_code_cell(
        "import json, pathlib\n"
        "out = pathlib.Path(out_dir); log = out.parent / 'executions.log'\n"
        "log.open('a').write(out.name + '\\n')\n"
        "if seed == 1 and not (out.parent / 'fixed').exists(): raise RuntimeError('planted failure')\n"
        "from gcsa_fer.presets import run_config\n"
        "cfg = run_config(dict(dataset=dataset, modality=modality, recipe=recipe, data_root=data_root, attention=attention,\n"
        "                      loss=loss, seed=seed, epochs=epochs, batch_size=batch_size, fold=fold, device=device,\n"
        "                      overrides=overrides))\n"
        "json.dump({'status': 'complete', 'config': cfg.to_dict()}, open(out / 'metrics.json', 'w'))"
    )
    nb.cells = [params, body]
    nbformat.write(nb, path)


def test_driver_skips_records_failures_and_reruns(tmp_path):
    nbp = tmp_path / 'fake.ipynb'
    _fake_notebook(nbp)
    root = tmp_path / 'runs'
    kw = dict(seeds=[0, 1], folds=[0], modalities=['a'], rows=['Base'], notebook=nbp, estimate=False, progress=False)
    kw['protocols'] = 'transductive'  # the names runs had before protocols
    st = ablate('ravdess-cpu', root, **kw)
    assert dict(zip(st['name'], st['status'])) == {'ravdess-a-base-s0': 'complete', 'ravdess-a-base-s1': 'failed'}
    assert 'planted failure' in json.loads((root / 'ravdess-a-base-s1' / 'failed.json').read_text())['error']
    assert (root / 'status.csv').exists()
    # run again: the complete run is skipped, the failed one is retried (and fails again)
    ablate('ravdess-cpu', root, **kw)
    assert (root / 'executions.log').read_text().split() == [
        'ravdess-a-base-s0',
        'ravdess-a-base-s1',
        'ravdess-a-base-s1',
    ]
    # once the cause is fixed, a re-run completes it without touching the finished one
    (root / 'fixed').touch()
    st = ablate('ravdess-cpu', root, **kw)
    assert set(st['status']) == {'complete'} and not (root / 'ravdess-a-base-s1' / 'failed.json').exists()
    assert (root / 'executions.log').read_text().split().count('ravdess-a-base-s0') == 1
    # a folder holding a complete run of another configuration is neither reused nor overwritten
    m = json.loads((root / 'ravdess-a-base-s0' / 'metrics.json').read_text())
    m['config']['train']['lr'] = 0.5
    (root / 'ravdess-a-base-s0' / 'metrics.json').write_text(json.dumps(m))
    st = ablate('ravdess-cpu', root, **kw)
    assert dict(zip(st['name'], st['status']))['ravdess-a-base-s0'] == 'conflict'
    assert (root / 'executions.log').read_text().split().count('ravdess-a-base-s0') == 1
    assert run_status(root / 'nothing-here') == 'pending'


def test_driver_writes_the_papermill_command_that_reproduces_a_run(tmp_path, monkeypatch):
    nbp = tmp_path / 'fake.ipynb'
    _fake_notebook(nbp)
    monkeypatch.chdir(tmp_path)
    ablate(
        'ravdess-cpu',
        'runs',
        seeds=[0],
        folds=[3],
        modalities=['a'],
        rows=['+GCSA'],
        notebook=nbp,
        estimate=False,
        progress=False,
        epochs=7,
        protocols='transductive',
    )
    folder = tmp_path / 'runs' / 'ravdess-a-gcsa-f3-s0'
    cmd = (folder / 'papermill_command.txt').read_text().strip()
    assert cmd.startswith('papermill fake.ipynb runs/ravdess-a-gcsa-f3-s0/run.ipynb -k python3 -p dataset ravdess'), cmd
    first = json.loads((folder / 'metrics.json').read_text())['config']
    assert first['train']['epochs'] == 7 and first['fold'] == 3 and first['model']['attention'] == 'gcsa'
    (folder / 'metrics.json').unlink()
    r = subprocess.run(cmd.replace('papermill', PAPERMILL, 1), shell=True, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((folder / 'metrics.json').read_text())['config'] == first  # the same run, from the command alone
    assert collect_runs(tmp_path / 'runs')['papermill_command'].tolist() == [cmd]


def _fake_metrics(folder: Path, modality, attention, loss, seed, f1, fold=0):
    folder.mkdir(parents=True)
    cfg = (
        Config(dataset='ravdess', modality=modality)
        .update(attention=attention, loss=loss, seed=seed, fold=fold)
        .to_dict()
    )
    ev = {'macro_f1': f1, 'accuracy': f1, 'cross_quadrant_error_share': 0.5}
    (folder / 'metrics.json').write_text(
        json.dumps(
            {
                'status': 'complete',
                'config': cfg,
                'val': ev,
                'test': ev,
                'device': 'test',
                'git_commit': 'abc',
                'wall_seconds': 1.0,
            }
        )
    )


def test_report_aggregation(tmp_path):
    _fake_metrics(tmp_path / 'r1', 'av', 'gcsa', 'coarse_fine', 0, 0.40)
    _fake_metrics(tmp_path / 'r2', 'av', 'gcsa', 'coarse_fine', 1, 0.50)
    _fake_metrics(tmp_path / 'r3', 'a', 'none', 'ce', 0, 0.30)
    (tmp_path / 'r4').mkdir()
    (tmp_path / 'r4' / 'metrics.json').write_text('{"status": "incomplete"}')
    runs = collect_runs(tmp_path)
    assert len(runs) == 3
    t = ablation_table(runs)
    assert list(zip(t['modality'], t['row'])) == [('A', 'Base'), ('V+A', '+GCSA+CF')]
    row = t.iloc[1]
    assert (
        row['seeds'] == 2
        and row['test_f1_mean'] == pytest.approx(45.0)
        and row['test_f1_std'] == pytest.approx(np.std([40, 50], ddof=1))
    )
    assert row['paper_macro_f1'] == 46.51 and np.isnan(t.iloc[0]['paper_macro_f1'])
    assert '45.00 ± 7.07' in table_markdown(t)


def test_run_experiment_resume_equivalence(tmp_path):
    cfg = Config(dataset='synthetic', modality='av').update(
        epochs=2, **{**TINY, 'n_frames': 2, 'face_size': 16, 'n_mels': 16}
    )
    full = run_experiment(cfg, tmp_path / 'full', progress=False)
    part = run_experiment(cfg, tmp_path / 'resumed', progress=False, max_epochs=1)
    assert part == {'status': 'incomplete', 'epoch': 1} and not (tmp_path / 'resumed' / 'metrics.json').exists()
    resumed = run_experiment(cfg, tmp_path / 'resumed', progress=False)
    a = torch.load(tmp_path / 'full' / 'last.pt', weights_only=True)[
        'model'
    ]  # the safe loader reads every checkpoint the trainer writes
    b = torch.load(tmp_path / 'resumed' / 'last.pt', weights_only=True)['model']
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert full['test'] == resumed['test'] and full['fusion'] == resumed['fusion']
    h1, h2 = pd.read_csv(tmp_path / 'full' / 'history.csv'), pd.read_csv(tmp_path / 'resumed' / 'history.csv')
    assert h1['val_macro_f1'].tolist() == h2['val_macro_f1'].tolist()


def test_grid_by_fold_with_decision_fusion():
    runs = ablation_grid('ravdess-cpu-quick', protocols='transductive')
    assert len(runs) == 2 * (4 + 2 + 4) and [r['fold'] for r in runs] == [1] * 10 + [2] * 10
    seen = set()
    for r in runs:
        for need in r['parameters'].get('branch_runs', {}).values():
            assert need in seen and need.endswith(f"-f{r['fold']}-s0")  # its A and V runs come first, same fold
        seen.add(r['name'])
    av = {r['row']: r['parameters']['branch_runs'] for r in runs if r['modality'] == 'av' and r['fold'] == 1}
    assert av['+GCSA'] == {
        'a': 'ravdess-a-gcsa-f1-s0',
        'v': 'ravdess-v-base-f1-s0',
    }  # GCSA does not apply to the AU MLP
    assert av['+GCSA+CF'] == {'a': 'ravdess-a-gcsa-cf-f1-s0', 'v': 'ravdess-v-gcsa-cf-f1-s0'}
    assert [r['name'] for r in ablation_grid('ravdess-cpu', folds=[0], modalities=['a'], rows=['Base'])] == [
        'ravdess-a-base-inductive-s0',
        'ravdess-a-base-s0',
    ]
    both = ablation_grid('ravdess-cpu-quick')  # inductive runs first, each V+A fusing its own protocol's runs
    assert len(both) == 2 * len(runs) and [r['protocol'] for r in both] == ['inductive'] * 20 + ['transductive'] * 20
    for r in both:
        for need in r['parameters'].get('branch_runs', {}).values():
            assert ('-inductive-' in need) == (r['protocol'] == 'inductive')


def test_decision_fusion_of_two_runs(tmp_path):
    tiny = {**TINY, 'n_frames': 2, 'face_size': 16, 'n_mels': 16, 'epochs': 1}
    for m in ('a', 'v'):
        run_experiment(Config(dataset='synthetic', modality=m).update(**tiny), tmp_path / m, progress=False)
    cfg = Config(dataset='synthetic', modality='av').update(av_fusion='decision', **tiny)
    with pytest.raises(ValueError, match='branch_runs'):
        run_experiment(cfg, tmp_path / 'av', progress=False)
    res = run_experiment(cfg, tmp_path / 'av', progress=False, branch_runs={'a': tmp_path / 'a', 'v': tmp_path / 'v'})
    assert res['status'] == 'complete' and 1 <= res['fusion']['m'] <= 5 and res['branch_runs'] == {'a': 'a', 'v': 'v'}
    va = pd.read_csv(tmp_path / 'a' / 'predictions_val.csv')
    assert res['n_val'] == len(va) and (tmp_path / 'av' / 'predictions_test.csv').exists()
    assert res['val']['macro_f1'] == pytest.approx(
        res['fusion']['val_macro_f1']
    )  # the reported fusion is the one chosen on validation
    from gcsa_fer.models import load_model
    from gcsa_fer.model_export import export_default_model

    ex = load_model(export_default_model(tmp_path / 'av', tmp_path / 'exported'))  # one model folder from the two runs
    assert ex.branches == ['audio', 'visual'] and (ex.model.m, ex.model.n) == (res['fusion']['m'], res['fusion']['n'])
    (tmp_path / 'v' / 'metrics.json').write_text('{"status": "incomplete"}')
    with pytest.raises(ValueError, match='not complete'):
        run_experiment(cfg, tmp_path / 'av2', progress=False, branch_runs={'a': tmp_path / 'a', 'v': tmp_path / 'v'})


def test_fold_table_and_steps(tmp_path):
    f1 = {
        ('a', 'none', 'ce'): [0.50, 0.60],
        ('a', 'gcsa', 'ce'): [0.55, 0.58],
        ('v', 'none', 'ce'): [0.70, 0.65],
        ('av', 'none', 'ce'): [0.72, 0.71],
    }
    for (mod, att, loss), scores in f1.items():
        for fold, sc in zip((1, 2), scores):
            _fake_metrics(tmp_path / f'{mod}-{att}-f{fold}', mod, att, loss, 0, sc, fold)
    runs = collect_runs(tmp_path)
    t = ablation_table(runs)
    a_base = t[(t['modality'] == 'A') & (t['row'] == 'Base')].iloc[0]
    assert a_base['folds'] == 2 and a_base['seeds'] == 1 and a_base['test_f1_mean'] == pytest.approx(55.0)
    assert re.search(r'\| 2 +\| 1 +\|', table_markdown(t)), table_markdown(t)
    st = step_table(runs).set_index('step')
    g = st.loc['A: +GCSA over Base']
    assert g['per_fold'] == '+5.0 -2.0' and g['better_in'] == 1 and g['mean_diff'] == pytest.approx(1.5)
    v = st.loc['V+A Base over the better of A Base and V Base']
    assert v['per_fold'] == '+2.0 +6.0'  # fold 1: 72 vs max(50, 70); fold 2: 71 vs max(60, 65)


def test_shards_split_the_grid_without_splitting_a_fold(capsys):
    "gcsa_fer ablate --shard i/n: every run once; a fused V+A run with its branch runs."
    from gcsa_fer.ablate import shard_runs

    grid = ablation_grid('ravdess-cpu')
    seen = []
    for i in (1, 2, 3):
        part = shard_runs(grid, f'{i}/3')
        names = {r['name'] for r in part}
        for r in part:
            assert set((r['parameters'].get('branch_runs') or {}).values()) <= names
        seen += sorted(names)
    assert sorted(seen) == sorted(r['name'] for r in grid)
    cli.main(['ablate', '--list', '--shard', '2/3'])
    listed = [l.split('\t')[1] for l in capsys.readouterr().out.splitlines() if '\t' in l]
    assert listed == [r['name'] for r in shard_runs(grid, '2/3')] and all('-f2-' in n or '-f5-' in n for n in listed)


def test_driver_shows_the_epochs_of_the_run_it_runs(tmp_path, capsys):
    "The grid's bar counts runs; under it, a bar of the running run's epochs, read from its history.csv."
    nbp = tmp_path / 'fake.ipynb'
    _fake_notebook(nbp)
    nb = nbformat.read(nbp, as_version=4)
    nb.cells[
        1
    ].source += "\nopen(out / 'history.csv', 'w').write('epoch\\n' + ''.join(f'{i}\\n' for i in range(1, 31)))"
    nbformat.write(nb, nbp)
    kw = dict(seeds=[0], folds=[0], modalities=['a'], rows=['Base'], protocols='transductive', estimate=False)
    st = ablate('ravdess-cpu', tmp_path / 'runs', notebook=nbp, progress=True, **kw)
    assert list(st['status']) == ['complete']
    err = capsys.readouterr().err
    assert 'ravdess-a-base-s0' in err and '30/30' in err, err[-2000:]


def test_training_with_speed_and_pitch_perturbation(tmp_path):
    "Issue 36's audio levers train end to end: perturbed log-mels of one length stack into batches."
    cfg = Config(dataset='synthetic', modality='a').update(
        epochs=1, speed_perturb=0.1, pitch_shift=2.0, **{**TINY, 'n_mels': 16}
    )
    res = run_experiment(cfg, tmp_path, progress=False)
    assert res['status'] == 'complete' and res['config']['preprocess']['speed_perturb'] == 0.1

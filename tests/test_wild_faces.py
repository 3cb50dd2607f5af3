"""The wild-faces study command (tools/wild_faces_results.py) end to end on a tiny made-up face folder, its scores on
made-up records, and the default-model rule on made-up tables."""

import importlib.util
import json
import shutil
from pathlib import Path
import pandas as pd
import pytest
from gcsa_fer.catalogue import shipped_data_dir

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location('wild_faces_results', REPO / 'tools' / 'wild_faces_results.py')
wf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wf)
LONDON = shipped_data_dir() / 'london_faces_dev'


def _tiny_folder(root: Path, n_subjects: int = 9) -> Path:
    "London photos of `n_subjects` people as a manifest folder, and one more person's two photos labelled contempt."
    man = pd.read_csv(LONDON / 'manifest.csv')
    people = sorted(man['subject'].unique())
    keep = man[man['subject'].isin(people[:n_subjects])][['path', 'label', 'subject']]
    odd = man[man['subject'] == people[n_subjects]][['path', 'label', 'subject']].assign(label='contempt')
    man = pd.concat([keep, odd])
    for p in man['path']:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LONDON / p, root / p)
    man.to_csv(root / 'manifest.csv', index=False)
    return root


@pytest.mark.skipif(not LONDON.exists(), reason='the London dev set is fetched by make data')
def test_study_end_to_end_resumes_and_reports(tmp_path, capsys):
    data, out, work = _tiny_folder(tmp_path / 'faces'), tmp_path / 'out', tmp_path / 'work'
    rows = ['pixel-lr', 'zero-shot', 'rhcnn-gcsa', 'rhcnn-matched', 'rhcnn-distilled']  # the probe: test_faces.py
    args = ['--data', str(data), '--out', str(out), '--work', str(work), '--quick', '--quiet', '--n-folds', '3']
    args += ['--folds', '1', '--min-test', '1', '--rows', *rows]
    assert wf.main(args) == 0
    records = wf.load_records(out)
    # the GCSA comparison's rows with both --quick seeds, the others with one; contempt is not one of the classes
    assert sorted((r['row'], r['seed']) for r in records) == sorted(
        [(r, 0) for r in rows] + [('rhcnn-gcsa', 1), ('rhcnn-matched', 1)]
    )
    assert all(set(r['labels']) <= {0, 4} and len(r['labels']) == len(r['predicted']) for r in records)
    assert len({tuple(r['labels']) for r in records}) == 1  # every row on the same test photos
    counts = wf.fold_counts(work / 'manifest.csv', 3)  # what --counts prints
    assert counts[['Neutral', 'Happiness']].sum().sum() == 18 and 'Other' not in counts
    assert counts.loc[0, 'test'] == len(records[0]['labels']) and all(r['cpu_seconds'] > 0 for r in records)
    for f in ('table.csv', 'table.md', 'recall.csv', 'paired.csv', 'confusion.png', 'budget.json', 'README.md'):
        assert (out / f).stat().st_size > 0, f
    table = pd.read_csv(out / 'table.csv')
    assert list(table['key']) == rows and table['macro_f1'].between(0, 1).all()
    pair = pd.read_csv(out / 'paired.csv')
    assert len(pair) == 1 and pair['n_pairs'][0] == 2 and 'detectable' in pair
    assert json.loads((out / 'budget.json').read_text())['scratch_epochs'] == wf.QUICK['scratch_epochs']
    capsys.readouterr()
    # a second invocation reads every record and runs nothing
    stamps = {p: p.stat().st_mtime_ns for p in (out / 'runs').rglob('*.json')}
    (out / 'README.md').write_text((out / 'README.md').read_text() + 'kept by hand\n')
    assert wf.main(args) == 0
    assert ' ...' not in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (out / 'runs').rglob('*.json')} == stamps
    assert (out / 'README.md').read_text().endswith('kept by hand\n')
    # the export: the best trained row on every photo, its model card, London dev for it and the zero-shot model
    assert wf.main(args[:8] + ['--export', '--models', str(tmp_path / 'models')]) == 0
    best = wf.best_network(table)['key']
    london = json.loads((out / 'london.json').read_text())
    assert set(london) == {'zero-shot', best} and all(0 <= v <= 1 for v in london.values())
    card = (tmp_path / 'models' / 'wild-faces' / 'README.md').read_text()
    assert wf.ROWS[best][0] in card and 'Default-model rule:' in card and (out / 'MODEL_CARD.md').exists()
    assert wf.main(['--decide', '--out', str(out)]) in (0, 1)
    # a record made with another budget is refused, not mixed in
    with pytest.raises(SystemExit, match='another budget'):
        wf.main(args + ['--scratch-epochs', '2'])


def _record(row, fold, labels, predicted, seed=0):
    return {'row': row, 'fold': fold, 'seed': seed, 'labels': labels, 'predicted': predicted}


def test_scores_use_the_classes_every_fold_tests_enough():
    # fold 1 tests 2 Neutral, 2 Happiness, 1 Anger; fold 2: 2, 2, 2. With at least 2 a fold, Anger is left out.
    recs = [
        _record('zero-shot', 1, [0, 0, 4, 4, 1], [0, 4, 4, 4, 1]),
        _record('zero-shot', 2, [0, 0, 4, 4, 1, 1], [0, 0, 4, 4, 0, 0]),
    ]
    assert wf.reported_classes(recs, 2) == [0, 4] and wf.reported_classes(recs, 1) == [0, 1, 4]
    s = wf.scores(recs, [0, 4]).set_index('fold')
    # fold 1: Neutral F1 2/3 (1 right of 2, nothing else called Neutral), Happiness F1 0.8 (2 right, 3 called)
    assert s.loc[1, 'macro_f1'] == pytest.approx((2 / 3 + 0.8) / 2) and s.loc[1, 'accuracy'] == pytest.approx(0.8)
    # fold 2: the two Anger photos called Neutral lower Neutral's precision: F1 2 * (1/2 * 1) / (1/2 + 1) = 2/3
    assert s.loc[2, 'macro_f1'] == pytest.approx((2 / 3 + 1) / 2)
    assert s.loc[2, 'recall Anger'] == 0 and s.loc[1, 'recall Neutral'] == 0.5
    t = wf.summarise(wf.scores(recs, [0, 4]))
    assert t['macro_f1'][0] == pytest.approx(s['macro_f1'].mean()) and t['folds'][0] == 2


def test_paired_differences_are_gcsa_minus_control_by_fold_and_seed():
    runs = pd.DataFrame(
        [
            {'row': r, 'fold': k, 'seed': s, 'macro_f1': v}
            for r, base in (('rhcnn-gcsa', 0.6), ('rhcnn-matched', 0.5))
            for k in (1, 2, 3)
            for s, v in ((0, base + 0.01 * k), (1, base + 0.02 * k))
        ]
    )
    p = wf.paired(runs)
    assert list(p['comparison']) == ['RHCNN + GCSA from scratch minus RHCNN + matched control from scratch']
    assert p['n_pairs'][0] == 6 and p['mean_diff'][0] == pytest.approx(10.0) and p['n_folds'][0] == 3


def _table(**f1):
    return pd.DataFrame({'key': list(f1), 'row': [wf.ROWS[k][0] for k in f1], 'macro_f1': list(f1.values())})


@pytest.mark.parametrize(
    'f1, london, becomes, why',
    [
        (dict(**{'zero-shot': 0.48, 'probe': 0.64, 'minix-none': 0.52}), {}, False, 'under the 5 needed'),
        (dict(**{'zero-shot': 0.48, 'minix-none': 0.55}), {}, False, 'no London dev accuracy'),
        (
            dict(**{'zero-shot': 0.48, 'minix-none': 0.55}),
            {'zero-shot': 0.74, 'minix-none': 0.70},
            False,
            '< zero-shot',
        ),
        (dict(**{'zero-shot': 0.48, 'minix-none': 0.55}), {'zero-shot': 0.74, 'minix-none': 0.74}, True, 'becomes'),
        (
            dict(**{'zero-shot': 0.48, 'minix-none': 0.53, 'rhcnn-gcsa': 0.60}),
            {'zero-shot': 0.7, 'rhcnn-gcsa': 0.9},
            True,
            'RHCNN + GCSA from scratch',
        ),  # fmt: skip
        (dict(**{'minix-none': 0.7}), {}, False, 'lacks the zero-shot row'),
    ],
)
def test_default_model_rule(f1, london, becomes, why):
    yes, reason, _ = wf.decide_default(_table(**f1), london)
    assert yes == becomes and why in reason, reason


def test_decide_command_prints_the_reason_and_says_it_by_status(tmp_path, capsys):
    _table(**{'zero-shot': 0.48, 'minix-none': 0.60}).to_csv(tmp_path / 'table.csv', index=False)
    (tmp_path / 'london.json').write_text(json.dumps({'zero-shot': 0.735, 'minix-none': 0.80}))
    assert wf.main(['--decide', '--out', str(tmp_path)]) == 0
    assert 'becomes the default' in capsys.readouterr().out
    (tmp_path / 'london.json').write_text(json.dumps({'zero-shot': 0.735, 'minix-none': 0.70}))
    assert wf.main(['--decide', '--out', str(tmp_path)]) == 1
    assert 'keep the zero-shot default' in capsys.readouterr().out

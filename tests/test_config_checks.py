"Every configuration field is checked when it is parsed: one bad value per field, through the Python API, the CLI's --set and papermill's parameters; each refusal is one line that names the field (issue: reliability round 3)."

import dataclasses
import math
import subprocess
import sys
import pytest
from gcsa_fer.config import Config, flat_fields
from gcsa_fer.field_rules import FIELD_RULES
from gcsa_fer.cli import main

# the text fields without a rule: each has its own check (or is a path, read later)
SPECIAL = {'device': 'gpu', 'visual_backbone': 'resnet', 'label_map': 'grin'}
UNCHECKED = {
    'dataset',
    'data_root',
}  # checked when the data is read, before any file is written (tests/test_bad_inputs.py)


def _defaults() -> dict:
    c = Config()
    return {
        f.name: getattr(o, f.name)
        for o in (c, c.preprocess, c.model, c.train)
        for f in dataclasses.fields(o)
        if not dataclasses.is_dataclass(getattr(o, f.name))
    }


def bad_values(name: str, default) -> list:
    "Values that parse but that the field `name` must refuse."
    if name in SPECIAL:
        return [SPECIAL[name]]
    r = FIELD_RULES.get(name)
    if isinstance(default, bool):
        return ['maybe', 2]
    if r is not None and r.choices is not None:
        return ['no-such-choice']
    out = []
    if isinstance(default, float):
        out += [math.nan, math.inf, 'fast']
    if isinstance(default, int) and not isinstance(default, bool):
        out += [2.5, 'many']
    if r is not None and r.lo is not None:
        out.append(r.lo if r.lo_open else r.lo - 1)
    if r is not None and r.hi is not None:
        out.append(r.hi if r.hi_open else r.hi + 1)
    if r is not None and r.cap is not None:
        out.append(r.cap * 10)
    return out


CASES = [(n, v) for n, d in sorted(_defaults().items()) if n not in UNCHECKED for v in bad_values(n, d)]


def test_every_field_has_a_rule_or_a_check():
    "A new field must get a rule (FIELD_RULES) or a check of its own, named here."
    missing = flat_fields() - set(FIELD_RULES) - set(SPECIAL) - UNCHECKED
    missing = {n for n in missing if not isinstance(_defaults()[n], bool)}  # a switch is checked by its type
    assert not missing, f"fields without a rule: {sorted(missing)}"


@pytest.mark.parametrize('name,value', CASES, ids=[f'{n}={v!r}' for n, v in CASES])
def test_a_bad_value_is_refused_naming_the_field(name, value):
    with pytest.raises(ValueError) as e:
        Config(dataset='faces' if name == 'label_map' else 'synthetic').update(**{name: value})
    msg = str(e.value)
    assert name in msg and '\n' not in msg, msg


@pytest.mark.parametrize('name,value', [(n, v) for n, v in CASES if not isinstance(v, float) or math.isfinite(v)][::3])
def test_a_bad_value_from_the_command_line_is_one_line_and_exit_2(name, value, tmp_path, capsys):
    out = tmp_path / 'run'
    with pytest.raises(SystemExit) as e:
        main(['run', '--dataset', 'synthetic', '--out', str(out), '--set', f'{name}={value}'])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) <= 2 and name in err[-1], err  # argparse: usage line, then the error
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize(
    'where,value',
    [
        (['-p', 'epochs', 'many'], 'epochs must be an integer'),
        (['-y', 'overrides: {hop_length: 0}'], 'hop_length must be at least 1'),
    ],
)
def test_papermill_names_the_parameter(where, value, tmp_path):
    "papermill's error for a badly typed or out-of-range parameter names it (the run notebook's first cell after the parameters)."
    from gcsa_fer.ablate import find_notebook

    r = subprocess.run(
        [
            sys.executable,
            '-m',
            'papermill',
            str(find_notebook()),
            str(tmp_path / 'out.ipynb'),
            '-k',
            'python3',
            '-p',
            'out_dir',
            str(tmp_path / 'run'),
            *where,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode != 0 and value in r.stdout + r.stderr, r.stderr[-2000:]
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize(
    'flat,message',
    [
        (dict(win_length=1024), 'win_length (1024) must be at most n_fft (512)'),
        (dict(n_mels=300), 'n_mels (300) must be at most n_fft // 2 + 1 = 257'),
        (dict(f_max=9000.0), 'f_min < f_max <= sample_rate / 2'),
        (dict(f_min=8000.0), 'f_min < f_max <= sample_rate / 2'),
        (dict(window_seconds=0.01), 'window_seconds (0.01 s) must hold at least one FFT'),
        (dict(clip_seconds=0.02), 'clip_seconds (0.02 s) must hold at least one FFT'),
        (dict(freq_mask=100, n_mels=64), 'freq_mask (100) must be at most n_mels (64)'),
        (dict(kernel_size=4), 'kernel_size must be odd'),
        (dict(fold=7), 'fold must be 0 (the fixed split) or 1-6'),
        (dict(dataset='faces', n_folds=3, fold=4), 'fold must be 0 (the fixed split) or 1-3'),
    ],
)
def test_fields_that_must_agree(flat, message):
    with pytest.raises(ValueError, match=None) as e:
        Config().update(**flat)
    assert message in str(e.value), str(e.value)

"The cluster scripts: the SLURM array covers exactly the runs that train, the report job waits for it; the offline wheel script's options."

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_submit_array_with_a_fake_sbatch(tmp_path):
    log = tmp_path / 'sbatch.log'
    fake = tmp_path / 'bin' / 'sbatch'
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\necho $(( $(wc -l < {log}) + 100 ))\n')
    fake.chmod(0o755)
    env = {
        **os.environ,
        'PATH': f"{fake.parent}:{os.environ['PATH']}",
        'VENV': str(Path(os.sys.executable).parent.parent),
    }
    out = subprocess.run(
        ['bash', 'tools/slurm/submit_array.sh', 'ravdess-cpu-quick', '3'],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    array, report = log.read_text().splitlines()
    # ravdess-cpu-quick: per protocol and fold 4 A runs and 2 V runs train (inductive: positions 0-5 and 10-15,
    # transductive: 20-25 and 30-35); the 4 V+A runs per fold only fuse
    train = '0,1,2,3,4,5,10,11,12,13,14,15,20,21,22,23,24,25,30,31,32,33,34,35'
    assert f'--array={train}%3' in array and array.endswith('tools/slurm/ablation-array.sbatch ravdess-cpu-quick')
    assert '--dependency=afterany:101' in report and report.endswith(
        'tools/slurm/ablation-report.sbatch ravdess-cpu-quick'
    )
    assert 'submitted 24 runs' in out.stdout


def test_sbatch_scripts_parse():
    for f in (REPO / 'tools' / 'slurm').glob('*'):
        assert subprocess.run(['bash', '-n', str(f)]).returncode == 0, f


def test_offline_wheels_help_and_bad_option():
    assert (
        subprocess.run(
            ['bash', 'tools/offline_wheels.sh', '--help'], cwd=REPO, capture_output=True, text=True
        ).stdout.count('--skip')
        >= 1
    )
    bad = subprocess.run(['bash', 'tools/offline_wheels.sh', '--nope'], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and 'unknown option' in bad.stderr


def test_the_repository_stands_alone():
    "Nothing a user clones points at the developers' shared folder, except .ci/run, which names CI's data mirror beside the clone."
    hits = []
    for p in REPO.rglob('*'):
        if any(
            part in ('.git', '.venv', 'runs', '_docs_build', 'site', '__pycache__') or part.endswith('.egg-info')
            for part in p.relative_to(REPO).parts
        ):
            continue
        if (
            p.is_file()
            and p.suffix in ('.py', '.md', '.ipynb', '.ini', '.sh', '.sbatch', '.yml', '.txt', '')
            and p.stat().st_size < 2_000_000
        ):
            try:
                text = p.read_text()
            except UnicodeDecodeError:
                continue
            needles = [
                '..' + '/shared',
                'shared' + '/TOOLCHAIN',
                'shared' + '/tools',
            ]  # spelled apart, so this file does not match itself
            if any(n in text for n in needles) and p.relative_to(REPO).as_posix() != '.ci/run':
                hits.append(str(p.relative_to(REPO)))
    assert hits == [], hits

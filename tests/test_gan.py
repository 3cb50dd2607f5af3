"The gan option of a run: a GAN trained on the fold's training items, its samples added, its quality recorded."

import json
from gcsa_fer.core import Config
from gcsa_fer.experiment import run_experiment


def test_run_with_generated_items(tmp_path, one_thread):
    cfg = Config(dataset='synthetic', modality='v').update(
        epochs=1, batch_size=32, face_size=16, n_frames=2, visual_width=8, gan_per_class=2, gan_steps=20
    )
    m = run_experiment(cfg, tmp_path / 'run', progress=False)
    assert (
        m['status'] == 'complete'
        and (tmp_path / 'run' / 'gan' / 'gan.pt').exists()
        and (tmp_path / 'run' / 'gan' / 'samples.png').exists()
    )
    plain = json.loads((tmp_path / 'run' / 'config.json').read_text())
    assert (
        m['n_train'] == 256 + 2 * 8 and plain['train']['gan_per_class'] == 2
    )  # 256 synthetic items, 8 classes present
    q = m['gan']['quality_on_val']
    assert 0 <= q['tstr_accuracy'] <= 1 and 0 <= q['c2st_accuracy'] <= 1 and q['n_test'] == 64


def test_gan_command_on_ckplus_and_afew_layouts(tmp_path, face_frames, tone, video_writer, capsys):
    "One command trains the generator on a dataset in its published layout (a tiny CK+ tree and a tiny AFEW tree here)."
    from gcsa_fer import cli
    from test_data import _ckplus

    ck = _ckplus(tmp_path / 'ck', face_frames)
    seq = ck / 'cohn-kanade-images' / 'S006' / '001'
    seq.mkdir(parents=True)  # a second subject and class
    import shutil

    for f in (ck / 'cohn-kanade-images' / 'S005' / '001').iterdir():
        shutil.copy(f, seq / f.name.replace('S005', 'S006'))
    e = ck / 'Emotion' / 'S006' / '001'
    e.mkdir(parents=True)
    (e / 'S006_001_00000006_emotion.txt').write_text('   5.0000000e+00\n')
    try:
        cli.main(
            [
                'gan',
                '--dataset',
                'ckplus',
                '--data-root',
                str(ck),
                '--out',
                str(tmp_path / 'g'),
                '--steps',
                '10',
                '--face-size',
                '16',
                '--quiet',
                '--split',
                'all',
            ]
        )
    except SystemExit as x:
        assert x.code == 0
    out = capsys.readouterr().out
    assert (
        '2 training faces of 2 classes' in out
        and 'every item' in out
        and (tmp_path / 'g' / 'gan.pt').exists()
        and (tmp_path / 'g' / 'samples.png').exists()
    )
    assert json.loads((tmp_path / 'g' / 'quality.json').read_text())
    for split, n in (('Train', 2), ('Val', 2)):
        for emo in ('Happy', 'Sad'):
            for i in range(n):
                video_writer(tmp_path / 'afew' / split / emo / f'{emo}{i}.avi', face_frames[:6], audio=tone)
    try:
        cli.main(
            [
                'gan',
                '--dataset',
                'afew',
                '--data-root',
                str(tmp_path / 'afew'),
                '--out',
                str(tmp_path / 'ga'),
                '--steps',
                '10',
                '--face-size',
                '16',
                '--quiet',
                '--set',
                'n_frames=2',
            ]
        )
    except SystemExit as x:
        assert x.code == 0
    out = capsys.readouterr().out
    assert '4 training faces of 2 classes' in out and 'TSTR' in out, out

"The gan option of a run: a GAN trained on the fold's training items, its samples added, its quality recorded."
import json
import torch
from gcsa_fer.core import Config
from gcsa_fer.experiment import run_experiment

def test_run_with_generated_items(tmp_path):
    cfg = Config(dataset='synthetic', modality='v').update(epochs=1, batch_size=32, face_size=16, n_frames=2, visual_width=8,
                                                           gan_per_class=2, gan_steps=20)
    n = torch.get_num_threads(); torch.set_num_threads(1)
    try: m = run_experiment(cfg, tmp_path / 'run', progress=False)
    finally: torch.set_num_threads(n)
    assert m['status'] == 'complete' and (tmp_path / 'run' / 'gan' / 'gan.pt').exists() and (tmp_path / 'run' / 'gan' / 'samples.png').exists()
    plain = json.loads((tmp_path / 'run' / 'config.json').read_text())
    assert m['n_train'] == 256 + 2 * 8 and plain['train']['gan_per_class'] == 2      # 256 synthetic items, 8 classes present
    q = m['gan']['quality_on_val']
    assert 0 <= q['tstr_accuracy'] <= 1 and 0 <= q['c2st_accuracy'] <= 1 and q['n_test'] == 64

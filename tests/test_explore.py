"The explorer notebook runs headless (papermill), as CI runs it; and its helpers on each dataset."

from pathlib import Path
import numpy as np
import pytest
from gcsa_fer.models import load_model
from gcsa_fer.viz import explore_dataset, load_clip, analyse_clip, plot_probabilities, run_metrics, plot_run_metrics
from gcsa_fer.fusion import fuse

NBS = Path(__file__).resolve().parent.parent / 'nbs'


def test_explore_notebook_headless(tiny_run, tmp_path):
    pm = pytest.importorskip('papermill')
    nb = pm.execute_notebook(
        str(NBS / 'explore.ipynb'),
        str(tmp_path / 'explore.ipynb'),
        kernel_name='python3',
        progress_bar=False,
        cwd=str(NBS),
        parameters={'run_dir': str(tiny_run), 'dataset': 'cremad', 'clip_index': 2},
    )
    text = ''.join(o.get('text', '') for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []))
    assert '1001_DFA_FEA_XX: fused prediction' in text, text
    assert 'widgets' in nb.metadata  # the widget state was saved with the notebook


@pytest.mark.parametrize('name', ['cremad', 'ravdess', 'synthetic'])
def test_each_dataset(tiny_run, name):
    lm = load_model(tiny_run)
    ds = explore_dataset(name, lm.cfg)
    res = analyse_clip(lm, load_clip(ds, len(ds) - 1))
    assert 'pa' in res and np.isclose(fuse(res.get('pa'), res.get('pv'), 3, 2).sum(), 1, atol=1e-5)
    if name == 'ravdess':  # a face-frame model on AU features: audio only, and it says so
        assert 'pv' not in res and any('audio only' in n for n in res['notes'])
    else:
        assert 'pv' in res and res['visual_attention']['spatial'].shape == res['frames'].shape[:3]
    import matplotlib.pyplot as plt

    plt.close(plot_probabilities(res, 2, 3))


def test_run_metrics_plot(tiny_run):
    import matplotlib.pyplot as plt

    met = run_metrics(tiny_run)
    plt.close(plot_run_metrics(met, 'test'))
    with pytest.raises(ValueError, match='no'):
        plot_run_metrics(met, 'train')

"The one home of standardisation computes, bit for bit, what each place that used to write the formula computed."

import numpy as np
import torch

from gcsa_fer.standardise import moments, standardise, standardise_images, standardise_speakers, feature_stats

g = torch.Generator().manual_seed(0)


def test_utterance_matches_the_old_formula():  # datasets.Selected._audio and predict.normalise_windows, 'utterance'
    for x in (
        torch.randn(1, 64, 157, generator=g) * 9 - 40,
        torch.randn(7, 1, 64, 50, generator=g),
        torch.zeros(1, 8, 5),
    ):
        old = (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True).clamp(min=1e-3)
        assert torch.equal(standardise(x, -1), old)


def test_image_matches_the_old_formulas():
    x = torch.rand(6, 3, 48, 48, generator=g)  # rhcnn norm='image'
    old = (x - x.mean((1, 2, 3), keepdim=True)) / x.std((1, 2, 3), keepdim=True).clamp(min=1e-3)
    assert torch.equal(standardise_images(x), old)
    f = torch.rand(9, 256, generator=g) * 255  # gan._flat
    assert torch.equal(standardise_images(f), (f - f.mean(1, keepdim=True)) / f.std(1, keepdim=True).clamp(min=1e-3))
    for gr in (np.random.default_rng(0).random(1024, dtype=np.float32) * 255, np.full(1024, 7, np.float32)):
        old = (gr - gr.mean()) / max(gr.std(), 1e-3)  # face_training._grey32: numpy, population std
        new = standardise(gr, None, ddof=0)
        assert new.dtype == old.dtype and np.array_equal(new, old)


def test_speaker_matches_the_old_formulas():
    rng = np.random.default_rng(1)
    X, sp = rng.normal(size=(40, 5)) * 3 + 1, rng.integers(0, 4, 40)
    X[sp == 2, 1] = 4.0  # a constant column: the floor
    old = np.empty_like(X)  # baseline.speaker_normalise
    for s in np.unique(sp):
        m = sp == s
        old[m] = (X[m] - X[m].mean(0)) / np.maximum(X[m].std(0), 1e-3)
    assert np.array_equal(standardise_speakers(X, sp), old)
    items = [{'features': torch.tensor(r, dtype=torch.float32)} for r in X]  # datasets.feature_stats
    Xt = torch.stack([it['features'].double() for it in items])
    for k, (m, s) in feature_stats(items, list(sp)).items():
        assert torch.equal(m, Xt[sp == k].mean(0).float())
        assert torch.equal(s, Xt[sp == k].std(0, unbiased=False).clamp(min=1e-3).float())


def test_moments_match_predict_and_gan():
    frames = torch.randn(300, 64, generator=g) * 5  # predict.normalise_windows 'speaker': voiced frames N x F
    mean, std = moments(frames, 0, keepdim=False)
    assert torch.equal(mean, frames.mean(0)) and torch.equal(std, frames.std(0).clamp(min=1e-3))
    X = torch.randn(50, 35, generator=g)  # gan vectors
    mean, std = moments(X, 0, min_std=1e-6, keepdim=False)
    assert torch.equal(mean, X.mean(0)) and torch.equal(std, X.std(0).clamp(min=1e-6))

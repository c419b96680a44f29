"""Deletion and insertion curves against hand computations, slow references and a toy
model whose important pixels are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reportgen import images
from reportgen.analysis import faithfulness as F

MEAN = images.MEAN.astype(np.float64)
STD = images.STD.astype(np.float64)


def slow_order(v):
    v = list(v.ravel())
    real = sorted((i for i in range(len(v)) if not math.isnan(v[i])), key=lambda i: (-v[i], i))
    return real + [i for i in range(len(v)) if math.isnan(v[i])]


@pytest.mark.parametrize("seed", range(5))
def test_pixel_order_random_ties_nan_inf(seed):
    rng = np.random.default_rng(seed)
    v = rng.integers(-3, 4, (9, 11)).astype(np.float32)
    v[rng.random(v.shape) < 0.15] = np.nan
    v[0, 0], v[1, 1], v[2, 2] = -np.inf, np.inf, -0.0
    got = F.pixel_order(v)
    assert got.dtype == np.int64 and got.shape == (99,)
    assert got.tolist() == slow_order(v)


def test_perturbed_inputs_all_six_by_hand():
    image = np.arange(1, 13, dtype=np.float32).reshape(3, 2, 2)
    base = np.arange(-1, -13, -1, dtype=np.float32).reshape(3, 2, 2)
    out = F.perturbed_inputs(image, base, np.array([3, 0, 2, 1]), steps=4)
    assert out.shape == (6, 3, 2, 2) and out.dtype == np.float32
    # channel c pixel p: image 1+4c+p, baseline -(1+4c+p)
    s = lambda signs: np.array([[sg * (1 + 4 * c + p) for p, sg in enumerate(signs)] for c in range(3)],
                               np.float32).reshape(3, 2, 2)
    expected = [s([1, 1, 1, -1]), s([-1, 1, 1, -1]), s([-1, 1, -1, -1]),     # deletion k=1,2,3
                s([-1, -1, -1, 1]), s([1, -1, -1, 1]), s([1, -1, 1, 1])]     # insertion k=1,2,3
    np.testing.assert_array_equal(out, np.stack(expected))


def test_blur_strict():
    c = np.full((3, 40, 40), 0.7, np.float32)
    b = F.blurred_baseline(c)
    assert b.dtype == np.float32 and b.shape == c.shape
    np.testing.assert_array_equal(b, c)
    x = np.random.default_rng(0).standard_normal((3, 224, 224)).astype(np.float32)
    np.testing.assert_allclose(F.blurred_baseline(x).mean(axis=(1, 2), dtype=np.float64),
                               x.mean(axis=(1, 2), dtype=np.float64), atol=1e-6)
    photo = np.random.default_rng(1).random((3, 224, 224))
    norm = ((photo - MEAN[:, None, None]) / STD[:, None, None]).astype(np.float32)
    bp = F.blurred_baseline(photo.astype(np.float32)).astype(np.float64)
    np.testing.assert_allclose(F.blurred_baseline(norm), (bp - MEAN[:, None, None]) / STD[:, None, None], atol=1e-5)


def test_curves_nan_inf():
    for p in (0.0, math.nan, math.inf):
        c = F.curves_from_probabilities(p, 0.1, np.full(6, 0.2), steps=4)
        assert all(math.isnan(v) for v in c["deletion"] + c["insertion"])
        assert math.isnan(c["deletion_auc"]) and math.isnan(c["insertion_auc"])
    c = F.curves_from_probabilities(0.5, 0.1, np.array([0.4, .3, .2, .2, .3, .4]), steps=4)
    assert len(c["deletion"]) == 5 and c["deletion"][0] == 1.0 and c["insertion"][-1] == 1.0
    assert c["deletion_auc"] == pytest.approx(0.25 * (1 / 2 + .8 + .6 + .4 + .2 / 2))
    assert c["insertion_auc"] == pytest.approx(0.25 * (.2 / 2 + .4 + .6 + .8 + 1 / 2))


def test_deletion_insertion_w_map_and_batches():
    """p = sigmoid(sum(w * x) - 5): the map w (its important pixels, bright in the image)
    beats a random order, -w does not; the result does not depend on the batch size; the
    callback never gets more than batch_size rows and counts what was evaluated."""
    rng = np.random.default_rng(3)
    w = np.zeros((20, 20)); w[5:11, 5:11] = 0.1
    image = (rng.uniform(0, 0.2, (3, 20, 20)) + (w > 0)).astype(np.float32)  # bright where w > 0
    def make(bs, log):
        def f(batch):
            assert batch.dtype == np.float32 and batch.ndim == 4 and 1 <= len(batch) <= bs
            log.append(len(batch))
            return 1 / (1 + np.exp(-(batch.astype(np.float64) * w).sum(axis=(1, 2, 3)) + 5))
        return f
    p_image = float(make(1, [])(image[None])[0])
    runs = {}
    for bs in (1, 3, 7, 64):
        log = []
        res, rows = F.deletion_insertion(image, {"w": w, "neg": -w}, [7, 1], p_image, make(bs, log), bs)
        assert rows == 1 + 38 * 3 == sum(log)
        runs[bs] = res
    assert runs[1]["w"]["beats_random"] is True and runs[1]["neg"]["beats_random"] is False
    assert "beats_random" not in runs[1]["random"]
    assert set(runs[1]) == {"w", "neg", "random"} and list(runs[1]) == ["w", "neg", "random"]
    for bs in (3, 7, 64):
        assert runs[bs] == runs[1]
    other, _ = F.deletion_insertion(image, {"w": w}, [8, 1], p_image, make(64, []), 64)
    assert other["random"]["insertion"] != runs[1]["random"]["insertion"]
    assert other["w"] == runs[1]["w"]


def test_order_and_steps():
    assert np.array_equal(F.random_order(50, [4, 2]), np.random.default_rng([4, 2]).permutation(50))
    assert F.random_order(50, [4, 2]).dtype == np.int64
    assert [F.pixels_at_step(k, 224 * 224) for k in (0, 1, 20)] == [0, 2508, 50176]
    assert F.STEPS == 20 and F.BLUR_SIGMA == 10.0

"""The numeric routines of reportgen.analysis, each against an independent reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reportgen.analysis.compare import (
    model_pairs,
    load_ranking,
    pair_metrics,
    pair_metrics_of_rankings,
    save_ranking,
    rank_average,
    spearman,
    summarize,
    top_iou,
)
from reportgen.analysis.filters import weight_stats
from reportgen.analysis.saliency import (
    EDGE_FRACTION,
    TOP_FRACTION,
    concentration,
    edge_mask,
    edge_share,
    edge_strength,
    saliency_maps,
    saliency_stats,
    top_mask,
)

try:  # scipy is the preferred reference; the venv may not have it
    from scipy.stats import rankdata as _scipy_rankdata
except ImportError:  # pragma: no cover - depends on the environment
    _scipy_rankdata = None


# --- references -----------------------------------------------------------------------------

def reference_ranks(values) -> np.ndarray:
    """Average-tie ranks 1..N, the slow obvious way (or scipy's, when installed)."""
    flat = [float(v) for v in np.asarray(values).ravel()]
    if _scipy_rankdata is not None:
        return np.asarray(_scipy_rankdata(flat, method="average"), dtype=np.float64)
    ranks = []
    for v in flat:
        below = sum(1 for w in flat if w < v)
        equal = sum(1 for w in flat if w == v)
        ranks.append(below + (equal + 1) / 2.0)   # mean of below+1 .. below+equal
    return np.array(ranks)


def reference_spearman(a, b) -> float:
    ra, rb = reference_ranks(a), reference_ranks(b)
    n = len(ra)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    return cov / math.sqrt(va * vb)


def reference_top_indices(values, k) -> list[int]:
    """The k largest flat indices, ties to the earlier index: sort by (-value, index)."""
    flat = list(np.asarray(values, dtype=np.float64).ravel())
    return sorted(range(len(flat)), key=lambda i: (-flat[i], i))[:k]


# --- saliency_maps ----------------------------------------------------------------------------

def test_saliency_maps_is_max_abs_over_channels():
    g = np.zeros((2, 3, 2, 2), dtype=np.float32)
    g[0, :, 0, 0] = [1.0, -5.0, 2.0]        # the negative one has the largest magnitude
    g[0, :, 0, 1] = [-0.5, 0.25, 0.0]
    g[0, :, 1, 0] = [0.0, 0.0, 0.0]
    g[0, :, 1, 1] = [3.0, -3.0, 1.0]
    g[1, :, 0, 0] = [-7.0, -8.0, -9.0]
    g[1, :, 0, 1] = [2.0, 4.0, -1.0]
    g[1, :, 1, 0] = [0.125, -0.5, 0.25]
    g[1, :, 1, 1] = [-1.0, 1.0, -1.0]
    out = saliency_maps(g)
    expected = np.array([[[5.0, 0.5], [0.0, 3.0]],
                         [[9.0, 4.0], [0.5, 1.0]]], dtype=np.float32)
    assert out.shape == (2, 2, 2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_saliency_maps_random_against_loop():
    rng = np.random.default_rng(3)
    g = rng.normal(size=(2, 3, 5, 4))       # float64 in, float32 out
    out = saliency_maps(g)
    assert out.dtype == np.float32
    for b in range(2):
        for y in range(5):
            for x in range(4):
                assert out[b, y, x] == np.float32(max(abs(g[b, c, y, x]) for c in range(3)))


# --- top_mask ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,fraction", [((20, 20), 0.05), ((20, 20), 0.2), ((7, 9), 0.05),
                                            ((7, 9), 0.33), ((224, 224), 0.05),
                                            ((224, 224), 0.2), ((3, 3), 0.01), ((4, 5), 1.0)])
def test_top_mask_size_and_choice(shape, fraction):
    values = np.random.default_rng(sum(shape)).random(shape).astype(np.float32)
    mask = top_mask(values, fraction)
    k = max(1, math.ceil(fraction * values.size))
    assert mask.shape == shape and mask.dtype == bool
    assert int(mask.sum()) == k
    assert sorted(np.flatnonzero(mask)) == sorted(reference_top_indices(values, k))
    if k < values.size:
        assert values[mask].min() >= values[~mask].max()


def test_top_mask_ties_go_to_the_earlier_index():
    values = np.array([[1.0, 3.0, 2.0, 3.0],
                       [3.0, 0.0, 3.0, 1.0]])
    # four 3.0's for three places: the first three in row-major order win
    mask = top_mask(values, 3 / 8)
    assert mask.tolist() == [[False, True, False, True],
                             [True, False, False, False]]
    flat_ties = np.zeros(10)
    assert np.flatnonzero(top_mask(flat_ties, 0.3)).tolist() == [0, 1, 2]


@pytest.mark.parametrize("levels", [2, 5, 50])
def test_top_mask_many_ties_against_a_stable_sort(levels):
    # Few distinct values: the cut falls inside a run of ties, which the earlier pixels win.
    values = np.random.default_rng(levels).integers(0, levels, (224, 224)).astype(np.float32)
    for fraction in (0.05, 0.2, 0.5):
        k = math.ceil(fraction * values.size)
        expected = np.zeros(values.size, dtype=bool)
        expected[np.argsort(-values.ravel(), kind="stable")[:k]] = True
        np.testing.assert_array_equal(top_mask(values, fraction).ravel(), expected)


def test_top_mask_ranks_nan_last():
    values = np.array([np.nan, 1.0, np.nan, 2.0, 0.5])
    assert np.flatnonzero(top_mask(values, 0.4)).tolist() == [1, 3]
    assert np.flatnonzero(top_mask(values, 0.8)).tolist() == [0, 1, 3, 4]


def test_top_mask_picks_the_largest_including_negatives():
    values = np.array([-1.0, -0.5, -3.0, -0.25, -2.0])
    assert np.flatnonzero(top_mask(values, 0.4)).tolist() == [1, 3]


def test_top_mask_fraction_times_size_is_an_exact_integer():
    values = np.arange(100, dtype=np.float64)
    assert int(top_mask(values, 0.07).sum()) == 7


# --- concentration ----------------------------------------------------------------------------

def test_concentration_flat_map_is_the_fraction():
    assert concentration(np.ones((20, 20), dtype=np.float32)) == 0.05
    assert concentration(np.full((20, 20), 3.5, dtype=np.float32), 0.2) == 0.2


def test_concentration_zero_outside_top_is_one():
    s = np.zeros((20, 20), dtype=np.float32)
    s[3, 4:14] = np.linspace(1, 10, 10)
    s[17, 0:10] = 0.5      # 20 nonzero pixels == the top 5 % of 400
    assert concentration(s) == 1.0


def test_concentration_all_zero_is_nan():
    assert math.isnan(concentration(np.zeros((20, 20), dtype=np.float32)))


def test_concentration_hand_computed():
    s = np.array([[4.0, 0.0, 1.0, 0.0, 2.0],
                  [0.0, 1.0, 0.0, 0.0, 2.0]])
    # total 10; top 20 % of 10 pixels = 2 pixels: 4 and the first 2 -> 6 / 10
    assert concentration(s, 0.2) == pytest.approx(0.6)
    # top 30 % = 3 pixels: 4 + 2 + 2 = 8 / 10
    assert concentration(s, 0.3) == pytest.approx(0.8)


def test_concentration_random_against_reference():
    s = np.random.default_rng(5).random((224, 224)).astype(np.float32) ** 4
    k = math.ceil(0.05 * s.size)
    flat = s.ravel().astype(np.float64)
    expected = np.sort(flat)[::-1][:k].sum() / flat.sum()
    assert concentration(s) == pytest.approx(expected, rel=1e-9)


# --- edge_strength and edge_share ------------------------------------------------------------

def step_image(height=20, width=20, step=10, low=0, high=255) -> np.ndarray:
    img = np.full((height, width, 3), low, dtype=np.uint8)
    img[:, step:] = high
    return img


def test_edge_strength_vertical_step():
    e = edge_strength(step_image())
    assert e.shape == (20, 20) and e.dtype == np.float64
    gray_step = 255 * (0.299 + 0.587 + 0.114)
    # Sobel x: (1, 2, 1) column weights -> 4 * step at the two columns beside the step
    np.testing.assert_allclose(e[:, 9], 4 * gray_step)
    np.testing.assert_allclose(e[:, 10], 4 * gray_step)
    flat = np.delete(e, [9, 10], axis=1)
    assert np.all(flat == 0)
    assert e.argmax() % 20 in (9, 10)


def test_edge_strength_horizontal_step_and_grey_weights():
    img = np.zeros((12, 8, 3), dtype=np.uint8)
    img[6:, :, 1] = 100                  # only green steps: gray step 58.7
    e = edge_strength(img)
    np.testing.assert_allclose(e[5], 4 * 58.7)
    np.testing.assert_allclose(e[6], 4 * 58.7)
    assert np.all(np.delete(e, [5, 6], axis=0) == 0)


def test_edge_strength_matches_a_loop_sobel():
    crop = np.random.default_rng(11).integers(0, 256, size=(9, 7, 3), dtype=np.uint8)
    gray = crop[..., 0] * 0.299 + crop[..., 1] * 0.587 + crop[..., 2] * 0.114
    h, w = gray.shape

    def at(y, x):                         # edge-replicated border
        return gray[min(max(y, 0), h - 1), min(max(x, 0), w - 1)]

    kx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    expected = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            gx = sum(kx[i][j] * at(y + i - 1, x + j - 1) for i in range(3) for j in range(3))
            gy = sum(kx[j][i] * at(y + i - 1, x + j - 1) for i in range(3) for j in range(3))
            expected[y, x] = math.hypot(gx, gy)
    np.testing.assert_allclose(edge_strength(crop), expected, rtol=1e-12, atol=1e-9)


def test_edge_share_saliency_on_the_edges_is_one():
    crop = step_image()
    saliency = (edge_strength(crop) > 0).astype(np.float32)   # 40 of 400 pixels < top 20 %
    assert edge_share(saliency, crop) == pytest.approx(1.0)


def test_edge_share_constant_map_is_the_fraction():
    crop = np.random.default_rng(2).integers(0, 256, size=(50, 40, 3), dtype=np.uint8)
    share = edge_share(np.ones((50, 40), dtype=np.float32), crop)
    assert share == pytest.approx(math.ceil(EDGE_FRACTION * 2000) / 2000)
    assert share == pytest.approx(0.2)


def test_edge_share_off_the_edges_is_zero_and_all_zero_is_nan():
    crop = step_image()
    saliency = np.zeros((20, 20), dtype=np.float32)
    # Far from the step. (The top-20 % edge set is 80 pixels: the 40 step pixels, then 40
    # zero-strength pixels from rows 0-2 by the tie rule, so stay below row 3.)
    saliency[5:, 0] = 1.0
    saliency[5:, 19] = 1.0
    assert edge_share(saliency, crop) == 0.0
    saliency[5, 10] = 2.0                 # one pixel on the step
    assert edge_share(saliency, crop) == pytest.approx(2 / 32)
    assert math.isnan(edge_share(np.zeros((20, 20), dtype=np.float32), crop))


def test_saliency_stats_keys_and_values():
    crop = step_image()
    s = np.zeros((20, 20), dtype=np.float32)
    s[:, 9] = 2.0                         # on the step
    s[10:, 0] = 1.0                       # off it
    stats = saliency_stats(s, crop)
    assert set(stats) == {"max", "mean", "concentration_top5", "edge_share_top20"}
    assert stats["max"] == 2.0
    assert stats["mean"] == pytest.approx(50 / 400)
    assert stats["concentration_top5"] == pytest.approx(40 / 50)   # top 20 px: column 9
    assert stats["edge_share_top20"] == pytest.approx(40 / 50)
    assert TOP_FRACTION == 0.05 and EDGE_FRACTION == 0.2


# --- rank_average and spearman ----------------------------------------------------------------

def test_rank_average_hand_computed_ties():
    values = np.array([[10.0, 20.0, 10.0],
                       [30.0, 20.0, 10.0]])
    # sorted: 10,10,10 -> ranks 1,2,3 -> 2 ; 20,20 -> 4,5 -> 4.5 ; 30 -> 6
    assert rank_average(values).tolist() == [2.0, 4.5, 2.0, 6.0, 4.5, 2.0]
    assert rank_average(np.array([3, 1, 2])).tolist() == [3.0, 1.0, 2.0]
    assert rank_average(np.array([5.0, 5.0, 5.0, 5.0])).tolist() == [2.5] * 4


def test_rank_average_of_float32_orders_signs_zeros_and_infinities():
    """float32 maps are ranked through integer keys: negative values, both zeros, the
    smallest subnormals and the infinities must rank as the floats do."""
    special = np.array([-np.inf, -3.5, -1e-45, -0.0, 0.0, 1e-45, 2.0, 2.0, np.inf, -3.5],
                       dtype=np.float32)
    rng = np.random.default_rng(3)
    values = np.concatenate([special, rng.normal(size=500).astype(np.float32),
                             rng.integers(-3, 3, size=200).astype(np.float32)])
    rng.shuffle(values)
    np.testing.assert_array_equal(rank_average(values), reference_ranks(values))
    np.testing.assert_array_equal(rank_average(values), rank_average(values.astype(np.float64)))
    with_nan = values.copy()
    with_nan[5] = np.nan       # the float order (NaN last), not the keys'
    np.testing.assert_array_equal(rank_average(with_nan), rank_average(with_nan.astype(np.float64)))


def test_rank_average_random_ties_against_reference():
    values = np.random.default_rng(8).integers(0, 6, size=(7, 9)).astype(np.float32)
    np.testing.assert_array_equal(rank_average(values), reference_ranks(values))


def test_map_ranking_is_the_reference_ranks_centred_in_float32():
    """The spooled ranking is computed in float32 from a radix sort of the values' bits:
    exactly the reference's average ranks less their mean, for maps without ties (most
    saliency maps), with ReLU zeros and interpolated plateaus (Grad-CAM's), with values
    that differ only in their lowest bits, with negative values, and for ints and NaN
    (which are not radix-sorted)."""
    from reportgen.analysis.compare import map_ranking

    rng = np.random.default_rng(11)
    smooth = rng.random((60, 50), dtype=np.float32)
    relu = np.maximum(np.kron(rng.normal(size=(6, 5)), np.ones((10, 10))), 0).astype(np.float32)
    close = (np.float32(1.0) + np.arange(3000, dtype=np.float32) * np.float32(2 ** -23))
    rng.shuffle(close)
    signed = rng.normal(size=(40, 40)).astype(np.float32)
    with_nan = smooth.copy()
    with_nan[3, 4] = np.nan
    for values in (smooth, relu, close, signed, rng.integers(0, 9, (30, 30)), with_nan):
        ranks, _ = map_ranking(values)
        assert ranks.dtype == np.float32
        finite = np.isfinite(np.asarray(values, dtype=np.float64).ravel())
        reference = reference_ranks(values) if finite.all() else rank_average(values)
        np.testing.assert_array_equal(ranks, (reference - reference.mean()).astype(np.float32))
    assert (relu == 0).sum() > 100 and len(np.unique(close)) == 3000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_against_reference(seed):
    rng = np.random.default_rng(seed)
    a = rng.random((12, 10)).astype(np.float32)
    b = (a + rng.normal(scale=0.3, size=a.shape)).astype(np.float32)
    b[b < 0.2] = 0.2                      # plenty of ties
    assert spearman(a, b) == pytest.approx(reference_spearman(a, b), abs=1e-12)


def test_spearman_monotone_reversed_and_constant():
    a = np.random.default_rng(4).random((16, 16))
    assert spearman(a, np.exp(3 * a) + 7) == pytest.approx(1.0)
    assert spearman(a, -a ** 3) == pytest.approx(-1.0)
    assert math.isnan(spearman(a, np.full_like(a, 0.5)))
    assert math.isnan(spearman(np.zeros((4, 4)), np.zeros((4, 4))))


def test_spearman_hand_computed():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([1.0, 3.0, 2.0, 4.0])
    # d = (0, -1, 1, 0): 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman(a, b) == pytest.approx(0.8)


def test_spearman_does_not_modify_its_inputs():
    a = np.array([[3.0, 1.0], [2.0, 0.0]])
    b = np.array([[1.0, 2.0], [3.0, 4.0]])
    a0, b0 = a.copy(), b.copy()
    spearman(a, b)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


# --- top_iou and pair_metrics -----------------------------------------------------------------

def test_top_iou_identical_disjoint_and_partial():
    a = np.random.default_rng(6).random((20, 20))
    assert top_iou(a, a.copy()) == 1.0
    assert top_iou(a, a * 2 + 1) == 1.0
    assert top_iou(a, -a) == 0.0           # top 5 % of -a is the bottom 5 % of a

    x = np.zeros(20)
    y = np.zeros(20)
    x[[0, 1, 2, 3, 4]] = 1.0
    y[[2, 3, 4, 5, 6]] = 1.0
    # fraction 0.25 of 20 = 5 pixels each: intersection {2,3,4}, union {0..6}
    assert top_iou(x.reshape(4, 5), y.reshape(4, 5), 0.25) == pytest.approx(3 / 7)


def test_pair_metrics_keys_in_order_and_values():
    rng = np.random.default_rng(9)
    maps = {"vgg19": rng.random((10, 10)), "vgg16": rng.random((10, 10)),
            "resnet152": rng.random((10, 10))}
    result = pair_metrics(maps)
    assert list(result) == ["vgg19|vgg16", "vgg19|resnet152", "vgg16|resnet152"]
    assert model_pairs(["a", "b", "c"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    for key, metrics in result.items():
        first, second = key.split("|")
        assert set(metrics) == {"spearman", "iou_top5"}
        assert metrics["spearman"] == pytest.approx(
            reference_spearman(maps[first], maps[second]), abs=1e-12)
        assert metrics["iou_top5"] == top_iou(maps[first], maps[second])
    assert pair_metrics({"only": rng.random((3, 3))}) == {}


def test_spooled_rankings_give_exactly_the_float64_metrics(tmp_path):
    """The shard's comparison reads float32 centred ranks back from scratch files; with
    224 x 224 maps full of ties (quantized values, zeros) the numbers must be the float64
    ranking's to the last bit, not approximately."""
    rng = np.random.default_rng(11)
    maps = {"a": np.round(rng.random((224, 224)) * 50) / 50,      # many ties
            "b": np.where(rng.random((224, 224)) < 0.3, 0.0, rng.random((224, 224))),
            "c": rng.random((224, 224)).astype(np.float32)}
    for name, values in maps.items():
        save_ranking(tmp_path / f"{name}.npz", values)
    spooled = pair_metrics_of_rankings({n: load_ranking(tmp_path / f"{n}.npz") for n in maps})
    assert list(spooled) == ["a|b", "a|c", "b|c"]
    for key, metrics in spooled.items():
        first, second = key.split("|")
        centred = [rank_average(maps[m]) - rank_average(maps[m]).mean() for m in (first, second)]
        exact = float(centred[0] @ centred[1]) / math.sqrt(float(centred[0] @ centred[0])
                                                           * float(centred[1] @ centred[1]))
        assert metrics["spearman"] == exact
        assert metrics["iou_top5"] == top_iou(maps[first], maps[second])


# --- summarize and weight_stats ---------------------------------------------------------------

def test_summarize_ignores_nan_none_inf_and_uses_population_std():
    values = [1.0, None, 2.0, math.nan, 4.0, math.inf, 5.0, -math.inf]
    out = summarize(values)
    finite = [1.0, 2.0, 4.0, 5.0]
    mean = sum(finite) / 4
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / 4)   # population: divide by n
    assert out == {"mean": pytest.approx(mean), "std": pytest.approx(std),
                   "min": 1.0, "max": 5.0, "n": 4}
    assert out["std"] == pytest.approx(math.sqrt(2.5))


def test_summarize_empty_and_single():
    empty = summarize([None, math.nan])
    assert empty["n"] == 0
    assert all(math.isnan(empty[k]) for k in ("mean", "std", "min", "max"))
    assert summarize([])["n"] == 0
    assert summarize([3]) == {"mean": 3.0, "std": 0.0, "min": 3.0, "max": 3.0, "n": 1}


def test_weight_stats_against_numpy():
    w = np.random.default_rng(12).normal(0.01, 0.2, size=(64, 3, 7, 7)).astype(np.float32)
    stats = weight_stats("features.0", w)
    w64 = w.astype(np.float64)
    assert stats["name"] == "features.0"
    assert stats["shape"] == [64, 3, 7, 7]
    assert stats["count"] == 64 * 3 * 7 * 7
    assert stats["mean"] == pytest.approx(float(np.mean(w64)), rel=1e-12)
    assert stats["std"] == pytest.approx(float(np.sqrt(np.mean((w64 - w64.mean()) ** 2))),
                                         rel=1e-12)
    assert stats["min"] == float(w.min())
    assert stats["max"] == float(w.max())
    assert all(type(stats[k]) is float for k in ("mean", "std", "min", "max"))
    assert type(stats["count"]) is int


def test_saliency_stats_with_the_edge_mask_computed_once_are_the_same():
    rng = np.random.default_rng(3)
    crop = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    edges = edge_mask(crop)
    assert edges.sum() == math.ceil(0.2 * 40 * 30)
    for _ in range(3):
        s = rng.random((40, 30), dtype=np.float32)
        assert saliency_stats(s, crop, edges) == saliency_stats(s, crop)


def test_a_maps_top_mask_computed_once_gives_the_same_stats_and_ranking(tmp_path):
    """The figure task computes each map's top 5 % once, for its concentration and for the
    comparison's ranking: the same numbers and the same spooled ranking either way."""
    from reportgen.analysis.compare import map_ranking

    rng = np.random.default_rng(5)
    crop = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    for values in (rng.random((40, 30), dtype=np.float32),
                   np.round(rng.random((40, 30)), 1).astype(np.float32)):   # ties
        top = top_mask(values)
        assert saliency_stats(values, crop, top=top) == saliency_stats(values, crop)
        ranks, mask = map_ranking(values, top)
        ranks_alone, mask_alone = map_ranking(values)
        np.testing.assert_array_equal(ranks, ranks_alone)
        np.testing.assert_array_equal(mask, mask_alone)
        save_ranking(tmp_path / "shared.npz", values, top)
        save_ranking(tmp_path / "alone.npz", values)
        for a, b in zip(load_ranking(tmp_path / "shared.npz"), load_ranking(tmp_path / "alone.npz")):
            np.testing.assert_array_equal(a, b)


def test_an_images_edge_mask_is_computed_once_and_read_back_the_same(tmp_path):
    """The first model's figure task spools the image's edge mask; the other models' read
    it back bit for bit (its shape is not a multiple of 8: the packed bits' padding)."""
    from reportgen import pipeline

    ws = pipeline.Workspace(tmp_path)
    ws.create(save_arrays=False)
    crop = np.random.default_rng(6).integers(0, 256, (37, 29, 3), dtype=np.uint8)
    first = pipeline._edge_mask("img", crop, ws)
    assert (ws.scratch / pipeline.edges_file("img")).exists()
    np.testing.assert_array_equal(first, edge_mask(crop))
    again = pipeline._edge_mask("img", crop, ws)
    assert again.dtype == bool and again.shape == crop.shape[:2]
    np.testing.assert_array_equal(again, first)


def test_a_sorted_maps_top_mask_and_percentiles_are_top_mask_and_numpys():
    """A figure task sorts each map once and takes its top 5 % and its display percentile
    from that sort: exactly top_mask's mask (ties to the earlier pixel) and np.percentile's
    number, for maps with and without ties, with zeros, negative values and NaN, and
    small ones."""
    from reportgen.analysis.compare import SortedMap

    rng = np.random.default_rng(12)
    heavy = (rng.random((224, 224), dtype=np.float32) ** 6)
    plateaus = np.maximum(np.kron(rng.normal(size=(7, 7)), np.ones((32, 32))), 0).astype(np.float32)
    coarse = np.round(rng.random((30, 20)) * 3).astype(np.float32)
    with_nan = heavy[:40, :40].copy()
    with_nan[2, 3] = np.nan
    magnitudes = (rng.random(500) * 10.0 ** rng.integers(-9, 3, 500)).astype(np.float32)
    cases = (heavy, plateaus, coarse, rng.normal(size=(17, 13)).astype(np.float32), with_nan, magnitudes,
             np.float32([[2.5]]), np.float32([1.0, 1.0]), np.float32([1e-8, 1.0, 3e-9]),
             rng.random((9, 9)))     # float64 too
    for values in cases:
        sorted_map = SortedMap(values)
        for fraction in (TOP_FRACTION, EDGE_FRACTION, 0.5, 1.0):
            np.testing.assert_array_equal(sorted_map.top_mask(fraction), top_mask(values, fraction))
        for percent in (0.0, 1.0, 37.5, 50.0, 99.0, 99.9, 100.0):
            expected = float(np.percentile(values, percent))
            assert sorted_map.percentile(percent) == expected or (
                math.isnan(expected) and math.isnan(sorted_map.percentile(percent)))

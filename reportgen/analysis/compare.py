"""How much two models' saliency maps agree, per image and over the set."""

from __future__ import annotations

import itertools
import math

import numpy as np

from .saliency import TOP_FRACTION, lerp_as_numpy, mask_from_threshold, top_count, top_mask


def rank_average(values: np.ndarray) -> np.ndarray:
    """Ranks 1..N of the flattened `values`, ties sharing their average rank."""
    flat = np.asarray(values).ravel()
    order, sorted_keys = _sort_order(flat)
    return _ranks_from_order(order, sorted_keys, flat.size, offset=1.0, dtype=np.float64)


def _ranks_from_order(order: np.ndarray, sorted_keys: np.ndarray, size: int, offset: float,
                      dtype) -> np.ndarray:
    """Average ranks (counted from `offset`) scattered back through `order`, in `dtype`.
    Every rank is a multiple of 1/2, so float32 holds them exactly below 2^23."""
    ranks = np.empty(size, dtype=dtype)
    if size == 0:
        return ranks
    # Boundaries of runs of equal values in sorted order.
    new_run = sorted_keys[1:] != sorted_keys[:-1]
    if new_run.all():
        # No ties (most saliency maps): rank i + offset at sorted position i.
        ranks[order] = np.arange(size, dtype=dtype) + dtype(offset)
        return ranks
    starts = np.r_[0, np.flatnonzero(new_run) + 1]
    ends = np.r_[starts[1:], size]
    for_run = (starts + ends - 1) / 2.0 + offset   # average of ranks start .. end-1, + offset
    ranks[order] = np.repeat(for_run.astype(dtype), ends - starts)
    return ranks


def _sort_order(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, keys in that order): an argsort of `flat` and sort keys that are equal
    exactly where the values are. Tied values share their average rank whatever their
    order, so any sort will do.

    A float32 vector without NaN (every map) is sorted by the bits of its values (see
    _order_keys) in two stable passes over 16-bit halves, low half first (an LSD radix
    sort: numpy sorts 16-bit keys stably by counting). On a 224 x 224 map that is 1.2 ms
    against 2.9 ms for an argsort of the 32-bit keys (numpy 1.23, which mxnet 1.9 pins,
    has no vectorized argsort), twice per image x model."""
    keys = _order_keys(flat)
    if keys.dtype != np.int32:
        order = np.argsort(keys)
        return order, keys[order]
    unsigned = keys.view(np.uint32) ^ np.uint32(0x80000000)    # signed order -> unsigned
    by_low = np.argsort((unsigned & np.uint32(0xFFFF)).astype(np.uint16), kind="stable")
    high = (unsigned >> np.uint32(16)).astype(np.uint16)
    order = by_low[np.argsort(high[by_low], kind="stable")]
    return order, unsigned[order]


def _order_keys(flat: np.ndarray) -> np.ndarray:
    """int32 keys in the order of a float32 vector's values (equal values, +0 and -0
    included, have equal keys), for any other dtype or with a NaN the vector itself.
    Integer keys can be radix-sorted (_sort_order). The bits of a float32 read as int32
    order non-negative values like the floats, and negative ones in reverse: flipping the
    31 value bits of the negative ones puts them in order below all non-negative ones."""
    if flat.dtype != np.float32 or np.isnan(flat).any():
        return flat
    bits = (flat + np.float32(0)).view(np.int32)      # -0.0 + 0.0 is +0.0
    return bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps of equal shape; NaN if either is constant."""
    return _correlation(_centred_ranks(a), _centred_ranks(b))


def _centred_ranks(values: np.ndarray) -> np.ndarray:
    ranks = rank_average(values)
    return ranks - ranks.mean()


def _correlation(ca: np.ndarray, cb: np.ndarray) -> float:
    """Pearson correlation of two centred vectors."""
    denominator = math.sqrt(float(ca @ ca) * float(cb @ cb))
    return float(ca @ cb) / denominator if denominator > 0 else math.nan


def top_iou(a: np.ndarray, b: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Intersection over union of the two maps' top-`fraction` pixel sets."""
    return _iou(top_mask(a, fraction), top_mask(b, fraction))


def _iou(ma: np.ndarray, mb: np.ndarray) -> float:
    return float((ma & mb).sum()) / float((ma | mb).sum())


def model_pairs(models: list[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(models, 2))


def pair_metrics(maps: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per pair "a|b": spearman and IoU of the top 5 %, for one image's maps by model.
    Each map is ranked and thresholded once, not once per pair it is in."""
    return pair_metrics_of_rankings({name: map_ranking(m) for name, m in maps.items()})


class SortedMap:
    """One map sorted once (a figure task's 224 x 224 map): its ranking for the comparison,
    its top pixels for the statistics and its percentile for display all come from that
    sort, instead of a sort and four O(N) selections (2.2 ms of the ~17 ms per image and
    model). Each gives exactly what the routine it stands for gives (tested): top_mask,
    np.percentile, the reference ranks."""

    def __init__(self, values: np.ndarray):
        self.shape = np.shape(values)
        self.flat = np.asarray(values).ravel()
        self.order, self._sorted_keys = _sort_order(self.flat)
        # Radix-sorted (float32 without NaN): the keys' order is the values' order. Else
        # (NaN, which the routines below order differently) they use their own selection.
        self._in_value_order = self._sorted_keys.dtype == np.uint32

    def centred_ranks(self) -> np.ndarray:
        """Average ranks less their mean (N + 1) / 2, in float32: counted from -(N - 1) / 2
        (the same values as the float64 ranks centred, then converted)."""
        return _ranks_from_order(self.order, self._sorted_keys, self.flat.size,
                                 offset=-(self.flat.size - 1) / 2, dtype=np.float32)

    def top_mask(self, fraction: float = TOP_FRACTION) -> np.ndarray:
        """saliency.top_mask(values, fraction)."""
        size = self.flat.size
        k = top_count(size, fraction)
        if not self._in_value_order or k >= size:
            return top_mask(self.flat.reshape(self.shape), fraction)
        threshold = self.flat[self.order[size - k]]
        return mask_from_threshold(self.flat, threshold, k).reshape(self.shape)

    def percentile(self, percent: float) -> float:
        """float(np.percentile(values, percent)): numpy's "linear" method step for step."""
        size = self.flat.size
        if not self._in_value_order or size < 2:
            return float(np.percentile(self.flat, percent))
        virtual = (size - 1) * np.true_divide(np.float64(percent), 100)
        below = math.floor(virtual)
        if below >= size - 1:
            return float(self.flat[self.order[-1]])
        a, b = self.flat[self.order[below]], self.flat[self.order[below + 1]]
        return float(lerp_as_numpy(a, b, np.asarray(virtual - below, dtype=np.float64)))


def map_ranking(values: np.ndarray, top: np.ndarray | None = None,
                sorted_map: SortedMap | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What pair_metrics needs of one map: its centred ranks (float32: ranks are multiples
    of 1/2 below 2^23 and their mean is (N + 1) / 2, so the centred ranks are exact in
    float32 and the correlations are those of the float64 ranks) and its top-5 % mask.
    Computed as soon as a map exists, so that the comparison itself is a few dot products.
    `top`: the map's top_mask(values, TOP_FRACTION), `sorted_map`: SortedMap(values), if
    already computed."""
    sorted_map = SortedMap(values) if sorted_map is None else sorted_map
    return sorted_map.centred_ranks(), sorted_map.top_mask(TOP_FRACTION) if top is None else top


def pair_metrics_of_rankings(rankings: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, float]]:
    """pair_metrics from each map's map_ranking."""
    ranks = {name: r.astype(np.float64) for name, (r, _) in rankings.items()}
    return {
        f"{a}|{b}": {"spearman": _correlation(ranks[a], ranks[b]),
                     "iou_top5": _iou(rankings[a][1], rankings[b][1])}
        for a, b in model_pairs(list(rankings))
    }


def save_ranking(path, values: np.ndarray, top: np.ndarray | None = None,
                 sorted_map: SortedMap | None = None) -> None:
    """Spool a map's map_ranking to `path` (.npz, uncompressed: written and read once)."""
    ranks, top = map_ranking(values, top, sorted_map)
    np.savez(path, ranks=ranks, top=top)


def load_ranking(path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as spooled:
        return spooled["ranks"], spooled["top"]


def summarize(values: list[float]) -> dict[str, float | int]:
    """Mean, std (population), min, max and count of the finite values."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {"mean": float(finite.mean()), "std": float(finite.std()),
            "min": float(finite.min()), "max": float(finite.max()), "n": int(finite.size)}

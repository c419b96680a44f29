"""How much two models' saliency maps agree, per image and over the set."""

from __future__ import annotations

import itertools
import math

import numpy as np

from .saliency import TOP_FRACTION, top_mask


def rank_average(values: np.ndarray) -> np.ndarray:
    """Ranks 1..N of the flattened `values`, ties sharing their average rank."""
    flat = np.asarray(values).ravel()
    # Any sort order will do: tied values share their average rank whatever their order,
    # and the default (introsort) on the map's own dtype is 3x faster than a stable sort in
    # float64.
    order = np.argsort(_order_keys(flat))
    sorted_values = flat[order]
    # Boundaries of runs of equal values in sorted order.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], flat.size]
    ranks = np.empty(flat.size, dtype=np.float64)
    for_run = (starts + ends + 1) / 2.0          # average of ranks start+1 .. end
    ranks[order] = np.repeat(for_run, ends - starts)
    return ranks


def _order_keys(flat: np.ndarray) -> np.ndarray:
    """int32 keys in the order of a float32 vector's values (equal values, +0 and -0
    included, have equal keys), for any other dtype or with a NaN the vector itself.
    numpy 1.23 argsorts int32 1.45x faster than float32 (224 x 224 map: 2.7 against 3.9 ms,
    twice per image x model). The bits of a float32 read as int32 order non-negative values
    like the floats, and negative ones in reverse: flipping the 31 value bits of the
    negative ones puts them in order below all non-negative ones."""
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


def map_ranking(values: np.ndarray, top: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What pair_metrics needs of one map: its centred ranks (float32: ranks are multiples
    of 1/2 below 2^23 and their mean is (N + 1) / 2, so the centred ranks are exact in
    float32 and the correlations are those of the float64 ranks) and its top-5 % mask.
    Computed as soon as a map exists, so that the comparison itself is a few dot products.
    `top`: the map's top_mask(values, TOP_FRACTION), if already computed."""
    return (_centred_ranks(values).astype(np.float32),
            top_mask(values, TOP_FRACTION) if top is None else top)


def pair_metrics_of_rankings(rankings: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, float]]:
    """pair_metrics from each map's map_ranking."""
    ranks = {name: r.astype(np.float64) for name, (r, _) in rankings.items()}
    return {
        f"{a}|{b}": {"spearman": _correlation(ranks[a], ranks[b]),
                     "iou_top5": _iou(rankings[a][1], rankings[b][1])}
        for a, b in model_pairs(list(rankings))
    }


def save_ranking(path, values: np.ndarray, top: np.ndarray | None = None) -> None:
    """Spool a map's map_ranking to `path` (.npz, uncompressed: written and read once)."""
    ranks, top = map_ranking(values, top)
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

"""How much two models' saliency maps agree, per image and over the set."""

from __future__ import annotations

import itertools
import math

import numpy as np

from .saliency import TOP_FRACTION, top_mask


def rank_average(values: np.ndarray) -> np.ndarray:
    """Ranks 1..N of the flattened `values`, ties sharing their average rank."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(flat, kind="stable")
    sorted_values = flat[order]
    # Boundaries of runs of equal values in sorted order.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], flat.size]
    ranks = np.empty(flat.size, dtype=np.float64)
    for_run = (starts + ends + 1) / 2.0          # average of ranks start+1 .. end
    ranks[order] = np.repeat(for_run, ends - starts)
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps of equal shape; NaN if either is constant."""
    ra, rb = rank_average(a), rank_average(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / denominator if denominator > 0 else math.nan


def top_iou(a: np.ndarray, b: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Intersection over union of the two maps' top-`fraction` pixel sets."""
    ma, mb = top_mask(a, fraction), top_mask(b, fraction)
    return float((ma & mb).sum()) / float((ma | mb).sum())


def model_pairs(models: list[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(models, 2))


def pair_metrics(maps: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per pair "a|b": spearman and IoU of the top 5 %, for one image's maps by model."""
    return {
        f"{a}|{b}": {"spearman": spearman(maps[a], maps[b]), "iou_top5": top_iou(maps[a], maps[b])}
        for a, b in model_pairs(list(maps))
    }


def summarize(values: list[float]) -> dict[str, float | int]:
    """Mean, std (population), min, max and count of the finite values."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {"mean": float(finite.mean()), "std": float(finite.std()),
            "min": float(finite.min()), "max": float(finite.max()), "n": int(finite.size)}

"""Saliency maps (Simonyan et al. 2013) and numbers that describe where a map looks."""

from __future__ import annotations

import math

import numpy as np

TOP_FRACTION = 0.05    # "the most salient pixels": the top 5 %
EDGE_FRACTION = 0.20   # "the image's contours": its 20 % strongest-edge pixels


def saliency_maps(gradients: np.ndarray) -> np.ndarray:
    """(B, C, H, W) input gradients -> (B, H, W) max over channels of |gradient|, float32."""
    return np.abs(gradients).max(axis=1).astype(np.float32)


def top_mask(values: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Boolean mask of the ceil(fraction * N) largest entries; ties go to the earlier pixel
    in row-major order, so the mask always has exactly that many entries."""
    flat = values.ravel()
    k = top_count(flat.size, fraction)
    if k >= flat.size:
        return np.ones(values.shape, dtype=bool)
    if np.isnan(flat).any():   # rank NaN below everything, as a descending sort would
        flat = np.where(np.isnan(flat), -np.inf, flat)
    # O(N) selection instead of a full sort (called ~5 times per image and model): the k-th
    # largest value, everything above it, then as many of its ties as fit, earliest first.
    threshold = np.partition(flat, flat.size - k)[flat.size - k]
    return mask_from_threshold(flat, threshold, k).reshape(values.shape)


def top_count(size: int, fraction: float) -> int:
    """How many entries the top `fraction` of `size` holds: ceil, at least 1."""
    # Rounded first: 0.07 * 100 is 7.000000000000001 in floating point, and means 7.
    return max(1, math.ceil(round(fraction * size, 6)))


def mask_from_threshold(flat: np.ndarray, threshold, k: int) -> np.ndarray:
    """The top-k mask of `flat` whose k-th largest value is `threshold`: everything above
    it, then as many of its ties as fit, earliest first."""
    mask = flat > threshold
    ties = np.flatnonzero(flat == threshold)[:k - int(mask.sum())]
    mask[ties] = True
    return mask


def lerp_as_numpy(a, b, gamma):
    """numpy's own interpolation between the order statistics `a` and `b` of a "linear"
    percentile (numpy.lib.function_base._lerp): the difference in their dtype, the step in
    gamma's, from the upper value at or above the half. Shared by the routines that take
    percentiles from their own sort or partition, so that they give np.percentile's numbers
    exactly."""
    difference = np.subtract(b, a)
    result = np.asanyarray(np.add(a, difference * gamma))
    np.subtract(b, difference * (1 - gamma), out=result, where=gamma >= 0.5)
    return result


def concentration(saliency: np.ndarray, fraction: float = TOP_FRACTION,
                  top: np.ndarray | None = None) -> float:
    """Share of the total saliency held by its top `fraction` pixels: `fraction` for a flat
    map, 1.0 for a map that is zero outside them. NaN for an all-zero map. `top`: that
    map's top_mask(saliency, fraction), if already computed (the comparison needs it too)."""
    total = float(saliency.sum(dtype=np.float64))
    if total <= 0:
        return math.nan
    if top is None:
        top = top_mask(saliency, fraction)
    return float(saliency[top].sum(dtype=np.float64)) / total


def edge_strength(crop: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the grayscale image (H, W, 3) uint8 -> (H, W) float64."""
    gray = crop.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    p = np.pad(gray, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return np.hypot(gx, gy)


def edge_mask(crop: np.ndarray, fraction: float = EDGE_FRACTION) -> np.ndarray:
    """The image's contours: its top `fraction` pixels by Sobel magnitude. The same for
    every map of an image: computed once per image and model, not once per map."""
    return top_mask(edge_strength(crop), fraction)


def edge_share(saliency: np.ndarray, crop: np.ndarray, fraction: float = EDGE_FRACTION,
               edges: np.ndarray | None = None) -> float:
    """Share of the total saliency that lies on the image's strongest edges (its top
    `fraction` pixels by Sobel magnitude; `edges`: that mask, if already computed). A map
    blind to contours scores about `fraction`; a map that follows contours scores higher.
    NaN for an all-zero map."""
    total = float(saliency.sum(dtype=np.float64))
    if total <= 0:
        return math.nan
    if edges is None:
        edges = edge_mask(crop, fraction)
    return float(saliency[edges].sum(dtype=np.float64)) / total


def saliency_stats(saliency: np.ndarray, crop: np.ndarray,
                   edges: np.ndarray | None = None, top: np.ndarray | None = None) -> dict[str, float]:
    """The per-image, per-model numbers results.json and the report carry (`edges`: the
    crop's edge_mask, `top`: the map's top_mask, if already computed)."""
    return {
        "max": float(saliency.max()),
        "mean": float(saliency.mean(dtype=np.float64)),
        "concentration_top5": concentration(saliency, top=top),
        "edge_share_top20": edge_share(saliency, crop, edges=edges),
    }

"""Deletion and insertion curves (Petsiuk et al. 2018, RISE): is a map faithful to its model?

Pixels are ranked by the map; in STEPS steps the most attributed ones are replaced by a
blurred copy of the image (deletion) or revealed on it (insertion), and the target class's
probability is tracked. A faithful map makes the probability fall fast under deletion and
rise fast under insertion; a random pixel order is the yardstick. The model is reached
only through a callback, so this module is plain numpy (and scipy's Gaussian filter).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter

STEPS = 20          # 20 steps of 5 % of the pixels
BLUR_SIGMA = 10.0   # pixels of the 224 x 224 input


def blurred_baseline(image: np.ndarray) -> np.ndarray:
    """(3, H, W) normalized input -> the same, each channel Gaussian-blurred (sigma
    BLUR_SIGMA, reflected at the border). Blurring the normalized tensor is the same as
    normalizing the blurred photo: normalization is a per-channel affine map and the
    filter's weights sum to 1."""
    blurred = np.stack([gaussian_filter(c.astype(np.float64), BLUR_SIGMA, mode="reflect") for c in image])
    return blurred.astype(image.dtype)


def pixel_order(attribution_map: np.ndarray) -> np.ndarray:
    """Flat pixel indices, most attributed first; ties to the earlier pixel (row-major),
    NaN last."""
    flat = attribution_map.astype(np.float64).ravel()
    flat = np.where(np.isnan(flat), -np.inf, flat)
    # A stable sort of the negated values keeps ties in index order; NaN (now -inf) last,
    # after any real -inf in index order as well.
    order = np.argsort(-flat, kind="stable")
    nan_last = np.isnan(attribution_map.ravel())[order]
    return np.concatenate([order[~nan_last], order[nan_last]]).astype(np.int64)


def random_order(n_pixels: int, seed_sequence) -> np.ndarray:
    return np.random.default_rng(seed_sequence).permutation(n_pixels).astype(np.int64)


def pixels_at_step(k: int, n_pixels: int, steps: int = STEPS) -> int:
    return k * n_pixels // steps


def perturbed_inputs(image: np.ndarray, baseline: np.ndarray, order: np.ndarray,
                     steps: int = STEPS) -> np.ndarray:
    """(2 (steps - 1), 3, H, W): deletion inputs for k = 1 .. steps - 1 (the image with its
    first pixels_at_step(k) pixels of `order` taken from the baseline), then insertion
    inputs (the baseline with those pixels taken from the image). Steps 0 and `steps` are
    the image and the baseline themselves, which the caller evaluates once."""
    channels, height, width = image.shape
    n = height * width
    flat_image, flat_base = image.reshape(channels, n), baseline.reshape(channels, n)
    out = np.empty((2 * (steps - 1), channels, n), dtype=image.dtype)
    for k in range(1, steps):
        chosen = order[:pixels_at_step(k, n, steps)]
        deletion, insertion = out[k - 1], out[steps - 1 + k - 1]
        deletion[:] = flat_image
        deletion[:, chosen] = flat_base[:, chosen]
        insertion[:] = flat_base
        insertion[:, chosen] = flat_image[:, chosen]
    return out.reshape(2 * (steps - 1), channels, height, width)


def curves_from_probabilities(p_image: float, p_baseline: float, probabilities: np.ndarray,
                              steps: int = STEPS) -> dict:
    """Curves of the target probability relative to the unmodified image's (so models of
    different confidence compare), at x = k / steps, and their trapezoid areas over
    [0, 1]. Deletion: lower area = more faithful; insertion: higher."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    deletion = np.r_[p_image, probabilities[:steps - 1], p_baseline]
    insertion = np.r_[p_baseline, probabilities[steps - 1:], p_image]
    if not (math.isfinite(p_image) and p_image > 0):
        deletion = insertion = np.full(steps + 1, np.nan)
    else:
        deletion, insertion = deletion / p_image, insertion / p_image
    x = np.linspace(0.0, 1.0, steps + 1)
    return {"deletion": deletion.tolist(), "insertion": insertion.tolist(),
            "deletion_auc": float(np.trapz(deletion, x)), "insertion_auc": float(np.trapz(insertion, x))}


def deletion_insertion(image: np.ndarray, maps: dict[str, np.ndarray], random_seed, p_image: float,
                       target_probability, batch_size: int, steps: int = STEPS) -> tuple[dict, int]:
    """Every map's curves for one image and one model, and a random pixel order's
    ("random"). target_probability(batch (n, 3, H, W)) -> (n,) is the model's softmax
    probability of the image's target class; it gets at most `batch_size` rows at a time.
    Returns ({name: curves, with "beats_random" for each map}, rows evaluated)."""
    baseline = blurred_baseline(image)
    p_baseline = float(target_probability(baseline[None])[0])
    rows = 1
    orders = {name: pixel_order(m) for name, m in maps.items()}
    orders["random"] = random_order(image.shape[1] * image.shape[2], random_seed)
    results = {}
    for name, order in orders.items():
        inputs = perturbed_inputs(image, baseline, order, steps)
        probabilities = np.concatenate([target_probability(inputs[i:i + batch_size])
                                        for i in range(0, len(inputs), batch_size)])
        rows += len(inputs)
        results[name] = curves_from_probabilities(p_image, p_baseline, probabilities, steps)
    random = results["random"]
    for name in maps:
        r = results[name]
        r["beats_random"] = bool(r["deletion_auc"] < random["deletion_auc"]
                                 and r["insertion_auc"] > random["insertion_auc"])
    return results, rows

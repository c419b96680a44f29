"""Attribution methods beyond the raw gradient, as plain numpy around one gradient routine.

Each gradient method is split into what it feeds the network and how it combines the
gradients it gets back, so that the copies of every image go through the network in full
batches (``analysis.gradients.input_gradients``) and each piece is testable alone:

- Grad-CAM (Selvaraju et al. 2017) from the Grad-CAM layer's output A and d score / d A,
  which the saliency pass already computes;
- SmoothGrad (Smilkov et al. 2017): the mean gradient over noisy copies;
- Integrated Gradients (Sundararajan et al. 2017): the path integral of the gradient from
  a baseline, by a quadrature rule named as in Captum.

Attributions are with respect to the normalized network input, as the saliency map is.
"""

from __future__ import annotations

import zlib

import numpy as np

from .. import images

METHODS = ("saliency", "gradcam", "smoothgrad", "integrated_gradients")
DEFAULT_METHODS = ("saliency", "gradcam")
IG_RULES = ("riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle", "gausslegendre")
IG_BASELINES = ("black", "mean")


# --- maps: attribution -> (H, W) ------------------------------------------------------------

def gradient_map(attribution: np.ndarray) -> np.ndarray:
    """(B, 3, H, W) -> (B, H, W): max over colour channels of |attribution| (the saliency
    map's rule, Simonyan et al. 2013; also SmoothGrad's)."""
    return np.abs(attribution).max(axis=1).astype(np.float32)


def pixel_sum_map(attribution: np.ndarray) -> np.ndarray:
    """(B, 3, H, W) -> (B, H, W): |sum over colour channels|: a pixel's share of the
    completeness sum, for Integrated Gradients."""
    return np.abs(attribution.astype(np.float64).sum(axis=1)).astype(np.float32)


# --- Grad-CAM -------------------------------------------------------------------------------

def gradcam(features: np.ndarray, gradients: np.ndarray, size: int = images.CROP) -> np.ndarray:
    """Grad-CAM maps (B, size, size) float32 from the Grad-CAM layer's output A (B, K, u, v)
    and d logit[target] / d A of the same shape: ReLU(sum_k alpha_k A_k) with alpha_k the
    spatial mean of the k-th channel's gradient, upsampled bilinearly to size x size."""
    alpha = gradients.astype(np.float64).mean(axis=(2, 3))            # (B, K)
    cam = np.einsum("bk,bkuv->buv", alpha, features.astype(np.float64))
    cam = np.maximum(cam, 0.0)
    return np.stack([upsample_bilinear(c, size) for c in cam]).astype(np.float32)


def upsample_bilinear(values: np.ndarray, size: int) -> np.ndarray:
    """(u, v) -> (size, size) bilinear, pixel centres aligned (half-pixel offsets) and the
    border clamped: what OpenCV's INTER_LINEAR and PyTorch's align_corners=False do, so
    the maps look as in pytorch-grad-cam."""
    def axis_weights(n_in: int):
        centres = (np.arange(size) + 0.5) * n_in / size - 0.5
        centres = np.clip(centres, 0, n_in - 1)
        low = np.floor(centres).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        frac = centres - low
        matrix = np.zeros((size, n_in))
        np.add.at(matrix, (np.arange(size), low), 1 - frac)
        np.add.at(matrix, (np.arange(size), high), frac)
        return matrix

    rows, cols = axis_weights(values.shape[0]), axis_weights(values.shape[1])
    return rows @ values.astype(np.float64) @ cols.T


# --- SmoothGrad -----------------------------------------------------------------------------

def image_seed(seed: int, image_id: str) -> list[int]:
    """A seed for one image's random draws that depends on the run's seed and the image
    alone: the same copies whatever the batch, the order or the machine."""
    return [seed, zlib.crc32(image_id.encode("utf-8"))]


def smoothgrad_inputs(image: np.ndarray, samples: int, noise: float, seed) -> np.ndarray:
    """(samples, 3, H, W) float32 noisy copies of one normalized input (3, H, W): Gaussian
    noise of standard deviation noise * (max - min of the input), as in Smilkov et al."""
    sigma = noise * float(image.max() - image.min())
    # Drawn in float32, the network's precision: half the time of float64 draws, which
    # were 1 % of SmoothGrad's cost on vgg19.
    draws = np.random.default_rng(seed).standard_normal((samples,) + image.shape, dtype=np.float32)
    draws *= np.float32(sigma)
    draws += image[None].astype(np.float32)
    return draws.astype(image.dtype, copy=False)


def smoothgrad(gradients: np.ndarray) -> np.ndarray:
    """(samples, 3, H, W) gradients of one image's copies -> their mean (3, H, W)."""
    return gradients.astype(np.float64).mean(axis=0).astype(np.float32)


# --- Integrated Gradients -------------------------------------------------------------------

def ig_baseline(kind: str, size: int = images.CROP, dtype=np.float32) -> np.ndarray:
    """The baseline x' as a normalized input (3, size, size): "black" is the all-black
    photo after normalization ((0 - mean) / std per channel); "mean" is the photo whose
    every pixel is the ImageNet mean colour, which normalizes to 0."""
    if kind == "black":
        return images.normalize(np.zeros((size, size, 3), np.uint8)).astype(dtype)
    if kind == "mean":
        return np.zeros((3, size, size), dtype)
    raise ValueError(f"unknown IG baseline {kind!r}")


def ig_alphas_and_weights(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Points alpha in [0, 1] and weights of the quadrature rule, as Captum's
    ``approximation_parameters`` defines them: the integral of f over [0, 1] is about
    sum(weights * f(alphas))."""
    if steps < 1 or (rule == "riemann_trapezoid" and steps < 2):
        raise ValueError(f"{rule} needs more than {steps} step(s)")
    if rule == "riemann_trapezoid":
        alphas = np.linspace(0.0, 1.0, steps)
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
    elif rule in ("riemann_left", "riemann_right", "riemann_middle"):
        offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
        alphas = (np.arange(steps) + offset) / steps
        weights = np.full(steps, 1.0 / steps)
    elif rule == "gausslegendre":
        nodes, node_weights = np.polynomial.legendre.leggauss(steps)
        alphas, weights = (nodes + 1) / 2, node_weights / 2
    else:
        raise ValueError(f"unknown IG rule {rule!r}; choose from {', '.join(IG_RULES)}")
    return alphas, weights


def ig_inputs(image: np.ndarray, baseline: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """(steps, 3, H, W) points x' + alpha (x - x') on the straight path."""
    delta = (image - baseline).astype(np.float64)
    return (baseline[None] + alphas[:, None, None, None] * delta[None]).astype(image.dtype)


def integrated_gradients(image: np.ndarray, baseline: np.ndarray, gradients: np.ndarray,
                         weights: np.ndarray) -> np.ndarray:
    """(x - x') * sum_i weights_i * gradient at path point i: (3, H, W) float32."""
    summed = np.tensordot(weights, gradients.astype(np.float64), axes=1)
    return ((image - baseline).astype(np.float64) * summed).astype(np.float32)


def completeness_gap(attribution: np.ndarray, logit: float, baseline_logit: float) -> float:
    """|sum(attribution) - (F(x) - F(x'))| / |F(x) - F(x')|: 0 for an exact integral. NaN
    when the logit does not change along the path."""
    change = float(logit) - float(baseline_logit)
    if change == 0 or not np.isfinite(change):
        return float("nan")
    return abs(float(attribution.sum(dtype=np.float64)) - change) / abs(change)

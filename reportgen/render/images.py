"""Pictures from arrays: colormaps, overlays and grids (numpy + PIL, no pyplot state).

Every function returns a PIL image; ``save_png`` writes it deterministically.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

DISPLAY_PERCENTILE = 99.0   # saliency display: this percentile maps to full intensity
OVERLAY_ALPHA = 0.5
TILE = 56                   # activation grid tile size (224/4 for VGG, 112/2 for ResNet)


def display_scale(saliency: np.ndarray) -> np.ndarray:
    """Saliency -> [0, 1] for display only: divided by its 99th percentile and clipped, so
    a handful of extreme pixels do not leave the rest black."""
    top = float(np.percentile(saliency, DISPLAY_PERCENTILE))
    if not math.isfinite(top) or top <= 0:
        top = float(saliency.max())
    if top <= 0:
        return np.zeros_like(saliency, dtype=np.float32)
    return np.clip(saliency / top, 0.0, 1.0).astype(np.float32)


def colormap(values01: np.ndarray, name: str) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8 through a matplotlib colormap."""
    rgba = matplotlib.colormaps[name](values01, bytes=True)
    return rgba[..., :3]


def saliency_gray(saliency: np.ndarray) -> Image.Image:
    return Image.fromarray(np.rint(display_scale(saliency) * 255).astype(np.uint8), "L")


def saliency_overlay(crop: np.ndarray, saliency: np.ndarray) -> Image.Image:
    """Jet colormap of the display-scaled map blended half-and-half with the photo."""
    heat = colormap(display_scale(saliency), "jet").astype(np.float32)
    blended = (1 - OVERLAY_ALPHA) * crop.astype(np.float32) + OVERLAY_ALPHA * heat
    return Image.fromarray(np.rint(blended).astype(np.uint8), "RGB")


def grid(tiles: list[Image.Image], columns: int, gap: int = 2,
         background=(255, 255, 255)) -> Image.Image:
    """Tiles of equal size in a grid, row-major, separated by `gap` pixels."""
    width, height = tiles[0].size
    rows = math.ceil(len(tiles) / columns)
    out = Image.new("RGB", (columns * width + (columns - 1) * gap,
                            rows * height + (rows - 1) * gap), background)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out.paste(tile.convert("RGB"), (c * (width + gap), r * (height + gap)))
    return out


def activation_grid(conv1: np.ndarray, columns: int = 8, centre_only: bool = False) -> Image.Image:
    """(64, h, w) first-conv output -> 8x8 grid of |output| (viridis), tiles resampled to
    TILE pixels by area averaging. Each channel is scaled from its own 1st to 99th
    percentile: the zero-padded border would otherwise set the range and flatten the
    texture inside (most visible on the noise image).

    centre_only: show each channel's central TILE x TILE pixels at full resolution instead
    of the whole channel reduced; for pixel-level texture (noise), which averaging erases.
    """
    if centre_only:
        h, w = conv1.shape[1:]
        top, left = (h - TILE) // 2, (w - TILE) // 2
        conv1 = conv1[:, top:top + TILE, left:left + TILE]
    tiles = []
    for channel in np.abs(conv1.astype(np.float32)):
        low, high = np.percentile(channel, [1, 99])
        scaled = np.clip((channel - low) / (high - low), 0, 1) if high > low else np.zeros_like(channel)
        tile = Image.fromarray(colormap(scaled, "viridis"), "RGB")
        tiles.append(tile.resize((TILE, TILE), Image.BOX))
    return grid(tiles, columns)


def filter_grid(weights: np.ndarray, columns: int = 8, tile: int = 32) -> Image.Image:
    """(64, 3, k, k) first-conv weights -> grid of RGB filters, each min-max scaled on its
    own, enlarged by nearest neighbour (no blurring of the k x k pixels)."""
    k = weights.shape[-1]
    factor = max(1, tile // k)
    tiles = []
    for w in weights.astype(np.float64):
        low, high = w.min(), w.max()
        scaled = (w - low) / (high - low) if high > low else np.zeros_like(w)
        rgb = np.rint(scaled.transpose(1, 2, 0) * 255).astype(np.uint8)
        tiles.append(Image.fromarray(rgb, "RGB").resize((k * factor, k * factor), Image.NEAREST))
    return grid(tiles, columns, gap=3)


def save_png(image: Image.Image, path: Path) -> None:
    """Deterministic PNG (Pillow writes no timestamp); optimize keeps reports small."""
    image.save(path, format="PNG", optimize=True)

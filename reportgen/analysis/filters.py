"""Conv layer weight statistics: the table the notebook printed, one row per layer."""

from __future__ import annotations

import numpy as np


def weight_stats(name: str, weight: np.ndarray) -> dict:
    """name, shape, parameter count, mean, std, min, max of one conv weight tensor."""
    w = weight.astype(np.float64)
    return {
        "name": name,
        "shape": list(weight.shape),
        "count": int(weight.size),
        "mean": float(w.mean()),
        "std": float(w.std()),
        "min": float(w.min()),
        "max": float(w.max()),
    }

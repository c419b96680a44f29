"""Which images get pages of their own: every one up to --pages, beyond that a choice made
from the numbers, so that a report over 10,000 images stays a report someone reads.

The choice: a third where the models disagree most and a third where they agree most (by
each image's mean Spearman correlation between the saliency maps of every pair of
models), the rest a seeded random sample of the others, so that the typical image is
seen too. Every image stays in results.json and results.csv.
"""

from __future__ import annotations

import math

import numpy as np

from .records import ImageResult

DEFAULT_PAGES = 50
REASONS = {
    "all": "every image",
    "disagree": "the models disagree most",
    "agree": "the models agree most",
    "random": "drawn at random",
}


def mean_agreement(image: ImageResult, method: str = "saliency") -> float:
    """Mean Spearman over the model pairs of one image's maps; NaN with one model."""
    values = [m["spearman"] for m in image.agreement.get(method, {}).values()
              if m.get("spearman") is not None and math.isfinite(m["spearman"])]
    return float(np.mean(values)) if values else math.nan


def choose_pages(images: list[ImageResult], limit: int, seed: int) -> dict:
    """{"limit", "of" (processed images), "chosen": {image id: {"reason", "agreement"}},
    "counts": {reason: n}}. Deterministic for the same records and seed; ties are broken by
    the images' order."""
    ok = [image for image in images if image.status == "ok"]
    scores = {image.id: mean_agreement(image) for image in ok}
    chosen: dict[str, dict] = {}
    if len(ok) <= limit:
        chosen = {image.id: "all" for image in ok}
    else:
        ranked = [image.id for image in ok if math.isfinite(scores[image.id])]
        ranked.sort(key=lambda image_id: scores[image_id])      # stable: ties keep their order
        third = limit // 3 if ranked else 0
        for image_id in ranked[:third]:
            chosen[image_id] = "disagree"
        for image_id in reversed(ranked[len(ranked) - third:]):
            chosen.setdefault(image_id, "agree")
        rest = [image.id for image in ok if image.id not in chosen]
        draw = np.random.default_rng([seed, 50]).choice(len(rest), limit - len(chosen), replace=False)
        for index in sorted(draw):
            chosen[rest[index]] = "random"
    counts = {reason: sum(r == reason for r in chosen.values()) for reason in REASONS}
    return {"limit": limit, "of": len(ok), "seed": seed,
            "counts": {reason: n for reason, n in counts.items() if n},
            "chosen": {image_id: {"reason": reason, "agreement": _finite(scores[image_id])}
                       for image_id, reason in chosen.items()}}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None

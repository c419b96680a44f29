"""Which images get pages: every one up to --pages, beyond that a choice from the numbers."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.records import ImageResult
from reportgen.selection import choose_pages, mean_agreement


def image(n: int, spearmans: list[float]) -> ImageResult:
    pairs = {f"m{a}|m{a + 1}": {"spearman": s, "iou_top5": 0.5} for a, s in enumerate(spearmans)}
    return ImageResult(f"img{n:05d}", f"img{n}.jpg", "ok", agreement={"saliency": pairs})


def test_up_to_the_limit_every_image_has_its_page():
    images = [image(n, [0.5]) for n in range(10)]
    pages = choose_pages(images + [ImageResult("bad", "bad.jpg", "skipped", "empty")], 10, seed=0)
    assert list(pages["chosen"]) == [i.id for i in images]
    assert pages["counts"] == {"all": 10} and pages["of"] == 10


def test_beyond_the_limit_the_extremes_and_a_seeded_sample():
    rng = np.random.default_rng(1)
    scores = rng.uniform(-1, 1, size=(1000, 3))
    images = [image(n, list(s)) for n, s in enumerate(scores)]
    pages = choose_pages(images, 50, seed=0)
    chosen = pages["chosen"]
    assert len(chosen) == 50 and pages["counts"] == {"disagree": 16, "agree": 16, "random": 18}
    means = scores.mean(axis=1)
    order = np.argsort(means, kind="stable")
    assert {i for i, c in chosen.items() if c["reason"] == "disagree"} == {f"img{n:05d}" for n in order[:16]}
    assert {i for i, c in chosen.items() if c["reason"] == "agree"} == {f"img{n:05d}" for n in order[-16:]}
    for image_id, c in chosen.items():
        assert c["agreement"] == pytest.approx(means[int(image_id[3:])])
    # Seeded: the same records and seed choose the same pages; another seed, another sample.
    assert choose_pages(images, 50, seed=0) == pages
    other = choose_pages(images, 50, seed=1)["chosen"]
    assert {i for i, c in other.items() if c["reason"] == "random"} != \
        {i for i, c in chosen.items() if c["reason"] == "random"}


def test_one_model_has_no_agreement_so_every_page_is_drawn_at_random():
    images = [ImageResult(f"i{n}", f"i{n}.jpg", "ok", agreement={"saliency": {}}) for n in range(100)]
    pages = choose_pages(images, 5, seed=0)
    assert pages["counts"] == {"random": 5}
    assert all(c["agreement"] is None for c in pages["chosen"].values())
    assert np.isnan(mean_agreement(images[0]))

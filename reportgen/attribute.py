"""Every attribution method of a run for one batch of images through one model, and the
checks on the maps (faithfulness, sanity): numpy arrays in, numpy arrays and numbers out.

The saliency pass (``analysis.gradients.forward_backward``) already gives what saliency
and Grad-CAM need; SmoothGrad's and Integrated Gradients' copies of each image go through
the network in full batches of ``batch_size`` rows.
"""

from __future__ import annotations

import time

import numpy as np

from . import models
from .analysis import attribution, compare, faithfulness
from .method_settings import FORWARD_COST, MethodSettings  # noqa: F401  (re-exported)
from .analysis.gradients import BatchGradients, forward_backward, input_gradients, predict, softmax
from .analysis.saliency import saliency_maps

def batch_attributions(net, inputs: np.ndarray, out: BatchGradients, image_ids: list[str],
                       settings: MethodSettings, batch_size: int,
                       baseline_logits: np.ndarray | None,
                       seconds: dict[str, float] | None = None,
                       on_chunk=None) -> tuple[dict, dict, dict]:
    """For a batch (B images) already through the saliency pass `out`:
    (attributions: method -> (B, 3, H, W), or (B, H, W) for Grad-CAM;
     maps: method -> (B, H, W) float32;
     extras: {"completeness_gap": (B,)} when IG ran).
    seconds: each method's time is added under its name; on_chunk(rows, method) is called
    after each chunk of copies through the network (progress)."""
    clock = _Clock(seconds)
    targets = out.targets
    attributions = {"saliency": out.gradients}
    maps = {"saliency": saliency_maps(out.gradients)}
    extras = {}
    clock.lap("saliency")
    if "gradcam" in settings.methods:
        maps["gradcam"] = attribution.gradcam(out.cam_features, out.cam_gradients)
        attributions["gradcam"] = maps["gradcam"]
        clock.lap("gradcam")
    if "smoothgrad" in settings.methods:
        n = settings.smoothgrad_samples
        copies = np.concatenate([
            attribution.smoothgrad_inputs(inputs[j], n, settings.smoothgrad_noise,
                                          attribution.image_seed(settings.seed, image_ids[j]))
            for j in range(len(inputs))])
        _, gradients = input_gradients(net, copies, np.repeat(targets, n), batch_size,
                                       _for_method(on_chunk, "smoothgrad"))
        smooth = np.stack([attribution.smoothgrad(gradients[j * n:(j + 1) * n]) for j in range(len(inputs))])
        attributions["smoothgrad"] = smooth
        maps["smoothgrad"] = attribution.gradient_map(smooth)
        clock.lap("smoothgrad")
    if "integrated_gradients" in settings.methods:
        baseline = attribution.ig_baseline(settings.ig_baseline, inputs.shape[-1], inputs.dtype)
        steps = len(settings.ig_alphas)
        path = np.concatenate([attribution.ig_inputs(x, baseline, settings.ig_alphas) for x in inputs])
        _, gradients = input_gradients(net, path, np.repeat(targets, steps), batch_size,
                                       _for_method(on_chunk, "integrated_gradients"))
        ig = np.stack([attribution.integrated_gradients(inputs[j], baseline,
                                                        gradients[j * steps:(j + 1) * steps],
                                                        settings.ig_weights)
                       for j in range(len(inputs))])
        attributions["integrated_gradients"] = ig
        maps["integrated_gradients"] = attribution.pixel_sum_map(ig)
        extras["completeness_gap"] = np.array([
            attribution.completeness_gap(ig[j], out.logits[j, targets[j]], baseline_logits[targets[j]])
            for j in range(len(inputs))])
        clock.lap("integrated_gradients")
    return attributions, maps, extras


def _for_method(on_chunk, method: str):
    return (lambda rows: on_chunk(rows, method)) if on_chunk else None


class _Clock:
    """Adds the time since the last lap to seconds[name]."""

    def __init__(self, seconds: dict[str, float] | None):
        self.seconds = seconds
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.seconds is not None:
            self.seconds[name] = self.seconds.get(name, 0.0) + now - self.last
        self.last = now


def baseline_logits(net, settings: MethodSettings, like: np.ndarray) -> np.ndarray | None:
    """The IG baseline's logits (1000,), the same for every image: one forward per model.
    like: the inputs (N, 3, H, W), whose size and dtype the baseline takes."""
    if "integrated_gradients" not in settings.methods:
        return None
    baseline = attribution.ig_baseline(settings.ig_baseline, like.shape[-1], like.dtype)
    return predict(net, baseline[None], 1)[0]


def image_faithfulness(net, image: np.ndarray, maps: dict[str, np.ndarray], target: int,
                       p_image: float, image_id: str, settings: MethodSettings,
                       batch_size: int) -> tuple[dict, int]:
    """Deletion and insertion curves of each map of one image, and of a random pixel order
    seeded by the run's seed and the image (the same order for every model)."""
    def target_probability(batch: np.ndarray) -> np.ndarray:
        return softmax(predict(net, batch, batch_size))[:, target]

    return faithfulness.deletion_insertion(
        image, maps, attribution.image_seed(settings.seed, image_id), p_image,
        target_probability, batch_size)


def map_similarity(original: np.ndarray, randomized: np.ndarray) -> dict[str, float]:
    """How alike a map stays when weights are randomized (Adebayo et al. 2018): Spearman
    rank correlation, and SSIM of the two maps each scaled to [0, 1] by its own range."""
    from skimage.metrics import structural_similarity

    def unit(values):
        values = values.astype(np.float64)
        span = values.max() - values.min()
        return (values - values.min()) / span if span > 0 else np.zeros_like(values)

    ssim = structural_similarity(unit(original), unit(randomized), data_range=1.0,
                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    return {"spearman": compare.spearman(original, randomized), "ssim": float(ssim)}


def cascading_randomization(net, inputs: np.ndarray, originals: list[tuple[str, int, int, dict]],
                            settings: MethodSettings, batch_size: int, progress,
                            model: str) -> dict:
    """Adebayo et al.'s cascading randomization on the sanity images: re-initialize the
    network stage by stage from the logits down (models.randomization_stages), keeping what
    was randomized before, recompute every method's maps for the same images and classes,
    and compare each with the map from the trained network. Changes `net`'s weights for
    good: call it last.

    originals: (image id, row in `inputs`, target class, {method: map}) per sanity image;
    SmoothGrad draws the same noise for an image as in the run (it is seeded by the id).
    Returns {"images": n, "stages": [names], "methods": {method: [per stage:
    {"stage", "spearman": [per image], "ssim": [per image]}]}}."""
    ids = [image_id for image_id, _, _, _ in originals]
    rows = [row for _, row, _, _ in originals]
    targets = np.array([target for _, _, target, _ in originals], dtype=np.int64)
    batch = np.ascontiguousarray(inputs[rows])
    stages = models.randomization_stages(net)
    result = {"images": len(rows), "stages": [name for name, _ in stages],
              "methods": {m: [] for m in settings.methods}}
    for index, (stage, blocks) in enumerate(stages):
        models.randomize_blocks(blocks, np.random.default_rng([settings.seed, 7919, index]))
        ig_logits = baseline_logits(net, settings, batch)
        maps = {m: [] for m in settings.methods}
        for begin in range(0, len(rows), batch_size):
            part = batch[begin:begin + batch_size]
            out = forward_backward(net, part, targets[begin:begin + batch_size], conv1_full=False)
            _, part_maps, _ = batch_attributions(net, part, out, ids[begin:begin + batch_size],
                                                 settings, batch_size, ig_logits)
            for m in settings.methods:
                maps[m].extend(part_maps[m])
        for m in settings.methods:
            similarity = [map_similarity(original[m], new) for (_, _, _, original), new in zip(originals, maps[m])]
            result["methods"][m].append({"stage": stage,
                                         "spearman": [s["spearman"] for s in similarity],
                                         "ssim": [s["ssim"] for s in similarity]})
        progress.advance(len(rows) * settings.gradient_rows(),
                         f"{model}: sanity check: {stage} randomized ({index + 1}/{len(stages)})")
    return result

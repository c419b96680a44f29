"""Which attribution methods and checks a run computes, with their parameters: one frozen
MethodSettings, built by the CLI (flags or config file) and read by the computation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .analysis import attribution, faithfulness

CHECKS = ("faithfulness", "sanity")
# What a forward alone costs, in units of one forward + input backward (benchmark
# --methods-cost: 0.45 to 0.53 on the three networks); progress estimates use it.
FORWARD_COST = 0.5


@dataclass(frozen=True)
class MethodSettings:
    """seed: the run's seed (RunConfig.seed), for SmoothGrad's noise, the random pixel
    orders and the sanity check's weights."""

    methods: tuple[str, ...] = attribution.DEFAULT_METHODS
    smoothgrad_samples: int = 25
    smoothgrad_noise: float = 0.15
    ig_steps: int = 32
    ig_rule: str = "riemann_trapezoid"
    ig_baseline: str = "black"
    checks: tuple[str, ...] = ()
    sanity_images: int = 4
    seed: int = 0
    ig_alphas: np.ndarray = field(init=False, repr=False, compare=False)
    ig_weights: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        alphas, weights = attribution.ig_alphas_and_weights(self.ig_steps, self.ig_rule)
        object.__setattr__(self, "ig_alphas", alphas)
        object.__setattr__(self, "ig_weights", weights)

    def parameters(self, gradcam_layers: dict[str, str]) -> dict[str, dict]:
        """The results.json `methods` block: every parameter each method used.
        gradcam_layers: model -> the Grad-CAM layer's path in its Gluon network."""
        block = {"saliency": {"map": "max over colour channels of |gradient|"}}
        if "gradcam" in self.methods:
            block["gradcam"] = {"layer": dict(gradcam_layers),
                                "upsampling": "bilinear, half-pixel centres, to 224 x 224"}
        if "smoothgrad" in self.methods:
            block["smoothgrad"] = {"samples": self.smoothgrad_samples, "noise": self.smoothgrad_noise,
                                   "noise_sigma": "noise x (max - min) of each normalized input",
                                   "seed": self.seed,
                                   "map": "max over colour channels of |mean gradient|"}
        if "integrated_gradients" in self.methods:
            block["integrated_gradients"] = {
                "steps": self.ig_steps, "rule": self.ig_rule, "baseline": self.ig_baseline,
                "baseline_meaning": {"black": "the all-black image, after normalization",
                                     "mean": "the ImageNet mean colour (0 after normalization)"}[self.ig_baseline],
                "map": "|sum over colour channels of the attribution|",
                "completeness_gap_flag": 0.05}
        return block

    def gradient_rows(self) -> int:
        """Forward + backward passes per image and model for the methods."""
        rows = 1
        if "smoothgrad" in self.methods:
            rows += self.smoothgrad_samples
        if "integrated_gradients" in self.methods:
            rows += self.ig_steps
        return rows

    def rows_per_image(self) -> float:
        """Network work per image and model, in forward + backward units (for progress)."""
        rows = float(self.gradient_rows())
        if "faithfulness" in self.checks:   # the baseline, then each map's and random's curves
            rows += FORWARD_COST * (1 + 2 * (faithfulness.STEPS - 1) * (len(self.methods) + 1))
        return rows

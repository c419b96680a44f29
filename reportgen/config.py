"""One frozen RunConfig holds every setting of a run; the CLI only builds it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("html", "pdf")


@dataclass(frozen=True)
class RunConfig:
    inputs: tuple[Path, ...]
    output_dir: Path
    models: tuple[str, ...]
    weights: str = "pretrained"                 # "pretrained" | "untrained"
    params: dict[str, Path] = field(default_factory=dict)  # model name -> .params file
    model_root: Path | None = None
    target: str = "top1"                        # "top1", a class id, or a class name
    batch_size: int = 4
    seed: int = 0
    title: str = "CNN visualization: VGG vs ResNet"
    author: str = ""
    formats: tuple[str, ...] = FORMATS
    save_arrays: bool = False
    quiet: bool = False
    command_line: tuple[str, ...] = ()
    # Attribution methods and checks (attribute.MethodSettings)
    methods: tuple[str, ...] = ("saliency", "gradcam")
    smoothgrad_samples: int = 25
    smoothgrad_noise: float = 0.15
    ig_steps: int = 32
    ig_rule: str = "riemann_trapezoid"
    ig_baseline: str = "black"
    checks: tuple[str, ...] = ()
    sanity_images: int = 4

    def method_settings(self):
        from .attribute import MethodSettings

        return MethodSettings(methods=self.methods, smoothgrad_samples=self.smoothgrad_samples,
                              smoothgrad_noise=self.smoothgrad_noise, ig_steps=self.ig_steps,
                              ig_rule=self.ig_rule, ig_baseline=self.ig_baseline,
                              checks=self.checks, sanity_images=self.sanity_images, seed=self.seed)

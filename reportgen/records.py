"""What the analysis produces and the rendering consumes: plain, frozen data.

Asset paths are relative to the report folder (e.g. ``assets/cat-1a2b3c4d__vgg19_overlay.jpg``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Prediction:
    class_id: int
    label: str
    probability: float


@dataclass(frozen=True)
class ImageModelResult:
    """One image through one model."""

    model: str
    top5: tuple[Prediction, ...]
    target: Prediction                 # the class whose logit was differentiated
    target_logit: float
    saliency: dict[str, float]         # analysis.saliency.saliency_stats
    saliency_asset: str                # grayscale map
    overlay_asset: str                 # jet overlay on the crop
    conv1_asset: str                   # 8x8 grid of |first conv output|


@dataclass(frozen=True)
class ImageResult:
    id: str
    path: str                          # as the user named it (or found it in a folder)
    status: str                        # "ok" | "skipped"
    reason: str = ""                   # why it was skipped
    sha256: str | None = None
    original_size: tuple[int, int] | None = None
    notes: tuple[str, ...] = ()
    shown: str = ""                    # how the report names it (images.shown_path)
    crop_asset: str | None = None
    models: dict[str, ImageModelResult] = field(default_factory=dict)
    agreement: dict[str, dict[str, float]] = field(default_factory=dict)  # "a|b" -> metrics


@dataclass(frozen=True)
class ModelResult:
    name: str
    zoo_name: str
    family: str
    weights: dict                      # WeightSource as a dict
    filters_asset: str
    filter_size: int
    noise_conv1_asset: str
    conv1_shape: tuple[int, ...]       # (64, h, w)
    conv_layers: tuple[dict, ...]      # analysis.filters.weight_stats rows
    seconds: dict[str, float]          # load, network, figures


@dataclass(frozen=True)
class Summary:
    """Over the whole image set."""

    per_model: dict[str, dict[str, dict]]   # model -> metric -> analysis.compare.summarize
    per_pair: dict[str, dict[str, dict]]    # "a|b" -> metric -> summarize
    top1_agreement: dict[str, dict]         # "a|b" -> {"agree": n, "of": n, "rate": r}
    all_top1_agree: dict                    # {"agree": n, "of": n, "rate": r}


@dataclass(frozen=True)
class RunResult:
    title: str
    author: str
    created: str                       # ISO 8601, local time with offset
    run: dict                          # versions, command line, seed, device, timings
    target_mode: str                   # "top1" or "class 281 (tabby)"
    weights_meaningful: bool           # False when any model is untrained
    models: tuple[ModelResult, ...]
    images: tuple[ImageResult, ...]
    noise_crop_asset: str
    summary: Summary
    charts: dict[str, str]             # chart name -> asset
    warnings: tuple[str, ...] = ()

    @property
    def processed(self) -> tuple[ImageResult, ...]:
        return tuple(i for i in self.images if i.status == "ok")

    @property
    def skipped(self) -> tuple[ImageResult, ...]:
        return tuple(i for i in self.images if i.status != "ok")

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
class MethodResult:
    """One attribution method's map of one image by one model."""

    stats: dict[str, float]            # analysis.saliency.saliency_stats of the map
    overlay_asset: str                 # jet overlay on the crop
    map_asset: str | None = None       # grayscale map (saliency)
    completeness_gap: float | None = None   # Integrated Gradients only
    faithfulness: dict | None = None   # analysis.faithfulness curves, areas, beats_random


@dataclass(frozen=True)
class ImageModelResult:
    """One image through one model."""

    model: str
    top5: tuple[Prediction, ...]
    target: Prediction                 # the class whose logit was differentiated
    target_logit: float
    methods: dict[str, MethodResult]   # method name -> its map's numbers and figures
    conv1_asset: str                   # 8x8 grid of |first conv output|
    random_order: dict | None = None   # faithfulness curves of a random pixel order


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
    agreement: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # method -> "a|b" -> metrics


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
    seconds: dict[str, float]          # load, network, figures, each method and check
    gradcam_layer: str = ""            # structural path of the Grad-CAM layer, e.g. features.35
    sanity: dict | None = None         # attribute.cascading_randomization


@dataclass(frozen=True)
class Summary:
    """Over the whole image set."""

    per_model: dict[str, dict[str, dict[str, dict]]]  # method -> model -> metric -> compare.summarize
    per_pair: dict[str, dict[str, dict[str, dict]]]   # method -> "a|b" -> metric -> summarize
    top1_agreement: dict[str, dict]         # "a|b" -> {"agree": n, "of": n, "rate": r}
    all_top1_agree: dict                    # {"agree": n, "of": n, "rate": r}
    faithfulness: dict = field(default_factory=dict)  # method -> model -> metric -> summarize
    completeness_gap: dict = field(default_factory=dict)  # model -> summarize, and "flagged"
    sanity: dict = field(default_factory=dict)        # method -> model -> per stage means
    findings: tuple[str, ...] = ()          # sentences generated from the numbers


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
    methods: dict = field(default_factory=dict)   # method -> parameters used (MethodSettings)
    checks: tuple[str, ...] = ()       # "faithfulness", "sanity": the checks that ran
    pages: dict = field(default_factory=dict)     # selection.choose_pages: which images get pages
    drift: dict | None = None          # drift.compare_with: changes since the previous report
    image_drift: dict = field(default_factory=dict)   # image id -> model -> its drift entry

    @property
    def processed(self) -> tuple[ImageResult, ...]:
        return tuple(i for i in self.images if i.status == "ok")

    @property
    def skipped(self) -> tuple[ImageResult, ...]:
        return tuple(i for i in self.images if i.status != "ok")

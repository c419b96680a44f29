"""A RunResult of any size without any network: seeded numbers in plain records, and the
figure files the rendering needs (one small picture, copied). For the render-at-scale test
and benchmark: what the report does with 10,000 images, in seconds."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from reportgen import selection
from reportgen.analysis import compare
from reportgen.method_settings import MethodSettings
from reportgen.records import (ImageModelResult, ImageResult, MethodResult, ModelResult,
                               Prediction, RunResult)
from reportgen.summary import compare_models

MODELS = (("vgg19", "VGG"), ("vgg16", "VGG"), ("resnet152", "ResNet"))
METHODS = ("saliency", "gradcam")


def synthetic_result(count: int, root: Path, pages: int = 50, seed: int = 0) -> RunResult:
    """`count` processed images x three models, saliency and Grad-CAM; figure files are
    written under root/assets for what the PDF shows (the chosen images, the models)."""
    rng = np.random.default_rng(seed)
    (root / "assets").mkdir(parents=True, exist_ok=True)
    picture = root / "assets" / "synthetic.png"
    Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8), "RGB").save(picture)
    names = [name for name, _ in MODELS]
    pairs = [f"{a}|{b}" for a, b in compare.model_pairs(names)]
    images = []
    for n in range(count):
        image_id = f"synthetic-{n:05d}"
        per_model = {}
        for name in names:
            stem = f"assets/{image_id}__{name}"
            classes = rng.choice(1000, 5, replace=False)
            probabilities = np.sort(rng.dirichlet(np.ones(6)))[::-1][:5]
            methods = {method: MethodResult(
                stats={"max": float(rng.uniform(0.01, 1)), "mean": float(rng.uniform(0, 0.01)),
                       "concentration_top5": float(rng.uniform(0.05, 0.6)),
                       "edge_share_top20": float(rng.uniform(0.1, 0.6))},
                overlay_asset=f"{stem}{'' if method == 'saliency' else '_' + method}_overlay.jpg",
                map_asset=f"{stem}_saliency.png" if method == "saliency" else None)
                for method in METHODS}
            top5 = tuple(Prediction(int(c), f"class {int(c)}", float(p)) for c, p in zip(classes, probabilities))
            per_model[name] = ImageModelResult(model=name, top5=top5, target=top5[0],
                                               target_logit=float(rng.normal()), methods=methods,
                                               conv1_asset=f"{stem}_conv1.jpg")
        agreement = {method: {pair: {"spearman": float(rng.uniform(-0.2, 0.9)),
                                     "iou_top5": float(rng.uniform(0, 0.5))} for pair in pairs}
                     for method in METHODS}
        images.append(ImageResult(image_id, f"photos/{image_id}.jpg", "ok", sha256="0" * 64,
                                  original_size=(640, 480), shown=f"photos/{image_id}.jpg",
                                  crop_asset=f"assets/{image_id}__crop.png", models=per_model,
                                  agreement=agreement))
    models = [ModelResult(name=name, zoo_name=name, family=family,
                          weights={"kind": "untrained", "path": None, "sha1": None, "seed": seed},
                          filters_asset=f"assets/model__{name}__filters.png", filter_size=3,
                          noise_conv1_asset=f"assets/noise__{name}__conv1.jpg", conv1_shape=(64, 112, 112),
                          conv_layers=tuple({"name": f"features.{k}", "shape": [64, 64, 3, 3], "count": 36864,
                                             "mean": 0.001, "std": 0.05 / (k + 1), "min": -0.2, "max": 0.2}
                                            for k in range(13)),
                          seconds={}, gradcam_layer="features.35")
              for name, family in MODELS]
    summary = compare_models(images, models, METHODS)
    chosen = selection.choose_pages(images, pages, seed)
    settings = MethodSettings(methods=METHODS)
    result = RunResult(
        title="Synthetic", author="", created="2026-12-02T00:00:00+00:00",
        run={"reportgen": "0", "mxnet": "1.9.1", "numpy": np.__version__, "python": "3.11",
             "platform": "synthetic", "device": "cpu", "omp_num_threads": "2", "command_line": [],
             "seed": seed, "batch_size": 4, "models": names, "seconds": {"network": 0.0},
             "executor": "serial"},
        target_mode="top1", weights_meaningful=False, models=tuple(models), images=tuple(images),
        noise_crop_asset="assets/noise__crop.png", summary=summary, charts={},
        warnings=(f"untrained weights (synthetic records, seed {seed})",),
        methods=settings.parameters({name: "features.35" for name in names}), pages=chosen)
    for asset in _assets_shown(result):
        if not (root / asset).exists():
            shutil.copyfile(picture, root / asset)
    return replace(result)


def _assets_shown(result: RunResult) -> set[str]:
    """Every figure the report can show: per model, and per image with a page (and the
    crops the HTML's table shows for every image)."""
    assets = {result.noise_crop_asset}
    for model in result.models:
        assets |= {model.filters_asset, model.noise_conv1_asset}
    for image in result.images:
        assets.add(image.crop_asset)
        if image.id in result.pages["chosen"]:
            for r in image.models.values():
                assets.add(r.conv1_asset)
                for method in r.methods.values():
                    assets |= {method.overlay_asset} | ({method.map_asset} if method.map_asset else set())
    return assets

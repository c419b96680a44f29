"""The computation of a run: images -> per model one forward + one input backward per batch
-> plain records and figure files. Knows nothing of HTML.

Memory stays flat in the number of images: preprocessed inputs live in a memory-mapped
scratch file, saliency maps are spooled to scratch files until the comparison reads them,
and only one network is in memory at a time.
"""

from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import imagenet, images, models, weights
from .analysis import compare, filters, saliency
from .analysis.gradients import first_conv_output, forward_backward, softmax
from .errors import InputError
from .progress import Progress
from .records import ImageModelResult, ImageResult, ModelResult, Prediction, Summary
from .render import images as pictures


@dataclass(frozen=True)
class Workspace:
    """The folder a report is assembled in before it is published."""

    root: Path

    @property
    def assets(self) -> Path:
        return self.root / "assets"

    @property
    def arrays(self) -> Path:
        return self.root / "arrays"

    @property
    def scratch(self) -> Path:
        return self.root / ".scratch"

    def create(self, save_arrays: bool) -> None:
        for folder in (self.assets, self.scratch) + ((self.arrays,) if save_arrays else ()):
            folder.mkdir(parents=True, exist_ok=True)


@dataclass
class PreparedImages:
    results: list[ImageResult]        # every input, in order, ok or skipped
    inputs: np.ndarray                # (N_ok, 3, 224, 224) float32 memmap, in order of ok ones
    crops: np.ndarray                 # (N_ok, 224, 224, 3) uint8 memmap
    ok_ids: list[str]


def prepare_images(paths: list[Path], problems: list[tuple[Path, str]], ws: Workspace,
                   progress: Progress, input_roots: list[Path] = ()) -> PreparedImages:
    """Decode every file once; write its crop as an asset and its network input to scratch.
    A file that cannot be used becomes a skipped record with its reason."""
    used_ids: set[str] = set()
    results: list[ImageResult] = []
    inputs = np.lib.format.open_memmap(ws.scratch / "inputs.npy", "w+", np.float32,
                                       (max(1, len(paths)), 3, images.CROP, images.CROP))
    crops = np.lib.format.open_memmap(ws.scratch / "crops.npy", "w+", np.uint8,
                                      (max(1, len(paths)), images.CROP, images.CROP, 3))
    ok_ids = []
    for path in paths:
        image_id = images.image_id(path, used_ids)
        try:
            decoded = images.decode(path)
            digest = images.file_sha256(path)
        except InputError as exc:
            progress.warn(f"reportgen: skipped {exc.message}")
            results.append(ImageResult(image_id, str(path), "skipped", _reason(exc, path),
                                       shown=images.shown_path(path, input_roots)))
            continue
        n = len(ok_ids)
        crops[n] = decoded.crop
        inputs[n] = images.normalize(decoded.crop)
        crop_asset = save_crop(decoded.crop, f"assets/{image_id}__crop.png", ws)
        ok_ids.append(image_id)
        results.append(ImageResult(image_id, str(path), "ok", sha256=digest,
                                   original_size=decoded.original_size, notes=decoded.notes,
                                   shown=images.shown_path(path, input_roots), crop_asset=crop_asset))
    for path, reason in problems:
        progress.warn(f"reportgen: skipped {path}: {reason}")
        results.append(ImageResult(images.image_id(path, used_ids), str(path), "skipped", reason,
                                   shown=images.shown_path(path, input_roots)))
    n_ok = len(ok_ids)
    return PreparedImages(results, inputs[:n_ok], crops[:n_ok], ok_ids)


def save_crop(crop: np.ndarray, asset: str, ws: Workspace) -> str:
    """Write a uint8 (224, 224, 3) crop as the PNG `asset`; returns `asset`."""
    pictures.save_png(pictures.Image.fromarray(crop, "RGB"), ws.root / asset)
    return asset


def _reason(exc: InputError, path: Path) -> str:
    """The message without the leading path, which the report shows in its own column."""
    prefix = f"{path}: "
    return exc.message[len(prefix):] if exc.message.startswith(prefix) else exc.message


def run_model(spec: models.ModelSpec, source: weights.WeightSource, prepared: PreparedImages,
              noise_crop: np.ndarray, target: int | None, batch_size: int, ws: Workspace,
              save_arrays: bool, progress: Progress) -> tuple[ModelResult, dict[str, ImageModelResult]]:
    """All images through one model; the network is freed when this returns."""
    seconds = {"load": 0.0, "network": 0.0, "figures": 0.0}
    started = time.perf_counter()
    progress.message(f"{spec.name}: loading weights ({source.kind})")
    net = weights.load_network(spec, source, models.build_network)
    conv_weights = [(name, layer.weight.data().asnumpy()) for name, layer in models.conv_layers(net)]
    conv_table = tuple(filters.weight_stats(name, weight) for name, weight in conv_weights)
    first_weights = conv_weights[0][1]
    del conv_weights
    split = models.prepare(net)
    seconds["load"] = time.perf_counter() - started

    per_image: dict[str, ImageModelResult] = {}
    for begin in range(0, len(prepared.ok_ids), batch_size):
        end = min(begin + batch_size, len(prepared.ok_ids))
        t0 = time.perf_counter()
        out = forward_backward(split, np.ascontiguousarray(prepared.inputs[begin:end]), target)
        t1 = time.perf_counter()
        maps = saliency.saliency_maps(out.gradients)
        probabilities = softmax(out.logits)
        for j, n in enumerate(range(begin, end)):
            image_id = prepared.ok_ids[n]
            per_image[image_id] = _image_result(spec.name, image_id, prepared.crops[n], maps[j],
                                                probabilities[j], out.logits[j],
                                                int(out.targets[j]), out.conv1[j], ws)
            np.save(ws.scratch / f"{image_id}__{spec.name}.npy", maps[j])
            if save_arrays:
                np.savez_compressed(ws.arrays / f"{image_id}__{spec.name}.npz",
                                    input=prepared.inputs[n], gradient=out.gradients[j].astype(np.float32),
                                    saliency=maps[j], conv1=out.conv1[j].astype(np.float32),
                                    target=np.int64(out.targets[j]))
        seconds["network"] += t1 - t0
        seconds["figures"] += time.perf_counter() - t1
        progress.advance(end - begin, f"{spec.name}: {end}/{len(prepared.ok_ids)} images")

    t0 = time.perf_counter()
    noise_conv1 = first_conv_output(split, images.normalize(noise_crop)[None])[0]
    seconds["network"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    filters_asset = f"assets/model__{spec.name}__filters.png"
    pictures.save_png(pictures.filter_grid(first_weights), ws.root / filters_asset)
    noise_asset = f"assets/noise__{spec.name}__conv1.jpg"
    pictures.save_jpeg(pictures.activation_grid(noise_conv1, centre_only=True), ws.root / noise_asset)
    seconds["figures"] += time.perf_counter() - t0

    result = ModelResult(
        name=spec.name, zoo_name=spec.zoo_name, family=spec.family, weights=asdict(source),
        filters_asset=filters_asset, filter_size=spec.filter_size, noise_conv1_asset=noise_asset,
        conv1_shape=tuple(noise_conv1.shape), conv_layers=conv_table, seconds=seconds)
    del split, net
    gc.collect()
    progress.message(f"{spec.name}: done: {len(per_image)} images, "
                     f"{seconds['network']:.1f} s in the network")
    return result, per_image


def _image_result(model: str, image_id: str, crop: np.ndarray, saliency_map: np.ndarray,
                  probabilities: np.ndarray, logits: np.ndarray, target: int,
                  conv1: np.ndarray, ws: Workspace) -> ImageModelResult:
    top5 = np.argsort(-probabilities, kind="stable")[:5]
    stem = f"assets/{image_id}__{model}"
    pictures.save_png(pictures.saliency_gray(saliency_map), ws.root / f"{stem}_saliency.png")
    pictures.save_jpeg(pictures.saliency_overlay(crop, saliency_map), ws.root / f"{stem}_overlay.jpg")
    pictures.save_jpeg(pictures.activation_grid(conv1), ws.root / f"{stem}_conv1.jpg")
    return ImageModelResult(
        model=model,
        top5=tuple(Prediction(int(c), imagenet.label(int(c)), float(probabilities[c])) for c in top5),
        target=Prediction(target, imagenet.label(target), float(probabilities[target])),
        target_logit=float(logits[target]),
        saliency=saliency.saliency_stats(saliency_map, crop),
        saliency_asset=f"{stem}_saliency.png",
        overlay_asset=f"{stem}_overlay.jpg",
        conv1_asset=f"{stem}_conv1.jpg",
    )


def compare_models(results: list[ImageResult], model_names: list[str],
                   ws: Workspace) -> tuple[list[ImageResult], Summary]:
    """Per image: pairwise saliency agreement; over the set: summaries and top-1 agreement."""
    updated = []
    pair_values: dict[str, dict[str, list[float]]] = {}
    for image in results:
        if image.status != "ok":
            updated.append(image)
            continue
        maps = {m: np.load(ws.scratch / f"{image.id}__{m}.npy") for m in model_names}
        agreement = compare.pair_metrics(maps)
        for pair, metrics in agreement.items():
            for metric, value in metrics.items():
                pair_values.setdefault(pair, {}).setdefault(metric, []).append(value)
        updated.append(replace(image, agreement=agreement))

    ok = [i for i in updated if i.status == "ok"]
    per_model = {
        m: {metric: compare.summarize([i.models[m].saliency[metric] for i in ok])
            for metric in ("concentration_top5", "edge_share_top20")}
        for m in model_names
    }
    per_pair = {pair: {metric: compare.summarize(values) for metric, values in metrics.items()}
                for pair, metrics in pair_values.items()}
    top1 = {}
    for a, b in compare.model_pairs(model_names):
        agree = sum(i.models[a].top5[0].class_id == i.models[b].top5[0].class_id for i in ok)
        top1[f"{a}|{b}"] = _rate(agree, len(ok))
    all_agree = sum(len({i.models[m].top5[0].class_id for m in model_names}) == 1 for i in ok)
    return updated, Summary(per_model, per_pair, top1, _rate(all_agree, len(ok)))


def _rate(agree: int, of: int) -> dict:
    return {"agree": agree, "of": of, "rate": agree / of if of else float("nan")}

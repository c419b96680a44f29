"""The computation of a run: images -> per model one forward + one input backward per batch
-> plain records and figure files. Knows nothing of HTML.

Memory stays flat in the number of images: the decoded crops live in a memory-mapped
scratch file (each batch is normalized from them when it goes through the network),
each map's ranking is spooled to a scratch file until the shard's comparison reads it, and
only one network is in memory at a time. What needs no network (figures, statistics,
rankings) runs on a figure queue (``figure_queue.py``) beside it. The images are processed in shards (``shards.py``): a
serial run is one shard, a distributed run many; this module computes one shard through
one model.
"""

from __future__ import annotations

import gc
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import attribute, drift, imagenet, images, models, weights
from .analysis import compare, filters, saliency
from .analysis.gradients import first_conv_output, forward_backward, softmax
from .errors import InputError
from .figure_queue import FigureQueue
from .progress import Progress
from .records import ImageModelResult, ImageResult, MethodResult, ModelResult, Prediction, Summary
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
        for folder in (self.assets, self.scratch, self.root / drift.MAPS_DIR) + \
                ((self.arrays,) if save_arrays else ()):
            folder.mkdir(parents=True, exist_ok=True)


@dataclass
class PreparedImages:
    results: list[ImageResult]        # every input, in order, ok or skipped
    crops: np.ndarray                 # (N_ok, 224, 224, 3) uint8 memmap, in order of ok ones
    ok_ids: list[str]


def prepare_images(paths: list[Path], problems: list[tuple[Path, str]], ws: Workspace,
                   progress: Progress, input_roots: list[Path] = (),
                   writer: FigureQueue | None = None) -> PreparedImages:
    """Decode every file once; write its crop to scratch (what the network will see, before
    normalization) and as an asset, on `writer` when given (the PNG encoding is 7 x the
    decoding of a typical photo: queued, it runs beside the network instead of before it;
    wait on the writer before rendering). A file that cannot be used becomes a skipped
    record with its reason."""
    used_ids: set[str] = set()
    results: list[ImageResult] = []
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
        crops[len(ok_ids)] = decoded.crop
        crop_asset = f"assets/{image_id}__crop.png"
        if writer is None:
            save_crop(decoded.crop, crop_asset, ws)
        else:
            writer.submit(save_crop, decoded.crop, crop_asset, ws)
        ok_ids.append(image_id)
        results.append(ImageResult(image_id, str(path), "ok", sha256=digest,
                                   original_size=decoded.original_size, notes=decoded.notes,
                                   shown=images.shown_path(path, input_roots), crop_asset=crop_asset))
    for path, reason in problems:
        progress.warn(f"reportgen: skipped {path}: {reason}")
        results.append(ImageResult(images.image_id(path, used_ids), str(path), "skipped", reason,
                                   shown=images.shown_path(path, input_roots)))
    return PreparedImages(results, crops[:len(ok_ids)], ok_ids)


@dataclass
class Shard:
    """Consecutive images of the run, which one task puts through every model."""

    index: int
    ids: list[str]
    crops: np.ndarray                 # (n, 224, 224, 3) uint8
    first: bool                       # holds the run's first images: also computes what is
                                      # per model (filters, noise image, weights table, sanity)
    of: int = 1                       # how many shards the run has (for progress lines)


@dataclass
class ModelPass:
    """One model over one shard."""

    result: ModelResult | None        # the per-model record: from the first shard only
    images: dict[str, ImageModelResult]   # futures of them until resolve()
    seconds: dict[str, float]         # load, network, figures, each method and check

    def resolve(self) -> None:
        """The per-image records (and the model's weight statistics), once the figure queue
        has run their tasks."""
        self.images = {image_id: record.result() if isinstance(record, Future) else record
                       for image_id, record in self.images.items()}
        if self.result is not None and isinstance(self.result.conv_layers, Future):
            self.result = replace(self.result, conv_layers=self.result.conv_layers.result())


class LastNetwork:
    """The last prepared network of a process that computes many shards (a Dask worker),
    kept for its next shard: a shard then starts with the model the previous one ended
    with (shards.run_shard orders them so) instead of loading it again (a load and a graph
    build: 1 to 3 s per model at one MXNet thread). Still at most one network in memory:
    taking another model's frees this one first."""

    def __init__(self):
        self.key = None
        self._split = None

    @property
    def model(self) -> str | None:
        return self.key[0] if self.key else None

    def take(self, key):
        """The kept network if it is `key`'s (no longer kept), else None (and freed)."""
        split = self._split if key == self.key else None
        self.key = self._split = None
        gc.collect()
        return split

    def keep(self, key, split) -> None:
        self.key, self._split = key, split


def normalized(crops: np.ndarray) -> np.ndarray:
    """(n, 224, 224, 3) uint8 -> (n, 3, 224, 224) float32 network inputs."""
    return np.stack([images.normalize(crop) for crop in crops]) if len(crops) else \
        np.zeros((0, 3, images.CROP, images.CROP), np.float32)


def save_crop(crop: np.ndarray, asset: str, ws: Workspace) -> str:
    """Write a uint8 (224, 224, 3) crop as the PNG `asset`; returns `asset`."""
    pictures.save_png(pictures.Image.fromarray(crop, "RGB"), ws.root / asset, compress_level=1)
    return asset


def _reason(exc: InputError, path: Path) -> str:
    """The message without the leading path, which the report shows in its own column."""
    prefix = f"{path}: "
    return exc.message[len(prefix):] if exc.message.startswith(prefix) else exc.message


def run_model(spec: models.ModelSpec, source: weights.WeightSource, shard: Shard,
              noise_crop: np.ndarray, target: int | None, batch_size: int, ws: Workspace,
              save_arrays: bool, progress: Progress, figures: FigureQueue,
              settings: attribute.MethodSettings = attribute.MethodSettings(),
              last_network: "LastNetwork | None" = None) -> ModelPass:
    """The shard's images through one model. The network is freed when this returns, or
    kept in `last_network` for the process's next shard. Each image's figures, statistics
    and arrays are queued on `figures`: the pass's `images` are futures until
    ModelPass.resolve() (after figures.wait())."""
    seconds = {"load": 0.0, "network": 0.0, "figures": 0.0}
    for method in settings.methods:
        seconds[method] = 0.0
    for check in settings.checks:
        seconds[check] = 0.0
    started = time.perf_counter()
    key = (spec.name, source)
    # The first shard reads the weights as loaded (before BatchNorm folding) and may
    # randomize them (sanity check): it always loads its own network.
    split = last_network.take(key) if last_network is not None and not shard.first else None
    if split is None:
        progress.message(f"{spec.name}: loading weights ({source.kind})")
        net = weights.load_network(spec, source, models.build_network)
        if shard.first:
            conv_weights = [(name, layer.weight.data().asnumpy()) for name, layer in models.conv_layers(net)]
            first_weights = conv_weights[0][1]
            # On the figure thread: 0.06-0.11 s per model here, between two models' networks.
            conv_table = figures.submit(_conv_table, conv_weights)
            del conv_weights
        split = models.prepare(net, static_graph=spec.static_graph)
        del net
    seconds["load"] = time.perf_counter() - started

    t0 = time.perf_counter()
    ig_baseline_logits = attribute.baseline_logits(split, settings, normalized(shard.crops[:1]))
    if ig_baseline_logits is not None:
        seconds["integrated_gradients"] += time.perf_counter() - t0
    sanity_count = settings.sanity_images if shard.first and "sanity" in settings.checks else 0
    sanity_originals: list[tuple[str, int, int, dict[str, np.ndarray]]] = []
    per_image: dict[str, ImageModelResult] = {}
    count = len(shard.ids)
    for begin in range(0, count, batch_size):
        end = min(begin + batch_size, count)
        ids = shard.ids[begin:end]
        batch = normalized(shard.crops[begin:end])
        t0 = time.perf_counter()
        out = forward_backward(split, batch, target, conv1_full=save_arrays,
                               conv1_tile=pictures.TILE)
        seconds["network"] += time.perf_counter() - t0
        done = f"{spec.name}: {_images_done(shard, end)}"
        progress.advance(end - begin, f"{done}: saliency")

        def on_chunk(rows, method, label=f"{spec.name}: {_images_span(shard, begin, end)}"):
            progress.advance(rows, f"{label}: {method}")

        attributions, maps, extras = attribute.batch_attributions(
            split, batch, out, ids, settings, batch_size, ig_baseline_logits, seconds, on_chunk)
        probabilities = softmax(out.logits)
        for j, n in enumerate(range(begin, end)):
            image_id = ids[j]
            target_j = int(out.targets[j])
            image_maps = {m: maps[m][j] for m in maps}
            checked = None
            if "faithfulness" in settings.checks:
                t0 = time.perf_counter()
                checked, rows = attribute.image_faithfulness(
                    split, batch[j], image_maps, target_j, float(probabilities[j, target_j]),
                    image_id, settings, batch_size)
                seconds["faithfulness"] += time.perf_counter() - t0
                progress.advance(rows * attribute.FORWARD_COST, f"{done}: faithfulness")
            if n < sanity_count:
                sanity_originals.append((image_id, n, target_j, image_maps))
            arrays = None
            if save_arrays:
                arrays = dict(
                    input=batch[j].copy(), gradient=out.gradients[j].astype(np.float32),
                    saliency=maps["saliency"][j].copy(), conv1=out.conv1[j].astype(np.float32),
                    target=np.int64(target_j),
                    **({"gradcam_layer": np.str_(split.gradcam_layer)} if "gradcam" in attributions else {}),
                    **{m: attributions[m][j].astype(np.float32) for m in attributions if m != "saliency"})
            # Copies, not views: a queued view would keep its whole batch alive.
            per_image[image_id] = figures.submit(
                _image_outputs, spec.name, image_id, np.array(shard.crops[n]),
                {m: v.copy() for m, v in image_maps.items()}, probabilities[j].copy(),
                out.logits[j].copy(), target_j, _conv1_for_grid(out, j), ws,
                gaps={k: float(v[j]) for k, v in extras.items()}, faithfulness=checked,
                arrays=arrays, seconds=seconds)

    result = None
    if shard.first:
        t0 = time.perf_counter()
        noise_conv1 = first_conv_output(split, images.normalize(noise_crop)[None])[0]
        seconds["network"] += time.perf_counter() - t0
        filters_asset = f"assets/model__{spec.name}__filters.png"
        noise_asset = f"assets/noise__{spec.name}__conv1.jpg"
        figures.submit(_model_figures, first_weights, filters_asset, noise_conv1, noise_asset, ws, seconds)

        sanity = None
        if sanity_originals:
            t0 = time.perf_counter()
            progress.message(f"{spec.name}: sanity check: randomizing the weights stage by stage")
            sanity = attribute.cascading_randomization(
                split, normalized(shard.crops[:sanity_count]), sanity_originals,
                settings, batch_size, progress, spec.name)
            seconds["sanity"] += time.perf_counter() - t0
        result = ModelResult(
            name=spec.name, zoo_name=spec.zoo_name, family=spec.family, weights=asdict(source),
            filters_asset=filters_asset, filter_size=spec.filter_size, noise_conv1_asset=noise_asset,
            conv1_shape=tuple(noise_conv1.shape), conv_layers=conv_table, seconds=seconds,
            gradcam_layer=split.gradcam_layer, sanity=sanity)
    if last_network is not None and not sanity_count:
        last_network.keep(key, split)
    del split
    gc.collect()
    progress.message(f"{spec.name}: done: {_shard_prefix(shard)}{count} images, "
                     f"{seconds['network']:.1f} s in the network")
    return ModelPass(result, per_image, seconds)


def _conv1_for_grid(out, j: int) -> np.ndarray:
    """What the activation grid is drawn from: the block means of |conv1| MXNet computed
    (the grid's own reduction, 1/16 of VGG's output to copy and keep queued), else the
    output itself. A copy: a queued view would keep its whole batch alive."""
    source = out.conv1_tiles if out.conv1_tiles is not None else out.conv1
    return source[j].copy()


def ranking_file(image_id: str, model: str, method: str) -> str:
    """The scratch file one map's ranking (compare.map_ranking) is spooled to until the
    shard's comparison reads it."""
    return f"{image_id}__{model}__{method}.rank.npz"


def edges_file(image_id: str) -> str:
    """The scratch file an image's edge mask is spooled to: the same for every model, it is
    computed by the first model's figure task (3 ms) and read by the others' (0.05 ms)
    until the shard's comparison is done."""
    return f"{image_id}__edges.npy"


def _edge_mask(image_id: str, crop: np.ndarray, ws: Workspace) -> np.ndarray:
    """saliency.edge_mask(crop), computed once per image (the figure tasks of one process
    run one at a time, in order; the file is its own image's)."""
    path = ws.scratch / edges_file(image_id)
    if path.exists():
        packed = np.load(path)
        return np.unpackbits(packed, count=crop.shape[0] * crop.shape[1]).reshape(crop.shape[:2]).astype(bool)
    edges = saliency.edge_mask(crop)
    np.save(path, np.packbits(edges))
    return edges


def _images_done(shard: Shard, end: int) -> str:
    return f"{_shard_prefix(shard)}{end}/{len(shard.ids)} images"


def _images_span(shard: Shard, begin: int, end: int) -> str:
    return f"{_shard_prefix(shard)}images {begin + 1}-{end}"


def _shard_prefix(shard: Shard) -> str:
    return f"shard {shard.index + 1}/{shard.of}: " if shard.of > 1 else ""


def _image_outputs(model: str, image_id: str, crop: np.ndarray, maps: dict[str, np.ndarray],
                   probabilities: np.ndarray, logits: np.ndarray, target: int, conv1: np.ndarray,
                   ws: Workspace, gaps: dict[str, float], faithfulness: dict | None,
                   arrays: dict | None, seconds: dict[str, float]) -> ImageModelResult:
    """Everything of one image x model that needs no network (a figure-queue task): its
    record with figures and map statistics, each map's ranking spooled for the shard's
    comparison, and with --save-arrays its arrays."""
    started = time.perf_counter()
    # Each map sorted once: its ranking, its top 5 % (for its concentration and the
    # comparison) and its display scale all come from that sort.
    sorted_maps = {method: compare.SortedMap(values) for method, values in maps.items()}
    tops = {method: sorted_map.top_mask() for method, sorted_map in sorted_maps.items()}
    result = _image_result(model, image_id, crop, maps, tops, sorted_maps, probabilities, logits,
                           target, conv1, ws, gaps, faithfulness)
    for method, values in maps.items():
        compare.save_ranking(ws.scratch / ranking_file(image_id, model, method), values,
                             tops[method], sorted_maps[method])
    drift.save_compact_maps(ws.root / drift.compact_file(image_id, model), maps)
    if arrays is not None:
        np.savez_compressed(ws.arrays / f"{image_id}__{model}.npz", **arrays)
    seconds["figures"] += time.perf_counter() - started     # only the queue's thread adds here
    return result


def _conv_table(conv_weights: list[tuple[str, np.ndarray]]) -> tuple[dict, ...]:
    """Every conv layer's weight statistics (a figure-queue task)."""
    return tuple(filters.weight_stats(name, weight) for name, weight in conv_weights)


def _model_figures(first_weights: np.ndarray, filters_asset: str, noise_conv1: np.ndarray,
                   noise_asset: str, ws: Workspace, seconds: dict[str, float]) -> None:
    """The first shard's per-model figures: the first layer's filters, the noise image's
    first-conv output (a figure-queue task)."""
    started = time.perf_counter()
    pictures.save_png(pictures.filter_grid(first_weights), ws.root / filters_asset)
    pictures.save_jpeg(pictures.activation_grid(noise_conv1, centre_only=True), ws.root / noise_asset)
    seconds["figures"] += time.perf_counter() - started


def _image_result(model: str, image_id: str, crop: np.ndarray, maps: dict[str, np.ndarray],
                  tops: dict[str, np.ndarray], sorted_maps: dict[str, compare.SortedMap],
                  probabilities: np.ndarray, logits: np.ndarray, target: int,
                  conv1: np.ndarray, ws: Workspace, gaps: dict[str, float],
                  faithfulness: dict | None) -> ImageModelResult:
    top5 = np.argsort(-probabilities, kind="stable")[:5]
    stem = f"assets/{image_id}__{model}"
    methods = {}
    edges = _edge_mask(image_id, crop, ws)
    for method, values in maps.items():
        suffix = "" if method == "saliency" else f"_{method}"
        overlay = f"{stem}{suffix}_overlay.jpg"
        scaled = pictures.display_scale(
            values, sorted_maps[method].percentile(pictures.DISPLAY_PERCENTILE))
        pictures.save_jpeg(pictures.saliency_overlay(crop, values, scaled), ws.root / overlay)
        gray = None
        if method == "saliency":
            gray = f"{stem}_saliency.png"
            pictures.save_png(pictures.saliency_gray(values, scaled), ws.root / gray,
                              compress_level=1)
        methods[method] = MethodResult(
            stats=saliency.saliency_stats(values, crop, edges, tops[method]), overlay_asset=overlay, map_asset=gray,
            completeness_gap=gaps.get("completeness_gap") if method == "integrated_gradients" else None,
            faithfulness=faithfulness[method] if faithfulness else None)
    pictures.save_jpeg(pictures.activation_grid(conv1), ws.root / f"{stem}_conv1.jpg")
    return ImageModelResult(
        model=model,
        top5=tuple(Prediction(int(c), imagenet.label(int(c)), float(probabilities[c])) for c in top5),
        target=Prediction(target, imagenet.label(target), float(probabilities[target])),
        target_logit=float(logits[target]),
        methods=methods,
        random_order=faithfulness["random"] if faithfulness else None,
        conv1_asset=f"{stem}_conv1.jpg",
    )

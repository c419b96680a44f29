"""The unit of work of a run: a shard of consecutive images put through every model.

A serial run is one shard computed in this process straight into the report's workspace;
a distributed run (``cluster.py``) is many, each computed on a Dask worker in a workspace
of its own whose files come back as bytes. Both go through ``run_shard`` with the same
batches (shard sizes are multiples of the batch size), which is why their reports are
identical. ``ShardMerger`` puts the shards' plain records back together on the client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from . import models, pipeline
from .analysis import compare
from .figure_queue import FigureQueue
from .method_settings import MethodSettings
from .records import ImageModelResult, ImageResult, ModelResult


@dataclass(frozen=True)
class ShardJob:
    """Everything a worker needs for one shard besides the weights: plain and picklable."""

    shard: pipeline.Shard
    models: tuple[str, ...]
    noise_crop: np.ndarray            # uint8 (224, 224, 3)
    target: int | None
    batch_size: int
    save_arrays: bool
    settings: MethodSettings


@dataclass
class ShardResult:
    index: int
    passes: dict[str, pipeline.ModelPass]               # model -> its pass over the shard
    agreement: dict[str, dict]                           # image id -> method -> "a|b" -> metrics
    files: dict[str, bytes] = field(default_factory=dict)  # report-relative path -> bytes,
                                                         # when computed away from the report
    worker: str = ""                                     # the Dask worker's address


def run_shard(job: ShardJob, sources: dict, ws: pipeline.Workspace, progress,
              last_network: pipeline.LastNetwork | None = None) -> ShardResult:
    """The shard through every model in turn (one network in memory at a time, the one kept
    from this process's previous shard first; each image's
    figures and numbers on a figure queue beside it, which runs on while the next model
    loads), then the pairwise agreement of each image's maps, from the rankings spooled to
    the workspace's scratch."""
    # The model this process still holds (last_network) goes first; the order of the
    # models changes nothing in their results.
    order = sorted(job.models, key=lambda name: name != getattr(last_network, "model", None))
    passes = {}
    with FigureQueue() as figures:
        for name in order:
            passes[name] = pipeline.run_model(
                models.model_spec(name), sources[name], job.shard, job.noise_crop, job.target,
                job.batch_size, ws, job.save_arrays, progress, figures, job.settings, last_network)
        figures.wait()
    passes = {name: passes[name] for name in job.models}
    for model_pass in passes.values():
        model_pass.resolve()
    agreement = {}
    for image_id in job.shard.ids:
        agreement[image_id] = image_agreement(image_id, job.models, job.settings.methods, ws)
        for name in job.models:
            for method in job.settings.methods:
                (ws.scratch / pipeline.ranking_file(image_id, name, method)).unlink(missing_ok=True)
        (ws.scratch / pipeline.edges_file(image_id)).unlink(missing_ok=True)
    return ShardResult(job.shard.index, passes, agreement)


def image_agreement(image_id: str, model_names, methods, ws: pipeline.Workspace) -> dict:
    """method -> "a|b" -> compare.pair_metrics of one image's maps by every pair of models,
    from the maps' spooled rankings."""
    return {method: compare.pair_metrics_of_rankings(
                {m: compare.load_ranking(ws.scratch / pipeline.ranking_file(image_id, m, method))
                 for m in model_names})
            for method in methods}


# Images per shard the automatic plan aims at. Each shard after a worker's first loads two
# models at the worker's MXNet threads (measured on 2 cores at 1 thread: about 1.7 s each,
# against about 2 s of network per image for the three models): at 64 images the loads
# are under 3 % of the shard. The old plan (4 shards per worker, 8 to 64 images) cut 100
# images on 2 workers into 7 shards: 147 s, against 136 s for 2 shards (serial: 121 s).
IMAGES_PER_SHARD = 64


def shard_size(count: int, batch_size: int, workers: int, requested: int | None,
               sanity_images: int) -> int:
    """Images per shard, a multiple of the batch size (so that every batch is the serial
    run's) and at least the sanity images (which the first shard holds). Automatic: a
    whole number of shards per worker (so that the workers finish together, up to the
    rounding to batches), as many as makes shards of about IMAGES_PER_SHARD images (at
    most about 1.5 x that, unless there are fewer images than that per worker): a lost
    worker costs at most one such shard, and each shard's files come back in messages of
    bounded size."""
    if requested is None:
        workers = max(1, workers)
        per_worker = max(1, round(count / (workers * IMAGES_PER_SHARD)))
        requested = math.ceil(count / (workers * per_worker))
    size = max(requested, sanity_images, 1)
    return math.ceil(size / batch_size) * batch_size


def plan_shards(ids: list[str], crops: np.ndarray, size: int | None, batch_size: int = 1,
                first_at_least: int = 0) -> list[pipeline.Shard]:
    """Consecutive shards of `size` images (all of them in one when size is None). The
    crops are views of `crops` (the memmap): a shard is read when it is sent or computed.

    When the images do not divide into shards of `size`, the short shard is the first one
    if it is whole batches (so that every batch stays the serial run's) and holds at least
    `first_at_least` images (the sanity check's): the first shard also loads each model for
    its weight statistics and draws the per-model figures, about 4 s at one MXNet thread
    (100 images on 2 workers: 48 + 52 instead of 52 + 48, measured 4.3 s of extra work in
    the first shard). Otherwise the short shard is the last."""
    size = size or max(1, len(ids))
    count = len(ids)
    shards_needed = max(1, math.ceil(count / size))
    short = count - (shards_needed - 1) * size
    if 0 < short < size and short % batch_size == 0 and short >= first_at_least:
        sizes = [short] + [size] * (shards_needed - 1)
    else:
        sizes = [size] * (shards_needed - 1) + [short]
    bounds, begin = [], 0
    for n in sizes:
        bounds.append((begin, begin + n))
        begin += n
    return [pipeline.Shard(index, ids[b:e], crops[b:e], first=index == 0, of=len(bounds))
            for index, (b, e) in enumerate(bounds)]


class ShardMerger:
    """The shards' records, back together in the run's order whatever order they came in."""

    def __init__(self, model_names: tuple[str, ...]):
        self.model_names = model_names
        self.per_model: dict[str, dict[str, ImageModelResult]] = {m: {} for m in model_names}
        self.model_records: dict[str, ModelResult] = {}
        self.seconds: dict[str, dict[str, float]] = {m: {} for m in model_names}
        self.agreement: dict[str, dict] = {}
        self.workers: dict[int, str] = {}

    def add(self, result: ShardResult) -> None:
        for name, model_pass in result.passes.items():
            self.per_model[name].update(model_pass.images)
            for key, value in model_pass.seconds.items():
                self.seconds[name][key] = self.seconds[name].get(key, 0.0) + value
            if model_pass.result is not None:
                self.model_records[name] = model_pass.result
        self.agreement.update(result.agreement)
        if result.worker:
            self.workers[result.index] = result.worker

    def model_results(self) -> list[ModelResult]:
        """Per model: the first shard's record, with the seconds of every shard."""
        return [replace(self.model_records[m], seconds=self.seconds[m]) for m in self.model_names]

    def image_results(self, images: list[ImageResult]) -> list[ImageResult]:
        return [replace(image, models={m: self.per_model[m][image.id] for m in self.model_names},
                        agreement=self.agreement[image.id])
                if image.status == "ok" else image
                for image in images]

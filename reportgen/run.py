"""A whole `reportgen run`: check everything that can fail early, compute, render, publish."""

from __future__ import annotations

import dataclasses
import platform
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from . import __version__, drift, figure_queue, i18n, images, imagenet, models, output, pipeline, publish, selection, shards, weights
from .summary import compare_models
from .config import RunConfig
from .errors import UsageError
from .progress import Progress
from .records import RunResult


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    output_dir: Path
    files: tuple[Path, ...]
    processed: int
    skipped: int
    drift: dict | None = None          # changes since the previous report, if there was one
    lang: str = "en"

    @property
    def exit_code(self) -> int:
        return 1 if self.skipped else 0

    @property
    def drift_line(self) -> str:
        return drift.summary_line(self.drift, i18n.translations(self.lang)) if self.drift else ""


@dataclasses.dataclass(frozen=True)
class WeightPlan:
    """How a run finds each model's weights: resolved by the client for a serial run and
    by every worker of a distributed one (its own cache, its own SHA-1 check)."""

    models: tuple[str, ...]
    weights: str                       # "pretrained" | "untrained"
    params: dict                       # model name -> .params file
    model_root: Path | None
    seed: int

    @classmethod
    def of(cls, config: RunConfig) -> "WeightPlan":
        return cls(tuple(config.models), config.weights, dict(config.params),
                   config.model_root, config.seed)


def resolve_weights(plan: WeightPlan) -> dict[str, weights.WeightSource]:
    """Every model's weights, found (and downloaded) before any other work."""
    model_root = Path(plan.model_root) if plan.model_root else weights.default_model_root()
    unknown = set(plan.params) - set(plan.models)
    if unknown:
        raise UsageError(f"--params names {', '.join(sorted(unknown))}, which is not among "
                         f"the models of this run ({', '.join(plan.models)})")
    sources = {}
    for name in plan.models:
        spec = models.model_spec(name)
        if name in plan.params:
            sources[name] = weights.resolve_params_file(spec, plan.params[name])
        elif plan.weights == "untrained":
            sources[name] = weights.WeightSource("untrained", seed=plan.seed)
        else:
            sources[name] = weights.resolve_pretrained(spec, model_root)
    return sources


def execute(config: RunConfig, stderr=None, log=None) -> RunOutcome:
    """Everything that can fail fast fails before the long work; then compute and publish."""
    started = time.perf_counter()
    for name in config.models:
        models.model_spec(name)  # execute() is callable without the CLI: validate here too
    target = imagenet.resolve_target(config.target)
    publish.check_writable(config.output_dir)
    paths, problems = images.find_images(list(config.inputs))
    if not paths and not problems:
        raise UsageError(f"no image files found in {', '.join(map(str, config.inputs))}",
                         hint=f"image files end in {', '.join(images.IMAGE_EXTENSIONS)}")
    with publish.OutputLock(config.output_dir):
        baseline = _baseline(config)
        settings = config.method_settings()
        progress = Progress(progress_units(settings, len(paths), len(config.models)),
                            quiet=config.quiet, stream=stderr, log=log)
        t0 = time.perf_counter()
        with _executor(config, progress) as executor:
            sources = executor.resolve_weights(WeightPlan.of(config))
            timings = {"weights_resolve": time.perf_counter() - t0}
            warnings = _font_warnings(config, paths, progress)
            with publish.Staging(config.output_dir) as staging:
                run_result, files = _compute_and_render(config, settings, target, paths, problems,
                                                        sources, executor,
                                                        pipeline.Workspace(staging.path),
                                                        progress, timings, started, warnings,
                                                        baseline)
                staging.publish()
    progress.message(i18n.translations(config.lang).gettext("report written to %(folder)s")
                     % {"folder": config.output_dir})
    return RunOutcome(config.output_dir, tuple(config.output_dir / f.name for f in files),
                      len(run_result.processed), len(run_result.skipped), run_result.drift,
                      config.lang)


def _baseline(config: RunConfig) -> drift.Baseline | None:
    """The previous report to compare with, read before the long work: --baseline must
    be one (else a usage error); the output folder's is used when it can be read."""
    path = drift.find_baseline(config.baseline, config.output_dir)
    if path is None:
        return None
    try:
        return drift.load_baseline(path)
    except UsageError:
        if config.baseline is not None:
            raise
        return None       # not a report to compare with; publishing will replace it


def progress_units(settings, image_count: int, model_count: int) -> float:
    """The run's network work in forward + backward units: per image and model the
    methods' passes and the faithfulness forwards, per model the sanity cascade's."""
    per_model = image_count * settings.rows_per_image()
    if "sanity" in settings.checks:
        per_model += (models.SANITY_STAGES * min(image_count, settings.sanity_images)
                      * settings.gradient_rows())
    return per_model * model_count


def _font_warnings(config: RunConfig, paths: list[Path], progress: Progress) -> list[str]:
    """Warn before the long work if the PDF would show empty boxes for some text."""
    from .render.fonts import font_warning

    warning = font_warning([config.title, config.author, *map(str, paths)])
    if warning:
        progress.warn(f"reportgen: warning: {warning}")
    return [warning] if warning else []


def _executor(config: RunConfig, progress: Progress):
    """Where the shards are computed: in this process, or on a Dask cluster."""
    if config.workers is None and config.scheduler is None:
        return SerialExecutor()
    from .cluster import DaskExecutor   # imports dask.distributed, or says what to install

    return DaskExecutor(config, progress)


class SerialExecutor:
    """One shard of every image, computed in this process into the report's workspace."""

    description = {"executor": "serial"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def resolve_weights(self, plan: WeightPlan) -> dict[str, weights.WeightSource]:
        self.sources = resolve_weights(plan)
        return self.sources

    def run(self, prepared: pipeline.PreparedImages, job, ws: pipeline.Workspace, progress):
        """Yields each shard's ShardResult."""
        for shard in shards.plan_shards(prepared.ok_ids, prepared.crops, None):
            yield shards.run_shard(dataclasses.replace(job, shard=shard), self.sources, ws, progress)


def _compute_and_render(config, settings, target, paths, problems, sources, executor, ws,
                        progress, timings, started, warnings, baseline=None):
    ws.create(config.save_arrays)
    merger = shards.ShardMerger(tuple(config.models))
    importing = None
    # The crops' PNGs are written beside the network (a crop is 150 kB: 256 of them ahead).
    with figure_queue.FigureQueue(ahead=256) as crop_writer:
        try:
            t0 = time.perf_counter()
            prepared = pipeline.prepare_images(paths, problems, ws, progress, list(config.inputs),
                                               crop_writer)
            noise_crop = images.noise_image(config.seed)
            noise_asset = pipeline.save_crop(noise_crop, "assets/noise__crop.png", ws)
            timings["decode"] = time.perf_counter() - t0
            # Only now: importing WeasyPrint sets a Pillow global that decoding relies on.
            importing = figure_queue.import_rendering_in_background(config.lang)
            figure_queue.start_chart_helper()

            job = shards.ShardJob(shard=None, models=tuple(config.models), noise_crop=noise_crop,
                                  target=target, batch_size=config.batch_size,
                                  save_arrays=config.save_arrays, settings=settings)
            for result in executor.run(prepared, job, ws, progress):
                merger.add(result)
                crop_writer.raise_if_failed()     # a full disk stops the run now, not at the end
            crop_writer.wait()
        finally:
            if importing is not None:
                importing.join()
    model_results = merger.model_results()
    for result in model_results:
        for key, value in result.seconds.items():
            timings[key] = timings.get(key, 0.0) + value
    image_results = merger.image_results(prepared.results)
    del prepared, merger

    t0 = time.perf_counter()
    summary = compare_models(image_results, model_results, settings.methods)
    timings["compare"] = time.perf_counter() - t0

    untrained = [name for name in config.models if not sources[name].meaningful]
    run_result = RunResult(
        title=config.title,
        author=config.author,
        created=datetime.now().astimezone().isoformat(timespec="seconds"),
        run={**_run_info(config, timings), **executor.description},
        target_mode="top1" if target is None else f"class {target} ({imagenet.label(target)})",
        weights_meaningful=not untrained,
        models=tuple(model_results),
        images=tuple(image_results),
        noise_crop_asset=noise_asset,
        summary=summary,
        charts={},
        warnings=tuple(
            [f"untrained weights ({', '.join(untrained)}): random initialization, seed "
             f"{config.seed}; the maps and predictions carry no meaning"] if untrained else [])
        + tuple(warnings),
        methods=settings.parameters({m.name: m.gradcam_layer for m in model_results}),
        checks=settings.checks,
        pages=selection.choose_pages(image_results, config.pages, config.seed),
    )
    if baseline is not None:
        t0 = time.perf_counter()
        record, per_image = drift.compare_with(
            baseline, run_result, ws.root / drift.MAPS_DIR,
            drift.Thresholds(config.drift_spearman, config.drift_top1))
        run_result = dataclasses.replace(run_result, drift=record, image_drift=per_image)
        timings["drift"] = time.perf_counter() - t0
    files = output.write_outputs(run_result, ws, config.formats, started, progress, config.lang)
    return run_result, files


def _run_info(config: RunConfig, timings: dict[str, float]) -> dict:
    import mxnet

    return {
        "reportgen": __version__,
        "mxnet": mxnet.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": "cpu",
        "omp_num_threads": models.mx_threads(),
        "command_line": list(config.command_line) or sys.argv,
        "seed": config.seed,
        "lang": config.lang,
        "batch_size": config.batch_size,
        "models": list(config.models),
        "seconds": timings,
    }

"""Command line: parse arguments into a RunConfig, run, map errors to exit codes."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from . import __version__, i18n
from .config import FORMATS, RunConfig
from .method_settings import MethodSettings
from .errors import ReportgenError, UsageError

EXIT_INTERRUPTED = 130
EXIT_DRIFT = 4


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _param_pair(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=FILE (e.g. vgg19=vgg19.params)")
    return name.strip(), Path(path)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _correlation(text: str) -> float:
    value = float(text)
    if not -1 <= value <= 1:
        raise argparse.ArgumentTypeError("must be in [-1, 1]")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("must be in (0, 1]")
    return value


def build_parser(explicit_only: bool = False) -> argparse.ArgumentParser:
    """explicit_only: every default is SUPPRESS, so parsing tells which options the user
    actually gave (they win over --config)."""
    from .models import DEFAULT_MODELS

    def default(value):
        return argparse.SUPPRESS if explicit_only else value

    parser = argparse.ArgumentParser(
        prog="reportgen",
        description="CNN visualization reports comparing VGG19, VGG16 and ResNet152.")
    parser.add_argument("--version", action="version", version=f"reportgen {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="compute and render a report",
                         description="Saliency maps, first-layer filters and activations of each "
                                     "model for every image, in one HTML + PDF report.")
    run.add_argument("inputs", nargs="*", type=Path, metavar="IMAGE_OR_DIR",
                     help="image files or folders (walked recursively); default: the bundled samples")
    run.add_argument("-o", "--output", type=Path, default=default(Path("reportgen-report")),
                     help="report folder (default: ./reportgen-report)")
    run.add_argument("-m", "--models", type=_comma_list, default=default(DEFAULT_MODELS),
                     help="comma-separated models (default: vgg19,vgg16,resnet152)")
    run.add_argument("--weights", choices=("pretrained", "untrained"), default=default("pretrained"),
                     help="model-zoo weights, or seeded random ones for offline smoke runs")
    run.add_argument("--params", type=_param_pair, action="append", default=default([]), metavar="NAME=FILE",
                     help="use a local Gluon .params file for model NAME (repeatable)")
    run.add_argument("--model-root", type=Path, default=default(None), metavar="DIR",
                     help="weights cache (default: $MXNET_HOME/models or ~/.mxnet/models)")
    run.add_argument("--target", default=default("top1"),
                     help="class to explain: top1 (each model's own), a class id, or a class name")
    run.add_argument("--batch-size", type=_positive, default=default(4), metavar="N")
    run.add_argument("--seed", type=int, default=default(0), help="noise image, untrained weights, SmoothGrad's noise, the random pixel "
                          "orders and the sanity check's weights")
    run.add_argument("--title", default=default(RunConfig.title))
    run.add_argument("--author", default=default(""))
    run.add_argument("--lang", default=default(None), metavar="LANG",
                     help="the report's language: en, zh-TW or zh-CN (default: from the locale "
                          "(LC_ALL, LC_MESSAGES, LANG), else en)")
    run.add_argument("--format", type=_comma_list, default=default(FORMATS), dest="formats",
                     help="comma-separated: html,pdf (results.json is always written)")
    run.add_argument("--save-arrays", action="store_true", default=default(False),
                     help="also write arrays/<image>__<model>.npz with inputs, gradients, maps")
    methods = run.add_argument_group("attribution methods and checks")
    methods.add_argument("--methods", type=_comma_list, default=default(MethodSettings.methods), metavar="LIST",
                         help="comma-separated from saliency, gradcam, smoothgrad, integrated_gradients, "
                              "or all (saliency always runs; default: saliency,gradcam)")
    methods.add_argument("--smoothgrad-samples", type=_positive, default=default(MethodSettings.smoothgrad_samples),
                         metavar="N", help="noisy copies per image (default 25)")
    methods.add_argument("--smoothgrad-noise", type=_fraction, default=default(MethodSettings.smoothgrad_noise),
                         metavar="SIGMA", help="noise std as a fraction of the input's range (default 0.15)")
    methods.add_argument("--ig-steps", type=_positive, default=default(MethodSettings.ig_steps), metavar="N",
                         help="Integrated Gradients: points on the path (default 32)")
    methods.add_argument("--ig-rule", default=default(MethodSettings.ig_rule),
                         help="quadrature, as Captum names them: riemann_trapezoid (default), "
                              "riemann_left, riemann_right, riemann_middle, gausslegendre")
    methods.add_argument("--ig-baseline", choices=("black", "mean"), default=default(MethodSettings.ig_baseline),
                         help="black: the all-black image, normalized (default); mean: the ImageNet mean colour")
    methods.add_argument("--checks", type=_comma_list, default=default(()), metavar="LIST",
                         help="comma-separated: faithfulness (deletion/insertion curves), sanity "
                              "(cascading weight randomization)")
    methods.add_argument("--sanity-images", type=_positive, default=default(MethodSettings.sanity_images), metavar="N",
                         help="images the sanity check recomputes (default 4)")
    scale = run.add_argument_group("large and distributed runs (Dask; pip install 'reportgen[dask]')")
    scale.add_argument("--workers", type=_positive, default=default(None), metavar="N",
                       help="start a local Dask cluster of N worker processes, each with cores/N MXNet threads")
    scale.add_argument("--scheduler", default=default(None), metavar="ADDRESS",
                       help="use an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                            "(default: $DASK_SCHEDULER_ADDRESS when set)")
    scale.add_argument("--pages", type=_positive, default=default(50), metavar="N",
                       help="images with pages of their own, at most; beyond N, N chosen from the "
                            "numbers (default 50)")
    scale.add_argument("--shard-size", type=_positive, default=default(None), metavar="N",
                       help="images per Dask task (default: about 4 shards per worker, 8 to 64 images)")
    drift = run.add_argument_group("changes since the previous report")
    drift.add_argument("--baseline", type=Path, default=default(None), metavar="DIR_OR_RESULTS_JSON",
                       help="the report to compare with (default: the one in the output folder, if any)")
    drift.add_argument("--fail-on-drift", action="store_true", default=default(False),
                       help="exit 4 (after publishing the report) when the maps or top-1 classes "
                            "moved beyond the thresholds")
    drift.add_argument("--drift-spearman", type=_correlation, default=default(0.98), metavar="R",
                       help="a map whose Spearman correlation with the previous one is below R "
                            "has drifted (default 0.98)")
    drift.add_argument("--drift-top1", type=_count, default=default(0), metavar="N",
                       help="top-1 changes tolerated over all images and models (default 0)")
    run.add_argument("-q", "--quiet", action="store_true", default=default(False),
                     help="no progress on stderr (skipped inputs and errors are still shown)")
    run.add_argument("--config", type=Path, default=None, metavar="FILE",
                     help="TOML file with any of these settings (flags win)")
    run.add_argument("--log-file", type=Path, default=default(None), metavar="PATH",
                     help="append timestamped lines: start, models, skipped inputs, outputs, exit code")
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help="show tracebacks for errors")

    for name, help_text in (("models", "list each model's pretrained weights: verified, missing "
                                       "or corrupt, with path and size"),
                            ("fetch", "download pretrained weights ahead of time (for cron "
                                      "machines), with progress")):
        weights_parser = sub.add_parser(name, help=help_text, description=help_text)
        weights_parser.add_argument("-m", "--models", type=_comma_list, default=DEFAULT_MODELS,
                                    help="comma-separated models (default: all three)")
        weights_parser.add_argument("--model-root", type=Path, default=None, metavar="DIR",
                                    help="weights cache (default: $MXNET_HOME/models or ~/.mxnet/models)")
        weights_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    return parser


def config_from_args(args: argparse.Namespace, argv: list[str]) -> RunConfig:
    from .models import model_spec

    for name in args.models:
        model_spec(name)
    if not args.models:
        raise UsageError("-m names no model", hint="e.g. -m vgg19,resnet152")
    if len(set(args.models)) != len(args.models):
        raise UsageError(f"-m names a model twice: {','.join(args.models)}")
    if args.weights not in ("pretrained", "untrained"):
        raise UsageError(f"weights {args.weights!r}: choose pretrained or untrained")
    if args.batch_size < 1:
        raise UsageError(f"batch size {args.batch_size}: must be at least 1")
    bad = [f for f in args.formats if f not in FORMATS]
    if bad or not args.formats:
        raise UsageError(f"--format {','.join(args.formats)}: choose from {','.join(FORMATS)}")
    methods, checks = _methods_and_checks(args)
    for name, value in (("--workers", args.workers), ("--shard-size", args.shard_size),
                        ("--pages", args.pages)):
        if value is not None and value < 1:
            raise UsageError(f"{name} {value}: must be at least 1")
    lang = args.lang or i18n.default_lang()
    if lang not in i18n.LANGS:
        raise UsageError(f"--lang {lang}: not a report language", hint=f"choose from {', '.join(i18n.LANGS)}")
    if not -1 <= args.drift_spearman <= 1:
        raise UsageError(f"--drift-spearman {args.drift_spearman}: must be in [-1, 1]")
    if args.drift_top1 < 0:
        raise UsageError(f"--drift-top1 {args.drift_top1}: must be 0 or more")
    if args.workers is not None and args.scheduler:
        raise UsageError("--workers starts a local cluster and --scheduler uses an existing one: "
                         "give one of them")
    return RunConfig(
        inputs=tuple(args.inputs) or (bundled_samples(),),
        output_dir=args.output,
        models=tuple(args.models),
        weights=args.weights,
        params=dict(args.params),
        model_root=args.model_root,
        target=args.target,
        batch_size=args.batch_size,
        seed=args.seed,
        title=args.title,
        author=args.author,
        formats=tuple(args.formats),
        save_arrays=args.save_arrays,
        quiet=args.quiet,
        command_line=("reportgen", *argv),
        workers=args.workers,
        scheduler=args.scheduler or (os.environ.get("DASK_SCHEDULER_ADDRESS") or None
                                     if args.workers is None else None),
        shard_size=args.shard_size,
        pages=args.pages,
        baseline=args.baseline,
        fail_on_drift=args.fail_on_drift,
        drift_spearman=args.drift_spearman,
        drift_top1=args.drift_top1,
        lang=lang,
        attribution=MethodSettings(
            methods=methods, smoothgrad_samples=args.smoothgrad_samples,
            smoothgrad_noise=args.smoothgrad_noise, ig_steps=args.ig_steps, ig_rule=args.ig_rule,
            ig_baseline=args.ig_baseline, checks=checks, sanity_images=args.sanity_images),
    )


def _methods_and_checks(args) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """--methods in the canonical order with saliency first (always on), and --checks."""
    from .analysis.attribution import IG_BASELINES, IG_RULES, METHODS
    from .method_settings import CHECKS

    asked = set(args.methods)
    if "all" in asked:
        asked = set(METHODS)
    unknown = sorted(asked - set(METHODS))
    if unknown:
        raise UsageError(f"--methods: unknown method {', '.join(unknown)}",
                         hint=f"choose from {', '.join(METHODS)}, or all")
    bad_checks = sorted(set(args.checks) - set(CHECKS))
    if bad_checks:
        raise UsageError(f"--checks: unknown check {', '.join(bad_checks)}",
                         hint=f"choose from {', '.join(CHECKS)}")
    if args.ig_rule not in IG_RULES:
        raise UsageError(f"--ig-rule {args.ig_rule}: unknown rule", hint=f"choose from {', '.join(IG_RULES)}")
    if args.ig_baseline not in IG_BASELINES:
        raise UsageError(f"--ig-baseline {args.ig_baseline}: choose black or mean")
    if args.ig_rule == "riemann_trapezoid" and args.ig_steps < 2:
        raise UsageError("--ig-steps 1: riemann_trapezoid needs at least 2 steps")
    for name, value in (("--smoothgrad-samples", args.smoothgrad_samples), ("--ig-steps", args.ig_steps),
                        ("--sanity-images", args.sanity_images)):
        if value < 1:
            raise UsageError(f"{name} {value}: must be at least 1")
    if not 0 < args.smoothgrad_noise <= 1:
        raise UsageError(f"--smoothgrad-noise {args.smoothgrad_noise}: must be in (0, 1]")
    methods = tuple(m for m in METHODS if m in asked or m == "saliency")
    checks = tuple(c for c in CHECKS if c in args.checks)
    return methods, checks


def bundled_samples() -> Path:
    """The samples/ folder: installed as package data, or the source tree's."""
    from importlib import resources

    installed = Path(str(resources.files("reportgen"))) / "samples"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[1] / "samples"


def _interrupt_on_sigterm() -> None:
    """cron's and systemd's timeouts send SIGTERM: unwind like Ctrl-C, so the staging
    folder is removed and the exit code says interrupted."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def apply_config_file(args: argparse.Namespace, argv: list[str]) -> None:
    """Settings from --config fill in what the command line did not give."""
    from . import config_file

    values = config_file.load(args.config)
    explicit = vars(build_parser(explicit_only=True).parse_args(argv))
    for dest, value in values.items():
        if dest == "inputs":
            if not args.inputs:
                args.inputs = value
        elif dest not in explicit:
            setattr(args, dest, value)


def run_command(args: argparse.Namespace, argv: list[str]) -> int:
    from .run import execute
    from .runlog import RunLog

    if args.config:
        apply_config_file(args, argv)
    config = config_from_args(args, argv)
    with RunLog(args.log_file) as log:
        log.line(f"start: reportgen {__version__}: {' '.join(config.command_line)}")
        try:
            outcome = execute(config, log=log)
        except ReportgenError as exc:
            log.line(f"error: {exc.message}")
            log.line(f"exit {exc.exit_code}")
            raise
        except KeyboardInterrupt:
            log.line(f"interrupted: exit {EXIT_INTERRUPTED}")
            raise
        for path in outcome.files:
            log.line(f"output: {path}")
        # The report is published by now: drift beyond the thresholds only changes the code.
        drifted = config.fail_on_drift and outcome.drift is not None and outcome.drift["exceeded"]
        code = EXIT_DRIFT if drifted else outcome.exit_code
        if outcome.drift is not None:
            log.line(f"changes since the previous report: {outcome.drift_line}")
        log.line(f"exit {code} ({outcome.processed} images processed, {outcome.skipped} skipped)")
    _ = i18n.translations(config.lang).gettext
    print(_("report: %(folder)s (%(processed)d images processed, %(skipped)d skipped)")
          % {"folder": outcome.output_dir, "processed": outcome.processed, "skipped": outcome.skipped})
    if outcome.drift is not None:
        print(_("changes since the previous report: %(changes)s") % {"changes": outcome.drift_line})
    if drifted:
        print(_("reportgen: drift beyond the thresholds (--fail-on-drift): exit 4"), file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _interrupt_on_sigterm()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its one-line usage error
        return int(exc.code or 0)
    try:
        if args.command == "run":
            return run_command(args, argv)
        from . import weights_cli

        return weights_cli.list_models(args) if args.command == "models" else weights_cli.fetch(args)
    except ReportgenError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"reportgen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("reportgen: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0

"""Command line: parse arguments into a RunConfig, run, map errors to exit codes."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import traceback
from pathlib import Path

from . import __version__
from .config import FORMATS, RunConfig
from .errors import ReportgenError, UsageError

EXIT_INTERRUPTED = 130


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


def build_parser() -> argparse.ArgumentParser:
    from .models import DEFAULT_MODELS

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
    run.add_argument("-o", "--output", type=Path, default=Path("reportgen-report"),
                     help="report folder (default: ./reportgen-report)")
    run.add_argument("-m", "--models", type=_comma_list, default=DEFAULT_MODELS,
                     help="comma-separated models (default: vgg19,vgg16,resnet152)")
    run.add_argument("--weights", choices=("pretrained", "untrained"), default="pretrained",
                     help="model-zoo weights, or seeded random ones for offline smoke runs")
    run.add_argument("--params", type=_param_pair, action="append", default=[], metavar="NAME=FILE",
                     help="use a local Gluon .params file for model NAME (repeatable)")
    run.add_argument("--model-root", type=Path, default=None, metavar="DIR",
                     help="weights cache (default: $MXNET_HOME/models or ~/.mxnet/models)")
    run.add_argument("--target", default="top1",
                     help="class to explain: top1 (each model's own), a class id, or a class name")
    run.add_argument("--batch-size", type=_positive, default=4, metavar="N")
    run.add_argument("--seed", type=int, default=0, help="noise image and untrained weights")
    run.add_argument("--title", default=RunConfig.title)
    run.add_argument("--author", default="")
    run.add_argument("--format", type=_comma_list, default=FORMATS, dest="formats",
                     help="comma-separated: html,pdf (results.json is always written)")
    run.add_argument("--save-arrays", action="store_true",
                     help="also write arrays/<image>__<model>.npz with inputs, gradients, maps")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
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
    bad = [f for f in args.formats if f not in FORMATS]
    if bad or not args.formats:
        raise UsageError(f"--format {','.join(args.formats)}: choose from {','.join(FORMATS)}")
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
    )


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
            from .run import execute

            outcome = execute(config_from_args(args, argv))
            print(f"report: {outcome.output_dir}"
                  f" ({outcome.processed} images processed, {outcome.skipped} skipped)")
            return outcome.exit_code
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

"""`reportgen models` and `reportgen fetch`: the weights cache, for cron machines."""

from __future__ import annotations

import sys
from pathlib import Path

from . import weights
from .errors import UsageError, WeightsError
from .models import model_spec


def _specs(args):
    if not args.models:
        raise UsageError("-m names no model", hint="e.g. -m vgg19,resnet152")
    return [model_spec(name) for name in args.models]


def _root(args) -> Path:
    return Path(args.model_root) if args.model_root else weights.default_model_root()


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def list_models(args, out=None) -> int:
    """One line per model: status, size, path. Exit 0 when every one is verified, else 3,
    so a cron job can check before the nightly run."""
    out = out or sys.stdout
    root = _root(args)
    ready = True
    for spec in _specs(args):
        path, status = weights.cached_pretrained(spec, root)
        size = _megabytes(path.stat().st_size) if path.is_file() else ""
        print(f"{spec.name:<10} {status:<9} {size:>9}  {path}", file=out)
        ready &= status == "verified"
    if not ready:
        print(f"missing or corrupt weights: run 'reportgen fetch' (model folder {root})", file=out)
    return 0 if ready else WeightsError.exit_code


def fetch(args, err=None) -> int:
    """Download every missing or corrupt model file into the cache, verified."""
    err = err or sys.stderr
    root = _root(args)
    inline = hasattr(err, "isatty") and err.isatty()
    for spec in _specs(args):
        path, status = weights.cached_pretrained(spec, root)
        if status == "verified":
            print(f"{spec.name}: {path} already cached and verified", file=err)
            continue
        last = [-1]

        def report(done: int, total: int | None, name=spec.name):
            step = int(100 * done / total) if total else done // 50_000_000
            if step == last[0] and done != total:
                return
            last[0] = step
            text = (f"{name}: {_megabytes(done)} of {_megabytes(total)} ({step} %)" if total
                    else f"{name}: {_megabytes(done)}")
            print(("\r\033[K" + text) if inline else text, end="" if inline else "\n",
                  file=err, flush=True)

        weights.resolve_pretrained(spec, root, on_progress=report)
        print(("\n" if inline else "") + f"{spec.name}: {path} downloaded and verified", file=err)
    return 0

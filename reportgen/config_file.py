"""`reportgen run --config nightly.toml`: every setting the flags take, from a TOML file.

Keys are the long flag names (``batch-size`` or ``batch_size``). Relative paths are taken
relative to the file's folder, so a cron job can run from anywhere. Flags given on the
command line win over the file. An unknown key or a wrong type is an error naming both.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from .config import FORMATS
from .errors import UsageError


def _str(value):
    return value if isinstance(value, str) else None


def _int(value):
    return value if type(value) is int else None   # bool is an int in Python: not here


def _number(value):
    return float(value) if type(value) in (int, float) else None


def _bool(value):
    return value if isinstance(value, bool) else None


def _str_list(value):
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


# key -> (argparse dest, converter returning None for a wrong type, what the type should be)
KEYS = {
    "inputs": ("inputs", _str_list, "a list of paths"),
    "output": ("output", _str, "a path"),
    "models": ("models", _str_list, "a list of model names"),
    "weights": ("weights", _str, '"pretrained" or "untrained"'),
    "params": ("params", lambda v: v if isinstance(v, dict) and all(isinstance(x, str) for x in v.values()) else None,
               "a table of model = path"),
    "model-root": ("model_root", _str, "a path"),
    "target": ("target", lambda v: str(v) if _int(v) is not None else _str(v), "a class id or name"),
    "batch-size": ("batch_size", _int, "a whole number"),
    "seed": ("seed", _int, "a whole number"),
    "title": ("title", _str, "text"),
    "author": ("author", _str, "text"),
    "format": ("formats", _str_list, f"a list from {', '.join(FORMATS)}"),
    "save-arrays": ("save_arrays", _bool, "true or false"),
    "quiet": ("quiet", _bool, "true or false"),
    "log-file": ("log_file", _str, "a path"),
    "methods": ("methods", _str_list, "a list of method names"),
    "smoothgrad-samples": ("smoothgrad_samples", _int, "a whole number"),
    "smoothgrad-noise": ("smoothgrad_noise", _number, "a number in (0, 1]"),
    "ig-steps": ("ig_steps", _int, "a whole number"),
    "ig-rule": ("ig_rule", _str, "a rule name such as riemann_trapezoid"),
    "ig-baseline": ("ig_baseline", _str, '"black" or "mean"'),
    "checks": ("checks", _str_list, "a list from faithfulness, sanity"),
    "sanity-images": ("sanity_images", _int, "a whole number"),
    "workers": ("workers", _int, "a whole number"),
    "scheduler": ("scheduler", _str, "an address such as tcp://host:8786"),
    "shard-size": ("shard_size", _int, "a whole number"),
    "pages": ("pages", _int, "a whole number"),
    "lang": ("lang", _str, '"en", "zh-TW" or "zh-CN"'),
    "baseline": ("baseline", _str, "a path"),
    "fail-on-drift": ("fail_on_drift", _bool, "true or false"),
    "drift-spearman": ("drift_spearman", _number, "a number in [-1, 1]"),
    "drift-top1": ("drift_top1", _int, "a whole number"),
}
PATH_KEYS = {"output", "model_root", "log_file", "baseline"}


def load(path: Path) -> dict:
    """argparse dest -> value, with paths resolved against the file's folder."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise UsageError(f"--config {path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config {path}: not valid TOML ({exc})") from None
    base = path.parent
    values = {}
    for key, raw in data.items():
        spec = KEYS.get(key.replace("_", "-"))
        if spec is None:
            raise UsageError(f"{path}: unknown key {key!r}",
                             hint=f"known keys: {', '.join(KEYS)}")
        dest, convert, expected = spec
        value = convert(raw)
        if value is None:
            raise UsageError(f"{path}: {key} must be {expected}, not {type(raw).__name__} {raw!r}")
        if dest in PATH_KEYS:
            value = base / Path(value).expanduser()
        elif dest == "inputs":
            value = [base / Path(v).expanduser() for v in value]
        elif dest == "params":
            value = [(name, base / Path(file).expanduser()) for name, file in value.items()]
        values[dest] = value
    return values

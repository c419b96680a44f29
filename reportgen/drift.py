"""What changed since the previous report: plain records in, a plain `drift` record out.

A report keeps a compact copy of every map (``maps/<image id>__<model>.npz``: per method the
224 x 224 map's 4 x 4 block means, 56 x 56 float16, ~3 kB) so that the next run can compare
its maps with these without keeping the full ones. Images are matched by the name the
report shows them under; an image whose content (sha256) changed is listed, not compared.
For every image present in both runs with the same content, per model and method: whether
the top-1 class changed, the change of the target class's probability, and the Spearman
rank correlation between the old and new compact maps. Besides: models whose weights
changed (SHA-1), models added or removed, and changed versions of reportgen, MXNet, NumPy.

Nothing here knows about HTML; rendering shows the record.
"""

from __future__ import annotations

import gettext
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .analysis import compare
from .errors import UsageError

COMPACT = 56                      # side of a compact map
MAPS_DIR = "maps"
VERSIONS = ("reportgen", "mxnet", "numpy")
MOVED_SHOWN = 10                  # images that moved most, listed in the report


@dataclass(frozen=True)
class Thresholds:
    spearman: float = 0.98        # a compared map below this correlation has drifted
    top1: int = 0                 # top-1 changes tolerated, over all images and models


def compact_map(values: np.ndarray) -> np.ndarray:
    """(224, 224) map -> (56, 56) float16 means of 4 x 4 blocks."""
    h, w = values.shape
    factor = h // COMPACT
    blocks = values[:COMPACT * factor, :COMPACT * factor].astype(np.float64)
    return blocks.reshape(COMPACT, factor, COMPACT, factor).mean(axis=(1, 3)).astype(np.float16)


def compact_file(image_id: str, model: str) -> str:
    """Report-relative path of one image x model's compact maps."""
    return f"{MAPS_DIR}/{image_id}__{model}.npz"


def save_compact_maps(path: Path, maps: dict[str, np.ndarray]) -> None:
    """method -> 224 map, as compact maps in one .npz (deterministic bytes: numpy writes a
    fixed zip date)."""
    np.savez_compressed(path, **{method: compact_map(values) for method, values in maps.items()})


@dataclass(frozen=True)
class Baseline:
    """The previous report, reduced to what the comparison needs."""

    source: str                   # the results.json compared against
    created: str
    maps_dir: Path
    versions: dict[str, str]
    weights: dict[str, str | None]                 # model -> SHA-1 (None when untrained)
    images: dict[str, dict]                        # shown name -> {id, sha256, models}


def find_baseline(explicit: Path | None, output_dir: Path) -> Path | None:
    """The results.json to compare against: --baseline (a report folder or its
    results.json; a usage error when it is neither), else the output folder's, if any."""
    if explicit is not None:
        path = explicit / "results.json" if explicit.is_dir() else explicit
        if not path.is_file():
            raise UsageError(f"--baseline {explicit}: no results.json there",
                             hint="name a previous report folder or its results.json")
        return path
    path = output_dir / "results.json"
    return path if path.is_file() else None


def load_baseline(path: Path) -> Baseline:
    """Read a previous results.json; a usage error naming it if it is not one."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"baseline {path}: not a readable results.json ({exc})",
                         hint="name a report written by reportgen, or move the file away") from None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("reportgen.results/"):
        raise UsageError(f"baseline {path}: not a reportgen results.json",
                         hint="name a report written by reportgen")
    run = data.get("run") or {}
    images = {}
    for image in data.get("images", []):
        if image.get("status") != "ok":
            continue
        images[image.get("shown") or image["path"]] = {
            "id": image["id"], "sha256": image.get("sha256"),
            "models": {name: {"top1": m["top5"][0]["class_id"], "top1_label": m["top5"][0]["label"],
                              "target": m["target"]["class_id"],
                              "probability": m["target"]["probability"]}
                       for name, m in image.get("models", {}).items()}}
    return Baseline(
        source=str(path), created=str(data.get("created", "")), maps_dir=path.parent / MAPS_DIR,
        versions={k: str(run.get(k)) for k in VERSIONS if k in run},
        weights={m["name"]: (m.get("weights") or {}).get("sha1") for m in data.get("models", [])},
        images=images)


def compare_with(baseline: Baseline, result, maps_dir: Path,
                 thresholds: Thresholds) -> tuple[dict, dict[str, dict]]:
    """The drift record of the new run `result` (a RunResult, whose compact maps are in
    `maps_dir`) against `baseline`, and per image id -> model its own entry (for the
    image's entry in results.json). Deterministic for the same inputs."""
    new_images = {image.shown or image.path: image for image in result.processed}
    added = sorted(set(new_images) - set(baseline.images))
    removed = sorted(set(baseline.images) - set(new_images))
    changed = sorted(name for name in set(new_images) & set(baseline.images)
                     if new_images[name].sha256 != baseline.images[name]["sha256"])
    same = [name for name in new_images if name in baseline.images and name not in changed]

    new_weights = {m.name: m.weights.get("sha1") for m in result.models}
    models = [m for m in new_weights if m in baseline.weights]
    methods = list(result.methods) or ["saliency"]
    per_image: dict[str, dict] = {}
    entries = []
    for name in same:
        image, old = new_images[name], baseline.images[name]
        for model in models:
            if model not in old["models"]:
                continue
            now, before = image.models[model], old["models"][model]
            entry = {"image": name, "model": model,
                     "top1": [before["top1"], now.top5[0].class_id],
                     "top1_labels": [before["top1_label"], now.top5[0].label],
                     "top1_changed": before["top1"] != now.top5[0].class_id,
                     "probability_change": (now.target.probability - before["probability"]
                                            if before["target"] == now.target.class_id else None),
                     "spearman": _map_correlations(baseline.maps_dir, old["id"], maps_dir,
                                                   image.id, model, methods)}
            entries.append(entry)
            per_image.setdefault(image.id, {})[model] = {k: v for k, v in entry.items()
                                                         if k not in ("image", "model")}
    summary = _summary(entries, models, methods, thresholds)
    versions = {k: [baseline.versions[k], str(result.run.get(k))] for k in VERSIONS
                if k in baseline.versions and baseline.versions[k] != str(result.run.get(k))}
    record = {
        "baseline": baseline.source,
        "baseline_created": baseline.created,
        "thresholds": {"spearman": thresholds.spearman, "top1": thresholds.top1},
        "images": {"added": added, "removed": removed, "changed": changed, "compared": len(same)},
        "models": {
            "added": [m for m in new_weights if m not in baseline.weights],
            "removed": [m for m in baseline.weights if m not in new_weights],
            "weights_changed": {m: [baseline.weights[m], new_weights[m]] for m in models
                                if baseline.weights[m] != new_weights[m]},
        },
        "versions": versions,
        **summary,
        "moved": _moved(entries)[:MOVED_SHOWN],
    }
    record["no_changes"] = not (added or removed or changed or record["models"]["added"]
                                or record["models"]["removed"] or record["models"]["weights_changed"]
                                or versions or summary["top1_changed"] or summary["maps_moved"]
                                or summary["maps_missing"])
    return record, per_image


def _map_correlations(old_dir: Path, old_id: str, new_dir: Path, new_id: str, model: str,
                      methods: list[str]) -> dict[str, float | None]:
    """method -> Spearman of the old and new compact maps; None where the previous
    report kept no map (an older report, or a method it did not run)."""
    old_path = old_dir / f"{old_id}__{model}.npz"
    if not old_path.is_file():
        return {method: None for method in methods}
    with np.load(old_path) as old, np.load(new_dir / f"{new_id}__{model}.npz") as new:
        return {method: (_spearman(old[method], new[method]) if method in old.files else None)
                for method in methods}


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if np.array_equal(a, b):      # exactly 1, not 1 - 1 ulp from the rounding of the formula
        return 1.0
    value = compare.spearman(a.astype(np.float64), b.astype(np.float64))
    return None if math.isnan(value) else value     # NaN: one map is constant


def _summary(entries: list[dict], models: list[str], methods: list[str],
             thresholds: Thresholds) -> dict:
    per_model = {}
    for model in models:
        mine = [e for e in entries if e["model"] == model]
        changes = [abs(e["probability_change"]) for e in mine if e["probability_change"] is not None]
        per_model[model] = {
            "compared": len(mine),
            "top1_changed": sum(e["top1_changed"] for e in mine),
            "probability_change_abs": compare.summarize(changes),
            "spearman": {method: compare.summarize([e["spearman"][method] for e in mine
                                                    if e["spearman"][method] is not None])
                         for method in methods},
            "below_threshold": {method: sum(1 for e in mine if e["spearman"][method] is not None
                                            and e["spearman"][method] < thresholds.spearman)
                                for method in methods},
        }
    top1 = sum(m["top1_changed"] for m in per_model.values())
    moved = sum(n for m in per_model.values() for n in m["below_threshold"].values())
    missing = sum(1 for e in entries for v in e["spearman"].values() if v is None)
    return {"per_model": per_model, "top1_changed": top1, "maps_moved": moved,
            "maps_missing": missing,
            "exceeded": top1 > thresholds.top1 or moved > 0}


def _moved(entries: list[dict]) -> list[dict]:
    """Image x model pairs by how much they moved: lowest map correlation first, then a
    changed top-1, then the largest probability change; ties in the run's order."""
    def key(entry):
        values = [v for v in entry["spearman"].values() if v is not None]
        lowest = min(values) if values else 1.0
        change = abs(entry["probability_change"] or 0.0)
        return (lowest, not entry["top1_changed"], -change)

    moved = [e for e in entries if e["top1_changed"] or (e["probability_change"] or 0.0) != 0.0
             or any(v is not None and v < 1.0 for v in e["spearman"].values())]
    return sorted(moved, key=key)


def summary_line(record: dict, translations=None) -> str:
    """One line for the terminal and the log, in the language of `translations`."""
    t = translations or gettext.NullTranslations()
    _ = t.gettext
    images = record["images"]
    compared = t.ngettext("%(num)d image compared", "%(num)d images compared",
                          images["compared"]) % {"num": images["compared"]}
    if record["no_changes"]:
        return _("none (%(compared)s)") % {"compared": compared}
    parts = []
    if images["added"]:
        n = len(images["added"])
        parts.append(t.ngettext("%(num)d image added", "%(num)d images added", n) % {"num": n})
    if images["removed"]:
        n = len(images["removed"])
        parts.append(t.ngettext("%(num)d image removed", "%(num)d images removed", n) % {"num": n})
    if images["changed"]:
        n = len(images["changed"])
        parts.append(t.ngettext("%(num)d image changed", "%(num)d images changed", n) % {"num": n})
    models = record["models"]
    if models["added"]:
        parts.append(_("models added: %(models)s") % {"models": ", ".join(models["added"])})
    if models["removed"]:
        parts.append(_("models removed: %(models)s") % {"models": ", ".join(models["removed"])})
    if models["weights_changed"]:
        parts.append(_("weights changed: %(models)s") % {"models": ", ".join(models["weights_changed"])})
    if record["versions"]:
        parts.append(_("versions changed: %(versions)s") % {"versions": ", ".join(
            f"{k} {old} -> {new}" for k, (old, new) in record["versions"].items())})
    parts.append(_("top-1 changed %(top1)d times, %(moved)d maps below Spearman %(threshold)s "
                   "(%(compared)s)") % {"top1": record["top1_changed"], "moved": record["maps_moved"],
                                       "threshold": record["thresholds"]["spearman"],
                                       "compared": compared})
    return _("; ").join(parts)

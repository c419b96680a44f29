"""The report's files: charts, report.html, report.pdf and results.json, written into the
staging folder (see publish.py for how it is moved into place)."""

from __future__ import annotations

import json
import math
import resource
import textwrap
import time
from dataclasses import asdict, replace
from pathlib import Path

from .records import RunResult

SCHEMA = "reportgen.results/2"


def write_outputs(result: RunResult, ws, formats: tuple[str, ...], started: float,
                  progress, lang: str = "en") -> list[Path]:
    """Charts, report.html, report.pdf (in `lang`) and results.json into the workspace."""
    from . import i18n
    from .render import charts, html, pdf  # rendering only: never imports mxnet

    _ = i18n.translations(lang).gettext
    timings = result.run["seconds"]
    # Drawn in a helper process while this one lays out the PDF, which reads each chart
    # once the helper has written it; the helper then writes report.html.
    html_name = "report.html" if "html" in formats else None
    drawing = charts.BackgroundCharts(result, ws.root, lang, html_name)
    result = replace(result, charts=drawing.charts)
    chart_files = {(ws.root / asset).resolve(): name for name, asset in drawing.charts.items()}

    def wait_for_charts(path: Path) -> None:
        if path in chart_files:
            drawing.wait(chart_files[path])

    files = []
    try:
        if "pdf" in formats:
            # Which phase sets the peak: the networks, or WeasyPrint's document for the PDF.
            result.run["peak_rss_before_pdf_mb"] = peak_rss_mb()
            progress.message(_("rendering PDF"))
            t0 = time.perf_counter()
            waited = drawing.blocked
            print_html = html.write_report(result, ws.root, ".print.html", for_print=True, lang=lang)
            files.append(pdf.write_pdf(print_html, ws.root, wait_for_charts))
            print_html.unlink()
            timings["pdf"] = time.perf_counter() - t0 - (drawing.blocked - waited)
        drawing.wait()
    except BaseException:
        drawing.cancel()
        raise
    # charts: only the time this process spent on the charts and report.html (starting the
    # helper, waiting for it).
    timings["charts"] = drawing.blocked
    if html_name is not None:
        files.insert(0, ws.root / html_name)
    timings["total"] = time.perf_counter() - started
    result.run["peak_rss_mb"] = peak_rss_mb()
    files.append(write_results_json(result, ws.root / "results.json"))
    files.append(write_results_csv(result, ws.root / "results.csv"))
    return files


def peak_rss_mb() -> float:
    """Peak resident memory of this process: the kernel's VmHWM, which starts anew at exec.
    (getrusage's ru_maxrss survives fork and exec, so a process started by a big parent
    would report the parent's peak.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_results_json(result: RunResult, path: Path) -> Path:
    data = {
        "schema": SCHEMA,
        "title": result.title,
        "author": result.author,
        "created": result.created,
        "run": result.run,
        "target": result.target_mode,
        "weights_meaningful": result.weights_meaningful,
        "warnings": list(result.warnings),
        "methods": result.methods,
        "checks": list(result.checks),
        "pages": result.pages,
        **({"drift": result.drift} if result.drift is not None else {}),
        "models": [
            {"name": m.name, "zoo_name": m.zoo_name, "family": m.family,
             "weights": {"source": m.weights["kind"], "file": m.weights["path"],
                         "sha1": m.weights["sha1"], "seed": m.weights["seed"]},
             "first_conv_output_shape": list(m.conv1_shape), "gradcam_layer": m.gradcam_layer,
             "conv_layers": list(m.conv_layers), "seconds": m.seconds,
             **({"sanity": m.sanity} if m.sanity is not None else {})}
            for m in result.models
        ],
        "images": [],
        "summary": asdict(result.summary),
    }
    # The images are written one at a time, so that a run over 10,000 of them does not hold
    # a second copy of every record (measured: 10,000 images peaked at 978 MB, against
    # 457 MB for 100, when the whole document was built first). The text is the same as
    # json.dumps(..., indent=2) of the whole: each image indented as a list item at depth 1.
    def dumps(value) -> str:
        return json.dumps(_finite(value), indent=2, ensure_ascii=False, allow_nan=False)

    text = dumps(data)
    marker = '\n  "images": [],'          # a raw newline never occurs inside a JSON string
    head, tail = text.split(marker, 1)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(head)
        if not result.images:
            handle.write(marker)
        else:
            handle.write('\n  "images": [')
            for k, image in enumerate(result.images):
                entry = _image_entry(image)
                if image.id in result.image_drift:
                    entry["drift"] = result.image_drift[image.id]
                handle.write(("," if k else "") + "\n" + textwrap.indent(dumps(entry), "    "))
            handle.write("\n  ],")
        handle.write(tail + "\n")
    return path


def _image_entry(i) -> dict:
    return {"id": i.id, "path": i.path, "shown": i.shown, "sha256": i.sha256, "status": i.status,
            "reason": i.reason or None, "notes": list(i.notes),
            "original_size": list(i.original_size) if i.original_size else None,
            "models": {name: _image_model(r) for name, r in i.models.items()},
            "agreement": i.agreement}


def _image_model(r) -> dict:
    """One image x model: predictions, and per method its map's numbers (what was not run
    is absent)."""
    methods = {}
    for name, method in r.methods.items():
        entry = {"stats": method.stats}
        if method.completeness_gap is not None:
            entry["completeness_gap"] = method.completeness_gap
        if method.faithfulness is not None:
            entry["faithfulness"] = method.faithfulness
        methods[name] = entry
    out = {"top5": [asdict(p) for p in r.top5], "target": asdict(r.target),
           "target_logit": r.target_logit, "methods": methods}
    if r.random_order is not None:
        out["faithfulness_random_order"] = r.random_order
    return out


def _finite(value):
    """NaN and infinities become null: results.json stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and getattr(value, "shape", None) == ():   # numpy scalars
        return _finite(value.item())
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def results_csv_columns(result: RunResult) -> list[str]:
    methods = list(result.methods) or ["saliency"]
    others = [f"{method}_{metric}_with_{m.name}" for method in methods
              for m in result.models for metric in ("spearman", "iou_top5")]
    return (["image", "shown", "status", "reason", "sha256", "model", "top1_class", "top1_label",
             "top1_probability", "target_class", "target_probability"]
            + [f"{method}_{metric}" for method in methods
               for metric in ("concentration_top5", "edge_share_top20")]
            + (["integrated_gradients_completeness_gap"] if "integrated_gradients" in methods else [])
            + ([f"{method}_{curve}_auc" for method in methods for curve in ("deletion", "insertion")]
               + ["random_deletion_auc", "random_insertion_auc"]
               if "faithfulness" in result.checks else [])
            + others)


def write_results_csv(result: RunResult, path: Path) -> Path:
    """One row per image x model (a skipped image: one row with its reason), for
    spreadsheets: predictions, each method's map statistics, the checks, and the agreement
    with every other model. Empty cells for what does not apply."""
    import csv

    columns = results_csv_columns(result)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, restval="", lineterminator="\n")
        writer.writeheader()
        for image in result.images:
            base = {"image": image.id, "shown": image.shown or image.path, "status": image.status,
                    "reason": image.reason, "sha256": image.sha256 or ""}
            if image.status != "ok":
                writer.writerow(base)
                continue
            for name, r in image.models.items():
                row = dict(base, model=name, top1_class=r.top5[0].class_id, top1_label=r.top5[0].label,
                           top1_probability=_cell(r.top5[0].probability), target_class=r.target.class_id,
                           target_probability=_cell(r.target.probability))
                for method, entry in r.methods.items():
                    for metric in ("concentration_top5", "edge_share_top20"):
                        row[f"{method}_{metric}"] = _cell(entry.stats[metric])
                    if entry.completeness_gap is not None:
                        row[f"{method}_completeness_gap"] = _cell(entry.completeness_gap)
                    if entry.faithfulness is not None:
                        for curve in ("deletion", "insertion"):
                            row[f"{method}_{curve}_auc"] = _cell(entry.faithfulness[f"{curve}_auc"])
                if r.random_order is not None:
                    for curve in ("deletion", "insertion"):
                        row[f"random_{curve}_auc"] = _cell(r.random_order[f"{curve}_auc"])
                for method, pairs in image.agreement.items():
                    for pair, metrics in pairs.items():
                        a, b = pair.split("|")
                        if name in (a, b):
                            other = b if name == a else a
                            for metric, value in metrics.items():
                                row[f"{method}_{metric}_with_{other}"] = _cell(value)
                writer.writerow(row)
    return path


def _cell(value) -> str:
    """Numbers as repr-exact decimals (what results.json holds); NaN as an empty cell."""
    value = float(value)
    return repr(value) if math.isfinite(value) else ""

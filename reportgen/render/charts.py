"""Charts over the image set, drawn with matplotlib's object API (no pyplot state)."""

from __future__ import annotations

import gettext as gettext_module
import os
import pickle
import select
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import chart_helper
from .. import i18n
from ..analysis import findings
from ..i18n import N_
from ..records import RunResult

# One hue per family, two shades for the two VGGs: the comparison is VGG vs ResNet.
MODEL_COLORS = {"vgg19": "#1f5fa8", "vgg16": "#6fa3dc", "resnet152": "#d9661f"}
DPI = 120


def color(model: str) -> str:
    return MODEL_COLORS.get(model, "#555555")


def _small_text(fig: Figure) -> None:
    for text in fig.findobj(match=lambda artist: hasattr(artist, "set_fontsize")):
        text.set_fontsize(7.5)


def _save(fig: Figure, path: Path) -> None:
    _small_text(fig)
    FigureCanvasAgg(fig)
    # No Software/date metadata: the same numbers give byte-identical PNGs.
    fig.savefig(path, dpi=DPI, metadata={"Software": None}, bbox_inches="tight")


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


METHOD_SHADES = ("#333333", "#777777", "#aaaaaa", "#d0d0d0")
SHORT_LABELS = {"saliency": N_("saliency"), "gradcam": "Grad-CAM", "smoothgrad": "SmoothGr.",
                "integrated_gradients": "IG"}


def agreement_chart(result: RunResult, path: Path) -> None:
    """Per model pair and method: mean Spearman correlation and top-5 % IoU of the maps,
    with std over images."""
    methods = list(result.summary.per_pair)
    pairs = list(result.summary.per_pair[methods[0]])
    fig = Figure(figsize=(6.4, 2.9))
    x = np.arange(len(pairs))
    width = 0.8 / len(methods)
    for k, (metric, label) in enumerate([("spearman", _("Spearman rank correlation")),
                                         ("iou_top5", _("IoU of top 5 % pixels"))]):
        ax = fig.add_subplot(1, 2, k + 1)
        for i, method in enumerate(methods):
            stats = [result.summary.per_pair[method][p][metric] for p in pairs]
            ax.bar(x + (i - (len(methods) - 1) / 2) * width, [s["mean"] for s in stats], width,
                   yerr=[s["std"] for s in stats], capsize=2, label=_(findings.label(method)),
                   color=METHOD_SHADES[i % len(METHOD_SHADES)], edgecolor="black", linewidth=0.3)
        # Stacked, not tilted, and the legend above the panels rather than beside them:
        # tilted names, then stacked ones in panels narrowed by the legend, ran into each
        # other (both seen in the PDF).
        ax.set_xticks(x, [p.replace("|", "\n") for p in pairs], fontsize=7)
        ax.set_ylabel(_("%(quantity)s\n(mean ± std)") % {"quantity": label}, fontsize=8)
        ax.axhline(0, color="black", linewidth=0.6)
        _style(ax)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, frameon=False, loc="upper center", ncol=len(methods), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    _save(fig, path)


def saliency_character_chart(result: RunResult, path: Path) -> None:
    """Per method and model, one dot per image: how concentrated the map is, and how much
    of it lies on the image's strongest edges; dashed lines mark what a uniform map would
    score."""
    models = [m.name for m in result.models]
    methods = list(result.summary.per_model)
    fig = Figure(figsize=(6.4, 2.8))
    panels = [("concentration_top5", _("share of the map in its top 5 % pixels"), 0.05),
              ("edge_share_top20", _("share of the map on the 20 %\nstrongest-edge pixels"), 0.20)]
    rng = np.random.default_rng(0)  # fixed jitter: the same run draws the same chart
    spread = 0.8 / len(models)
    for k, (metric, label, uniform) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        for g, method in enumerate(methods):
            for i, model in enumerate(models):
                centre = g + (i - (len(models) - 1) / 2) * spread
                values = [img.models[model].methods[method].stats[metric] for img in result.processed]
                values = [v for v in values if v == v]
                jitter = rng.uniform(-0.25, 0.25, len(values)) * spread
                ax.scatter(centre + jitter, values, s=8, color=color(model), alpha=0.8,
                           label=model if g == 0 else None)
                if values:
                    ax.hlines(np.mean(values), centre - spread / 2.5, centre + spread / 2.5,
                              color="black", linewidth=1.2)
        ax.axhline(uniform, color="#888888", linestyle="--", linewidth=0.8)
        ax.set_xticks(range(len(methods)), [_(SHORT_LABELS.get(m, m)) for m in methods])
        ax.tick_params(axis="x", labelrotation=20)
        ax.set_ylabel(label, fontsize=8)
        ax.set_ylim(0, 1)
        _style(ax)
    fig.axes[-1].legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=1.5)
    fig.tight_layout()
    _save(fig, path)


PAIR_STYLES = ("-", "--", ":", "-.")


def distributions_chart(result: RunResult, path: Path) -> None:
    """Over the whole set, for the saliency maps: the distribution of each model pair's
    Spearman correlation, and of each model's concentration (histograms with fixed bins,
    as shares of the images, so sets of any size compare)."""
    models = [m.name for m in result.models]
    pairs = list(result.summary.per_pair.get("saliency", {}))
    fig = Figure(figsize=(6.4, 2.9))
    panels = []
    if pairs:
        panels.append(("pairs", _("Spearman correlation of the saliency maps"), np.linspace(-1, 1, 41)))
    panels.append(("models", _("concentration of the saliency map\n(share in its top 5 % pixels)"),
                   np.linspace(0, 1, 41)))
    for k, (kind, label, bins) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        if kind == "pairs":
            for i, pair in enumerate(pairs):
                values = [img.agreement["saliency"][pair]["spearman"] for img in result.processed]
                _share_histogram(ax, values, bins, _("%(a)s vs %(b)s") % dict(zip("ab", pair.split("|"))),
                                 "black", PAIR_STYLES[i % 4])
        else:
            for model in models:
                values = [img.models[model].methods["saliency"].stats["concentration_top5"]
                          for img in result.processed]
                _share_histogram(ax, values, bins, model, color(model), "-")
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel(_("share of the images"))
        # Above the panel: "best" put it over the bars when they sat mid-axis (seen in the PDF).
        ax.legend(frameon=False, fontsize=6.5, loc="lower left", bbox_to_anchor=(0.0, 1.0))
        _style(ax)
    fig.tight_layout()
    _save(fig, path)


def _share_histogram(ax, values, bins, label, colour, style) -> None:
    values = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    counts, _ = np.histogram(np.clip(values, bins[0], bins[-1]), bins=bins)
    shares = counts / max(1, len(values))
    ax.stairs(shares, bins, label=f"{label} (n={len(values):,})", color=colour,
              linestyle=style, linewidth=1.0)


def conv_weights_chart(result: RunResult, path: Path) -> None:
    """Std and mean |weight| of each conv layer against relative depth (VGG has 13-16 conv
    layers, ResNet152 155: relative depth puts them on one axis), one colour per model."""
    fig = Figure(figsize=(6.4, 2.6))
    panels = [("std", _("weight std")), ("mean_abs", _("|mean weight|"))]
    for k, (key, label) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        for model in result.models:
            rows = model.conv_layers
            depth = np.linspace(0, 1, len(rows)) if len(rows) > 1 else np.zeros(1)
            values = [row["std"] if key == "std" else abs(row["mean"]) for row in rows]
            ax.plot(depth, values, marker="o", markersize=2, linewidth=0.8,
                    color=color(model.name), label=model.name)
        ax.set_yscale("log")
        ax.set_xlabel(_("relative depth of the conv layer"))
        ax.set_ylabel(label)
        _style(ax)
    fig.axes[0].legend(frameon=False)
    fig.tight_layout()
    _save(fig, path)


def _(message: str) -> str:
    """The message in the language of the charts being drawn (see draw_all)."""
    return _LANGUAGE.gettext(message)


_LANGUAGE = gettext_module.NullTranslations()
# Noto Sans CJK after DejaVu Sans: matplotlib (>= 3.6) falls back glyph by glyph, so CJK
# labels render where fonts-noto-cjk is installed, and Latin text is as before. Matplotlib
# reads only the first face of the .ttc collection Debian ships (JP); it covers the Han
# characters of both Chinese scripts.
FONTS = {"en": ["DejaVu Sans"], "zh-TW": ["DejaVu Sans", "Noto Sans CJK JP"],
         "zh-CN": ["DejaVu Sans", "Noto Sans CJK JP"]}


def draw_all(result: RunResult, root: Path, lang: str = "en",
             on_drawn: Callable[[str], None] | None = None) -> dict[str, str]:
    """Every chart, labelled in `lang`, in the order the report shows them. Drawn one after
    the other in this thread (the language is module state while they are drawn);
    on_drawn(name), if given, is called as each chart's file is written."""
    global _LANGUAGE
    _LANGUAGE = i18n.translations(lang)
    try:
        with matplotlib.rc_context({"font.family": FONTS[lang]}):
            return _draw_all(result, root, on_drawn)
    finally:
        _LANGUAGE = gettext_module.NullTranslations()


def planned(result: RunResult) -> dict[str, str]:
    """The charts draw_all draws for `result`: name -> report-relative file, in the order
    the report shows them (the helper draws them in this order; the PDF reads them in it)."""
    charts = {}
    if result.processed and len(result.models) > 1:
        charts["agreement"] = "assets/chart__agreement.png"
    if result.processed:
        charts["saliency_character"] = "assets/chart__saliency_character.png"
        charts["distributions"] = "assets/chart__distributions.png"
    charts["conv_weights"] = "assets/chart__conv_weights.png"
    return charts


DRAW = {"agreement": agreement_chart, "saliency_character": saliency_character_chart,
        "distributions": distributions_chart, "conv_weights": conv_weights_chart}


def _draw_all(result: RunResult, root: Path, on_drawn=None) -> dict[str, str]:
    charts = planned(result)
    for name, asset in charts.items():
        DRAW[name](result, root / asset)
        if on_drawn is not None:
            on_drawn(name)
    return charts


def render_job(result: RunResult, root: Path, lang: str, html_name: str | None,
               on_drawn: Callable[[str], None] | None = None) -> None:
    """A BackgroundCharts job: the charts, then the screen HTML if html_name is given."""
    draw_all(result, root, lang, on_drawn)
    if html_name is not None:
        from . import html
        html.write_report(result, root, html_name, lang=lang)


HELPER_TIMEOUT_S = 120.0   # 4 charts take 1 s at 100 images: a helper that has not
                           # drawn them by then is stuck

class BackgroundCharts:
    """draw_all in the helper process, beside WeasyPrint's layout of the PDF in this one:
    both are single-threaded, and at the end of a run the network no longer uses the other
    core (measured: 0.7 s of charts at 16 and at 100 images, on the run's critical path).
    The helper draws the same bytes as draw_all here (tested) and reports each chart as it
    is written, so the PDF waits for the one it reads and no more. With html_name it then
    writes the report's screen HTML there too (html.write_report: 0.13 s at 16 images,
    0.3 s at 100, off the critical path), which the PDF does not read.
    `charts` (name -> file) is known at once; `wait()` returns when all files are written,
    `wait(name)` when that chart is. Should the helper fail, die or hang, the rest is done
    here instead (a chart's own error is then raised from here): a run never waits on it
    for good."""

    def __init__(self, result: RunResult, root: Path, lang: str = "en",
                 html_name: str | None = None):
        started = time.perf_counter()
        self.charts = planned(result)
        self.blocked = 0.0          # seconds this process spent on the charts and HTML
        self._drawn: set[str] = set()
        self._unread = b""          # the helper's output not yet taken as lines
        self._args = (replace(result, charts=self.charts), Path(root), lang, html_name)
        self._job = Path(root) / ".charts-job.pickle"
        self._helper = chart_helper.take()
        if self._helper is not None:
            try:
                with open(self._job, "wb") as job:
                    pickle.dump(self._args, job, protocol=pickle.HIGHEST_PROTOCOL)
                self._helper.stdin.write(f"{self._job}\n")
                self._helper.stdin.flush()
            except (OSError, ValueError, pickle.PicklingError):
                self._stop_helper()
        self.blocked += time.perf_counter() - started

    def wait(self, name: str | None = None) -> dict[str, str]:
        """Returns once chart `name` is written, or with None once the whole job is."""
        if self._args is None or (name is not None and name in self._drawn):
            return self.charts
        started = time.perf_counter()
        try:
            while True:
                reply = self._helper_reply()
                if reply.startswith(chart_helper.DRAWN):
                    self._drawn.add(reply[len(chart_helper.DRAWN):])
                    if name is not None and name in self._drawn:
                        return self.charts
                    continue
                if reply != "ok":
                    self._stop_helper()         # before this process writes the same files
                    render_job(*self._args)
                self._finished(helper_done=True)
                return self.charts
        except BaseException:
            self._finished()
            raise
        finally:
            self.blocked += time.perf_counter() - started

    def cancel(self) -> None:
        """Stop the helper (the run failed or was interrupted): nothing waits for it."""
        self._finished()

    def _finished(self, helper_done: bool = False) -> None:
        self._stop_helper(helper_done)
        self._args = None

    def _helper_reply(self) -> str:
        """The helper's next line. Read from the pipe's descriptor with a buffer of our
        own: select() cannot see lines that a buffered file object has already taken out
        of the pipe, and would wait out the timeout while they sit there."""
        if self._helper is None:
            return "no helper"
        deadline = time.monotonic() + HELPER_TIMEOUT_S
        fd = self._helper.stdout.fileno()
        while b"\n" not in self._unread:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return "timed out"
            chunk = os.read(fd, 4096)
            if not chunk:
                return "helper ended"
            self._unread += chunk
        line, self._unread = self._unread.split(b"\n", 1)
        return line.decode(errors="replace").strip()

    def _stop_helper(self, helper_done: bool = False) -> None:
        """Close the helper's input, which ends it. helper_done: it has answered the job, so
        nothing waits for its exit (0.15-0.2 s of interpreter shutdown with matplotlib
        loaded, measured): a daemon thread reaps it. Otherwise it is gone on return."""
        helper, self._helper = self._helper, None
        if helper is not None:
            if helper_done:
                threading.Thread(target=_end_helper, args=(helper,), daemon=True,
                                 name="reportgen-chart-helper-exit").start()
            else:
                _end_helper(helper)
        self._job.unlink(missing_ok=True)


def _end_helper(helper: subprocess.Popen) -> None:
    try:
        helper.stdin.close()
        helper.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        helper.kill()
        helper.wait()

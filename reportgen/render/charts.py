"""Charts over the image set, drawn with matplotlib's object API (no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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


def agreement_chart(result: RunResult, path: Path) -> None:
    """Per model pair: mean Spearman correlation and top-5 % IoU, with std over images."""
    pairs = list(result.summary.per_pair)
    fig = Figure(figsize=(6.4, 2.8))
    ax = fig.add_subplot()
    x = np.arange(len(pairs))
    width = 0.38
    for k, (metric, label, shade) in enumerate(
            [("spearman", "Spearman rank correlation", "#444444"),
             ("iou_top5", "IoU of top 5 % pixels", "#aaaaaa")]):
        means = [result.summary.per_pair[p][metric]["mean"] for p in pairs]
        stds = [result.summary.per_pair[p][metric]["std"] for p in pairs]
        ax.bar(x + (k - 0.5) * width, means, width, yerr=stds, capsize=3, color=shade, label=label)
    ax.set_xticks(x, [p.replace("|", " vs ") for p in pairs])
    ax.set_ylabel("agreement (mean ± std)")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _style(ax)
    _save(fig, path)


def saliency_character_chart(result: RunResult, path: Path) -> None:
    """Per model, one dot per image: how concentrated the map is, and how much of it lies on
    the image's strongest edges; dashed lines mark what a uniform map would score."""
    models = [m.name for m in result.models]
    fig = Figure(figsize=(6.4, 2.8))
    panels = [("concentration_top5", "share of saliency in top 5 % pixels", 0.05),
              ("edge_share_top20", "share of saliency on the 20 %\nstrongest-edge pixels", 0.20)]
    rng = np.random.default_rng(0)  # fixed jitter: the same run draws the same chart
    for k, (metric, label, uniform) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        for i, model in enumerate(models):
            values = [img.models[model].saliency[metric] for img in result.processed]
            values = [v for v in values if v == v]
            jitter = rng.uniform(-0.12, 0.12, len(values))
            ax.scatter(i + jitter, values, s=14, color=color(model), alpha=0.8)
            if values:
                ax.hlines(np.mean(values), i - 0.3, i + 0.3, color="black", linewidth=1.5)
        ax.axhline(uniform, color="#888888", linestyle="--", linewidth=0.8)
        ax.set_xticks(range(len(models)), models)
        ax.set_ylabel(label, fontsize=8)
        ax.set_ylim(0, 1)
        _style(ax)
    fig.tight_layout()
    _save(fig, path)


def conv_weights_chart(result: RunResult, path: Path) -> None:
    """Std and mean |weight| of each conv layer against relative depth (VGG has 13-16 conv
    layers, ResNet152 155: relative depth puts them on one axis), one colour per model."""
    fig = Figure(figsize=(6.4, 2.6))
    panels = [("std", "weight std"), ("mean_abs", "|mean weight|")]
    for k, (key, label) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        for model in result.models:
            rows = model.conv_layers
            depth = np.linspace(0, 1, len(rows)) if len(rows) > 1 else np.zeros(1)
            values = [row["std"] if key == "std" else abs(row["mean"]) for row in rows]
            ax.plot(depth, values, marker="o", markersize=2, linewidth=0.8,
                    color=color(model.name), label=model.name)
        ax.set_yscale("log")
        ax.set_xlabel("relative depth of the conv layer")
        ax.set_ylabel(label)
        _style(ax)
    fig.axes[0].legend(frameon=False)
    fig.tight_layout()
    _save(fig, path)


def draw_all(result: RunResult, root: Path) -> dict[str, str]:
    charts = {}
    if result.processed and len(result.models) > 1:
        charts["agreement"] = "assets/chart__agreement.png"
        agreement_chart(result, root / charts["agreement"])
    if result.processed:
        charts["saliency_character"] = "assets/chart__saliency_character.png"
        saliency_character_chart(result, root / charts["saliency_character"])
    charts["conv_weights"] = "assets/chart__conv_weights.png"
    conv_weights_chart(result, root / charts["conv_weights"])
    return charts

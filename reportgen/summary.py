"""Numbers over the image set, from the per-image records (each image's pairwise agreement
is computed with its shard, ``shards.image_agreement``): per-model summaries, faithfulness,
the IG completeness gap, the sanity cascade, and the findings sentences."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .analysis import compare, findings
from .records import ImageResult, ModelResult, Summary

MAP_METRICS = ("concentration_top5", "edge_share_top20")
FAITHFULNESS_METRICS = ("deletion_auc", "insertion_auc")
IG_GAP_FLAG = 0.05


def compare_models(results: list[ImageResult], models: list[ModelResult],
                   methods: tuple[str, ...]) -> Summary:
    """Over the set: per method the pairwise agreement and each model's map statistics;
    top-1 agreement, the checks, the findings."""
    model_names = [m.name for m in models]
    pair_values: dict[str, dict[str, dict[str, list[float]]]] = {m: {} for m in methods}
    for image in results:
        if image.status != "ok":
            continue
        for method in methods:
            for pair, metrics in image.agreement[method].items():
                for metric, value in metrics.items():
                    pair_values[method].setdefault(pair, {}).setdefault(metric, []).append(value)
    ok = [i for i in results if i.status == "ok"]
    per_model = {method: {m: {metric: compare.summarize([i.models[m].methods[method].stats[metric] for i in ok])
                              for metric in MAP_METRICS}
                          for m in model_names}
                 for method in methods}
    per_pair = {method: {pair: {metric: compare.summarize(values) for metric, values in metrics.items()}
                         for pair, metrics in pairs.items()}
                for method, pairs in pair_values.items()}
    top1 = {}
    for a, b in compare.model_pairs(model_names):
        agree = sum(i.models[a].top5[0].class_id == i.models[b].top5[0].class_id for i in ok)
        top1[f"{a}|{b}"] = _rate(agree, len(ok))
    all_agree = sum(len({i.models[m].top5[0].class_id for m in model_names}) == 1 for i in ok)
    summary = Summary(per_model, per_pair, top1, _rate(all_agree, len(ok)),
                      faithfulness=_faithfulness(ok, model_names, methods),
                      completeness_gap=_completeness_gap(ok, model_names, methods),
                      sanity=_sanity(models, methods))
    families = {m.name: m.family for m in models}
    return replace(summary, findings=tuple(findings.findings(summary, families, methods)))


def _faithfulness(ok: list[ImageResult], model_names: list[str], methods) -> dict:
    """method -> model -> {deletion_auc, insertion_auc, random_deletion_auc,
    random_insertion_auc: summarize; beats_random: rate}. Empty when the check did not run."""
    if not ok or ok[0].models[model_names[0]].random_order is None:
        return {}
    out = {}
    for method in methods:
        out[method] = {}
        for m in model_names:
            checked = [i.models[m].methods[method].faithfulness for i in ok]
            randoms = [i.models[m].random_order for i in ok]
            row = {metric: compare.summarize([c[metric] for c in checked]) for metric in FAITHFULNESS_METRICS}
            row.update({f"random_{metric}": compare.summarize([r[metric] for r in randoms])
                        for metric in FAITHFULNESS_METRICS})
            row["beats_random"] = _rate(sum(bool(c["beats_random"]) for c in checked), len(checked))
            out[method][m] = row
    return out


def _completeness_gap(ok: list[ImageResult], model_names: list[str], methods) -> dict:
    """model -> summarize of the IG gap, and the images whose gap exceeds IG_GAP_FLAG."""
    if "integrated_gradients" not in methods:
        return {}
    out = {"flag": IG_GAP_FLAG, "flagged": [], "per_model": {}}
    for m in model_names:
        gaps = [(i, i.models[m].methods["integrated_gradients"].completeness_gap) for i in ok]
        out["per_model"][m] = compare.summarize([g for _, g in gaps])
        out["flagged"] += [{"image": i.id, "shown": i.shown or i.path, "model": m, "gap": g}
                           for i, g in gaps if g is None or not np.isfinite(g) or g > IG_GAP_FLAG]
    return out


def _sanity(models: list[ModelResult], methods) -> dict:
    """method -> model -> {"stages": [per stage: {"stage", "spearman": summarize,
    "ssim": summarize}], "final_spearman", "final_ssim", "insensitive"}: insensitive when,
    with every stage randomized, the mean Spearman is still findings.SANITY_FLAG or more."""
    if not models or models[0].sanity is None:
        return {}
    out = {}
    for method in methods:
        out[method] = {}
        for m in models:
            stages = [{"stage": row["stage"], "spearman": compare.summarize(row["spearman"]),
                       "ssim": compare.summarize(row["ssim"])}
                      for row in m.sanity["methods"][method]]
            final_spearman = stages[-1]["spearman"]["mean"]
            final_ssim = stages[-1]["ssim"]["mean"]
            out[method][m.name] = {
                "stages": stages, "images": m.sanity["images"],
                "final_spearman": final_spearman, "final_ssim": final_ssim,
                "insensitive": bool(final_spearman >= findings.SANITY_FLAG)}
    return out


def _rate(agree: int, of: int) -> dict:
    return {"agree": agree, "of": of, "rate": agree / of if of else float("nan")}

"""Sentences generated from the numbers of a run, never written by hand: does a difference
between VGG and ResNet survive a change of method, is each map faithful, does it depend on
the weights. Each sentence states the count it rests on."""

from __future__ import annotations

import math

METHOD_LABELS = {"saliency": "saliency", "gradcam": "Grad-CAM", "smoothgrad": "SmoothGrad",
                 "integrated_gradients": "Integrated Gradients"}
MODEL_LABELS = {"vgg19": "VGG19", "vgg16": "VGG16", "resnet152": "ResNet152"}
# A method whose maps keep this much mean Spearman correlation with the trained network's
# after every stage is randomized "does not depend on the model". Spearman, not SSIM:
# smooth maps (Grad-CAM's 7 x 7 or 14 x 14 upsampled) score a high SSIM against any other
# smooth blob, so SSIM is reported beside it but does not decide.
SANITY_FLAG = 0.5


def label(name: str) -> str:
    return METHOD_LABELS.get(name, MODEL_LABELS.get(name, name))


def possessive(name: str) -> str:
    text = label(name)
    return text + ("'" if text.endswith("s") else "'s")


def _mean(stats: dict) -> float:
    value = stats.get("mean") if stats else None
    return value if value is not None and math.isfinite(value) else math.nan


def _methods_phrase(names: list[str]) -> str:
    return ", ".join(label(n) for n in names)


def _under(count: int, total: int) -> str:
    if total == 1:
        return "under the one method run"
    if count == total:
        return "under both methods" if total == 2 else f"under all {total} methods"
    if count == 0:
        return f"under none of the {total} methods"
    return f"under {count} of {total} methods"


def findings(summary, families: dict[str, str], methods) -> list[str]:
    methods = list(methods)
    out = []
    vggs = [m for m, f in families.items() if f == "VGG"]
    resnets = [m for m, f in families.items() if f == "ResNet"]
    for resnet in resnets:
        for vgg in vggs:
            for metric, less, more in (("concentration_top5", "are less concentrated", "are more concentrated"),
                                       ("edge_share_top20", "put less of their weight on the image's edges",
                                        "put more of their weight on the image's edges")):
                values = {m: (_mean(summary.per_model[m][resnet][metric]), _mean(summary.per_model[m][vgg][metric]))
                          for m in methods}
                valid = [m for m, (r, v) in values.items() if not (math.isnan(r) or math.isnan(v))]
                if not valid:
                    continue
                lower = [m for m in valid if values[m][0] < values[m][1]]
                word, which = (less, lower) if 2 * len(lower) >= len(valid) else \
                    (more, [m for m in valid if m not in lower])
                sentence = (f"{possessive(resnet)} maps {word} than {possessive(vgg)} "
                            f"{_under(len(which), len(valid))}")
                others = [m for m in valid if m not in which]
                if others:
                    sentence += f" (not under {_methods_phrase(others)})"
                out.append(sentence + ".")
    if len(vggs) >= 2 and resnets:
        a, b = vggs[:2]
        within = f"{a}|{b}"
        closer = []
        valid = []
        for method in methods:
            pairs = summary.per_pair.get(method, {})
            across = [_mean(pairs[p]["spearman"]) for p in pairs if p != within
                      and any(r in p.split("|") for r in resnets)]
            inside = _mean(pairs.get(within, {}).get("spearman", {}))
            if math.isnan(inside) or not across or any(math.isnan(x) for x in across):
                continue
            valid.append(method)
            if inside > max(across):
                closer.append(method)
        if valid:
            out.append(f"{label(a)} and {label(b)} agree with each other more than either agrees "
                       f"with {label(resnets[0])} (Spearman) {_under(len(closer), len(valid))}.")
    for method, per_model in summary.faithfulness.items():
        beats = sum(row["beats_random"]["agree"] for row in per_model.values())
        of = sum(row["beats_random"]["of"] for row in per_model.values())
        by_model = ", ".join(f"{label(m)} {row['beats_random']['agree']}/{row['beats_random']['of']}"
                             for m, row in per_model.items())
        out.append(f"{possessive(method)} maps beat a random pixel order on both deletion and insertion "
                   f"for {beats} of {of} image × model pairs ({by_model}).")
    for method, per_model in summary.sanity.items():
        flagged = [m for m, row in per_model.items() if row["insensitive"]]
        if flagged:
            worst = max(flagged, key=lambda m: per_model[m]["final_spearman"])
            out.append(f"{label(method)} does not depend on the model for {_methods_phrase(flagged)}: "
                       f"with every stage randomized, its maps keep a mean Spearman correlation of "
                       f"{per_model[worst]['final_spearman']:.2f} with the trained network's "
                       f"({label(worst)}).")
        else:
            top = max((row["final_spearman"] for row in per_model.values()
                       if math.isfinite(row["final_spearman"])), default=math.nan)
            out.append(f"{possessive(method)} maps depend on the weights: with every stage randomized, "
                       f"their Spearman correlation with the trained network's is at most {top:.2f}.")
    gap = summary.completeness_gap
    if gap:
        n = sum(s["n"] for s in gap["per_model"].values())
        flagged = len(gap["flagged"])
        if flagged:
            out.append(f"Integrated Gradients' completeness gap exceeds {gap['flag']:.0%} for {flagged} of "
                       f"{n} image × model pairs: raise --ig-steps.")
        else:
            out.append(f"Integrated Gradients' completeness gap is within {gap['flag']:.0%} for all {n} "
                       f"image × model pairs.")
    return [sentence[0].upper() + sentence[1:] for sentence in out]

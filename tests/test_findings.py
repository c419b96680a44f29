"""Findings sentences follow the numbers: counts of methods, directions, flags."""

from __future__ import annotations

from reportgen.analysis.findings import findings
from reportgen.records import Summary

FAMILIES = {"vgg19": "VGG", "vgg16": "VGG", "resnet152": "ResNet"}


def stat(mean):
    return {"mean": mean, "std": 0.0, "min": mean, "max": mean, "n": 4}


def summary(concentration: dict, **extra) -> Summary:
    """concentration: method -> (vgg19, vgg16, resnet152) means; edge share fixed."""
    per_model = {method: {m: {"concentration_top5": stat(v), "edge_share_top20": stat(0.2)}
                          for m, v in zip(FAMILIES, values)}
                 for method, values in concentration.items()}
    per_pair = {method: {"vgg19|vgg16": {"spearman": stat(0.6)}, "vgg19|resnet152": {"spearman": stat(0.2)},
                         "vgg16|resnet152": {"spearman": stat(0.3)}} for method in concentration}
    return Summary(per_model, per_pair, {}, {}, **extra)


def test_concentration_sentence_counts_the_methods_and_names_the_exception():
    s = summary({"saliency": (0.3, 0.3, 0.1), "gradcam": (0.2, 0.2, 0.4), "smoothgrad": (0.3, 0.3, 0.2),
                 "integrated_gradients": (0.5, 0.5, 0.1)})
    out = findings(s, FAMILIES, list(s.per_model))
    assert ("ResNet152's maps are less concentrated than VGG19's under 3 of 4 methods "
            "(not under Grad-CAM).") in out
    assert ("VGG19 and VGG16 agree with each other more than either agrees with ResNet152 "
            "(Spearman) under all 4 methods.") in out


def test_direction_follows_the_majority_and_all_means_all():
    s = summary({"saliency": (0.1, 0.1, 0.3), "gradcam": (0.1, 0.1, 0.3)})
    out = findings(s, FAMILIES, ["saliency", "gradcam"])
    assert "ResNet152's maps are more concentrated than VGG16's under both methods." in out


def test_checks_give_sentences_only_when_they_ran():
    s = summary({"saliency": (0.3, 0.3, 0.1)})
    assert not any("random" in f or "randomized" in f for f in findings(s, FAMILIES, ["saliency"]))
    faith = {"saliency": {m: {"beats_random": {"agree": a, "of": 4}} for m, a in zip(FAMILIES, (4, 3, 1))}}
    sanity = {"saliency": {"vgg19": {"insensitive": True, "final_spearman": 0.71},
                           "vgg16": {"insensitive": False, "final_spearman": 0.1},
                           "resnet152": {"insensitive": False, "final_spearman": 0.05}}}
    gap = {"flag": 0.05, "flagged": [{"image": "x"}], "per_model": {m: stat(0.1) for m in FAMILIES}}
    out = findings(summary({"saliency": (0.3, 0.3, 0.1)}, faithfulness=faith, sanity=sanity,
                           completeness_gap=gap), FAMILIES, ["saliency"])
    assert ("Saliency's maps beat a random pixel order on both deletion and insertion for 8 of 12 "
            "image × model pairs (VGG19 4/4, VGG16 3/4, ResNet152 1/4).") in out
    assert any(f.startswith("Saliency does not depend on the model for VGG19") and "0.71" in f for f in out)
    assert any("exceeds 5% for 1 of 12" in f and "--ig-steps" in f for f in out)

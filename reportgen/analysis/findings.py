"""Sentences generated from the numbers of a run, never written by hand: does a difference
between VGG and ResNet survive a change of method, is each map faithful, does it depend on
the weights. Each sentence states the count it rests on."""

from __future__ import annotations

import math

import gettext as _gettext

from ..i18n import N_, Formats

METHOD_LABELS = {"saliency": N_("saliency"), "gradcam": "Grad-CAM", "smoothgrad": "SmoothGrad",
                 "integrated_gradients": "Integrated Gradients"}
MODEL_LABELS = {"vgg19": "VGG19", "vgg16": "VGG16", "resnet152": "ResNet152"}
# A method whose maps keep this much mean Spearman correlation with the trained network's
# after every stage is randomized "does not depend on the model". Spearman, not SSIM:
# smooth maps (Grad-CAM's 7 x 7 or 14 x 14 upsampled) score a high SSIM against any other
# smooth blob, so SSIM is reported beside it but does not decide.
SANITY_FLAG = 0.5


def label(name: str) -> str:
    """The English label of a method or model (translate it where it is shown)."""
    return METHOD_LABELS.get(name, MODEL_LABELS.get(name, name))


def possessive(name: str) -> str:
    text = label(name)
    return text + ("'" if text.endswith("s") else "'s")


def _mean(stats: dict) -> float:
    value = stats.get("mean") if stats else None
    return value if value is not None and math.isfinite(value) else math.nan


class _Words:
    """The sentences' language: a gettext catalog and its number formats. Called as `_`
    (so that pybabel extracts the messages): _("text with %(value)s", value=...)."""

    def __init__(self, translations, formats: Formats):
        self.t, self.f = translations, formats

    def __call__(self, message: str, **values) -> str:
        return self.t.gettext(message) % values if values else self.t.gettext(message)

    def label(self, name: str) -> str:
        return self.t.gettext(label(name))

    def percent0(self, value: float) -> str:
        return f"{value:.0%}" if self.f.lang == "en" else self.f.percent(value, 0)


def _names(_, names) -> str:
    # Translators: the separator between the items of a list (", " in English)
    return _(", ").join(_.label(n) for n in names)


def _under(_, count: int, total: int) -> str:
    if total == 1:
        return _("under the one method run")
    if count == total:
        return _("under both methods") if total == 2 else _("under all %(total)d methods", total=total)
    if count == 0:
        return _("under none of the %(total)d methods", total=total)
    return _("under %(count)d of %(total)d methods", count=count, total=total)


def findings(summary, families: dict[str, str], methods, translations=None) -> list[str]:
    """The sentences, in the language of `translations` (a gettext catalog; English when
    None). Placeholders are named, so a translation may order the sentence its own way;
    `owner` is the English possessive ("ResNet152's", "Integrated Gradients'"), `model`
    and `method` the plain names."""
    lang = getattr(translations, "reportgen_lang", "en")
    _ = _Words(translations or _gettext.NullTranslations(), Formats(lang))
    methods = list(methods)
    out = []
    vggs = [m for m, f in families.items() if f == "VGG"]
    resnets = [m for m, f in families.items() if f == "ResNet"]
    for resnet in resnets:
        for vgg in vggs:
            for metric, less, more in (
                    ("concentration_top5",
                     N_("%(resnet)s's maps are less concentrated than %(vgg)s's %(under)s"),
                     N_("%(resnet)s's maps are more concentrated than %(vgg)s's %(under)s")),
                    ("edge_share_top20",
                     N_("%(resnet)s's maps put less of their weight on the image's edges than %(vgg)s's %(under)s"),
                     N_("%(resnet)s's maps put more of their weight on the image's edges than %(vgg)s's %(under)s"))):
                values = {m: (_mean(summary.per_model[m][resnet][metric]), _mean(summary.per_model[m][vgg][metric]))
                          for m in methods}
                valid = [m for m, (r, v) in values.items() if not (math.isnan(r) or math.isnan(v))]
                if not valid:
                    continue
                lower = [m for m in valid if values[m][0] < values[m][1]]
                word, which = (less, lower) if 2 * len(lower) >= len(valid) else \
                    (more, [m for m in valid if m not in lower])
                others = [m for m in valid if m not in which]
                sentence = _(word, resnet=_.label(resnet), vgg=_.label(vgg),
                             under=_under(_, len(which), len(valid)))
                if others:
                    sentence = _("%(sentence)s (not under %(methods)s)", sentence=sentence,
                                 methods=_names(_, others))
                out.append(_("%(sentence)s.", sentence=sentence))
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
            out.append(_("%(a)s and %(b)s agree with each other more than either agrees with "
                         "%(resnet)s (Spearman) %(under)s.", a=_.label(a), b=_.label(b),
                         resnet=_.label(resnets[0]), under=_under(_, len(closer), len(valid))))
    for method, per_model in summary.faithfulness.items():
        beats = sum(row["beats_random"]["agree"] for row in per_model.values())
        of = sum(row["beats_random"]["of"] for row in per_model.values())
        by_model = _(", ").join(f"{_.label(m)} {row['beats_random']['agree']}/{row['beats_random']['of']}"
                                for m, row in per_model.items())
        out.append(_("%(owner)s maps beat a random pixel order on both deletion and insertion for "
                     "%(beats)d of %(of)d image × model pairs (%(by_model)s).", owner=possessive(method),
                     method=_.label(method), beats=beats, of=of, by_model=by_model))
    for method, per_model in summary.sanity.items():
        flagged = [m for m, row in per_model.items() if row["insensitive"]]
        if flagged:
            worst = max(flagged, key=lambda m: per_model[m]["final_spearman"])
            out.append(_("%(method)s does not depend on the model for %(models)s: with every stage "
                         "randomized, its maps keep a mean Spearman correlation of %(value)s with the "
                         "trained network's (%(worst)s).", method=_.label(method),
                         models=_names(_, flagged), value=_.f.number(per_model[worst]["final_spearman"], 2),
                         worst=_.label(worst)))
        else:
            top = max((row["final_spearman"] for row in per_model.values()
                       if math.isfinite(row["final_spearman"])), default=math.nan)
            out.append(_("%(owner)s maps depend on the weights: with every stage randomized, their "
                         "Spearman correlation with the trained network's is at most %(value)s.",
                         owner=possessive(method), method=_.label(method), value=_.f.number(top, 2)
                         if math.isfinite(top) else "nan"))
    gap = summary.completeness_gap
    if gap:
        n = sum(s["n"] for s in gap["per_model"].values())
        flagged = len(gap["flagged"])
        if flagged:
            out.append(_("Integrated Gradients' completeness gap exceeds %(flag)s for %(flagged)d of "
                         "%(n)d image × model pairs: raise --ig-steps.", flag=_.percent0(gap["flag"]),
                         flagged=flagged, n=n))
        else:
            out.append(_("Integrated Gradients' completeness gap is within %(flag)s for all %(n)d "
                         "image × model pairs.", flag=_.percent0(gap["flag"]), n=n))
    return [sentence[0].upper() + sentence[1:] for sentence in out]

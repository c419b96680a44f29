"""report.html from a RunResult through the Jinja2 templates."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import replace
from importlib import resources
from pathlib import Path

import jinja2

from .. import i18n, selection
from ..config import DEFAULT_TITLE
from ..i18n import N_
from ..analysis import findings
from ..records import RunResult
from ..summary import IG_GAP_FLAG

TEMPLATE = "report.html.j2"


def template_folder() -> Path:
    """The installed templates (package data ``reportgen.templates``), else the source
    tree's ``templates/``. Fails naming every folder it looked in."""
    # files("reportgen") is a plain folder; files("reportgen.templates") would be a
    # namespace package's MultiplexedPath, which is no file-system path.
    searched = [Path(str(resources.files("reportgen"))) / "templates",
                Path(__file__).resolve().parents[2] / "templates"]
    for folder in searched:
        if (folder / TEMPLATE).is_file():
            return folder
    raise FileNotFoundError(f"{TEMPLATE} not found; searched {', '.join(map(str, searched))}")


@functools.lru_cache(maxsize=None)
def environment(lang: str = "en") -> jinja2.Environment:
    """The templates' environment for one report language: gettext from its catalog
    (Jinja2's i18n extension, new-style: named placeholders, values escaped), and number
    and date filters in its locale. One per language and process, so that each template
    is compiled once (0.07 s for report.html.j2), which a run does while the network runs
    (warm_templates)."""
    formats = i18n.Formats(lang)
    translations = i18n.translations(lang)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_folder())),
        autoescape=True,                 # select_autoescape() would miss *.html.j2
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations, newstyle=True)
    env.filters.update(num=formats.number, sci=formats.sci, pct=formats.percent,
                       pair=lambda p: translations.gettext("%(a)s vs %(b)s") % dict(zip("ab", p.split("|"))),
                       method_label=lambda name: translations.gettext(findings.label(name)),
                       count_of=formats.count, date=formats.date, datetime=formats.datetime,
                       mean_agreement=selection.mean_agreement)
    env.filters["conv_listing"] = lambda rows: conv_listing(
        rows, formats, [translations.gettext(h) for h in CONV_HEADERS])
    env.filters["stage_name"] = lambda model, per_model, k: stage_label(
        per_model[model]["stages"][k]["stage"], translations)
    env.tests["flagged_gap"] = lambda gap: gap is None or not math.isfinite(gap) or gap > IG_GAP_FLAG
    env.globals["flag_gap"] = IG_GAP_FLAG
    env.globals["lang"] = lang
    return env


def warm_templates(lang: str = "en") -> None:
    """Compile report.html.j2 and the templates it includes for `lang` now, off the
    critical path."""
    env = environment(lang)
    for name in env.list_templates(extensions=["j2"]):
        env.get_template(name)


# The sanity cascade's stage names (models.randomization_stages), for the catalogs.
STAGES = {"logits (output layer)": N_("logits (output layer)"), "fc6-fc7": "fc6-fc7",
          "conv block": N_("conv block %(number)s"), "stage": N_("stage %(number)s")}


def stage_label(name: str, translations) -> str:
    """A stage name of results.json ("conv block 5", "stage 4") in the report's language."""
    for prefix in ("conv block", "stage"):
        if name.startswith(prefix + " ") and name[len(prefix) + 1:].isdigit():
            return translations.gettext(STAGES[prefix]) % {"number": name[len(prefix) + 1:]}
    return translations.gettext(STAGES.get(name, name))


# The conv-weights appendix's columns, headers and alignment in the print listing.
CONV_HEADERS = ("#", N_("Layer"), N_("Shape"), N_("Parameters"), N_("Mean ± std"), N_("Min … max"))
CONV_RIGHT_ALIGNED = (True, False, False, True, True, True)
# Lines per row of the print listing's table: the page breaks between rows (and repeats
# the column headers), so a row of a few lines wastes little of a page, and the table
# still has only a cell per 10 layers for WeasyPrint to lay out.
CONV_LISTING_ROWS = 10


def text_width(text: str) -> int:
    """Columns `text` takes in a monospace line: East Asian wide and fullwidth characters
    take two (CJK headers in the zh reports)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def conv_listing(rows, formats: i18n.Formats, headers: list[str]) -> dict:
    """The conv-weights appendix: {"header": [(text, width, right_aligned), ...],
    "cells": [(text, ...) per layer], "blocks": [[line, ...], ...]}. The screen shows the
    cells as a table; print shows them as monospace lines, blocks of at most
    CONV_LISTING_ROWS, the columns padded to their widest cell or header (widths in
    characters): WeasyPrint lays out a table cell by cell, and resnet152 alone has 155
    layers."""
    cells = [(str(i), row["name"], "×".join(str(n) for n in row["shape"]), formats.count(row["count"]),
              f"{formats.sci(row['mean'])} ± {formats.sci(row['std'])}",
              f"{formats.sci(row['min'])} … {formats.sci(row['max'])}")
             for i, row in enumerate(rows, start=1)]
    widths = [max([text_width(h)] + [len(c[k]) for c in cells]) for k, h in enumerate(headers)]
    lines = ["  ".join(text.rjust(w) if right else text.ljust(w)
                       for text, w, right in zip(c, widths, CONV_RIGHT_ALIGNED)).rstrip()
             for c in cells]
    return {"header": list(zip(headers, widths, CONV_RIGHT_ALIGNED)), "cells": cells,
            "blocks": [lines[start:start + CONV_LISTING_ROWS] for start in range(0, len(lines), CONV_LISTING_ROWS)]}


def css_content(message: str, counters: dict[str, str]) -> str:
    """A CSS `content` value from a translated message: its text as CSS strings, each
    %(placeholder)s as the counter `counters` names ("Page %(page)s of %(pages)s" ->
    "Page " counter(page) " of " counter(pages))."""
    parts = []
    for part in re.split(r"(%\(\w+\)s)", message):
        if part[2:-2] in counters and part.startswith("%("):
            parts.append(f"counter({counters[part[2:-2]]})")
        elif part:
            escaped = part.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ")
            parts.append(f'"{escaped}"')
    return " ".join(parts)


def css_labels(translations) -> dict[str, str]:
    """The report.css texts that are CSS content (page footer, figure and table labels),
    in the report's language."""
    _ = translations.gettext
    return {
        "page_footer": css_content(_(N_("Page %(page)s of %(pages)s")), {"page": "page", "pages": "pages"}),
        "figure_label": css_content(_(N_("Figure %(number)s.")) + " ", {"number": "figure"}),
        "table_label": css_content(_(N_("Table %(number)s.")) + " ", {"number": "table"}),
    }


def render_report(result: RunResult, for_print: bool = False, lang: str = "en") -> str:
    """for_print: the PDF's document, without what only a screen can use (the table of
    every image), so that the PDF's work stays bounded in the number of images. lang: the
    report's language (i18n.LANGS); the findings are worded again in it from the numbers."""
    css = (template_folder() / "report.css").read_text("utf-8")
    if result.title == DEFAULT_TITLE:      # the user's own title is shown as written
        result = replace(result, title=i18n.translations(lang).gettext(DEFAULT_TITLE))
    families = {m.name: m.family for m in result.models}
    worded = (list(result.summary.findings) if lang == "en" else
              findings.findings(result.summary, families, list(result.methods) or ["saliency"],
                                i18n.translations(lang)))
    return environment(lang).get_template(TEMPLATE).render(
        r=result, css=css, for_print=for_print, findings_text=worded,
        **css_labels(i18n.translations(lang)))


def write_report(result: RunResult, root: Path, name: str = "report.html",
                 for_print: bool = False, lang: str = "en") -> Path:
    path = Path(root) / name
    path.write_text(render_report(result, for_print, lang), encoding="utf-8")
    return path

"""report.html from a RunResult through the Jinja2 templates."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import jinja2

from .. import selection
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


def fmt_number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def fmt_sci(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.2e}"


def fmt_percent(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{100 * value:.{digits}f} %"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_folder())),
        autoescape=True,                 # select_autoescape() would miss *.html.j2
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_number, sci=fmt_sci, pct=fmt_percent,
                       pair=lambda p: p.replace("|", " vs "), method_label=findings.label,
                       count_of=lambda n: f"{n:,}", mean_agreement=selection.mean_agreement)
    env.filters["stage_name"] = lambda model, per_model, k: per_model[model]["stages"][k]["stage"]
    env.tests["flagged_gap"] = lambda gap: gap is None or not math.isfinite(gap) or gap > IG_GAP_FLAG
    env.globals["flag_gap"] = IG_GAP_FLAG
    return env


def render_report(result: RunResult, for_print: bool = False) -> str:
    """for_print: the PDF's document, without what only a screen can use (the table of
    every image), so that the PDF's work stays bounded in the number of images."""
    css = (template_folder() / "report.css").read_text("utf-8")
    return environment().get_template(TEMPLATE).render(r=result, css=css, for_print=for_print)


def write_report(result: RunResult, root: Path, name: str = "report.html",
                 for_print: bool = False) -> Path:
    path = Path(root) / name
    path.write_text(render_report(result, for_print), encoding="utf-8")
    return path

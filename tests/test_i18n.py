"""The report in Chinese: the locale picks the language, the catalogs translate every
message of the code and the templates, numbers and dates follow the locale, and a zh-TW
PDF embeds a CJK font whose text extracts as the expected Chinese."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reportgen import i18n
from reportgen.cli import main
from synthetic import synthetic_result

REPO = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


@pytest.mark.parametrize("environ,lang", [
    ({"LANG": "zh_TW.UTF-8"}, "zh-TW"),
    ({"LANG": "zh_HK.UTF-8"}, "zh-TW"),
    ({"LANG": "zh_CN.UTF-8"}, "zh-CN"),
    ({"LANG": "zh_SG"}, "zh-CN"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "C"}, "en"),
    ({}, "en"),
    ({"LANG": "zh_CN.UTF-8", "LC_ALL": "zh_TW.UTF-8"}, "zh-TW"),      # LC_ALL wins
    ({"LANG": "zh_TW.UTF-8", "LC_MESSAGES": "de_DE.UTF-8"}, "en"),
])
def test_the_locale_picks_the_report_language(environ, lang):
    assert i18n.default_lang(environ) == lang


def _extracted() -> dict[str, set[str]]:
    """msgid -> where it is used, from the code and the templates (babel.cfg)."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with (REPO / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    messages = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(REPO), method_map, options_map):
        msgid = message[0] if isinstance(message, tuple) else message   # plurals: by the singular
        if msgid:
            messages.setdefault(msgid, set()).add(filename)
    return messages


@pytest.mark.parametrize("lang", ["zh-TW", "zh-CN"])
def test_every_message_is_translated_with_the_same_placeholders(lang):
    from babel.messages.pofile import read_po

    path = i18n.LOCALE_DIR / i18n.CATALOGS[lang] / "LC_MESSAGES" / "reportgen.po"
    with path.open("rb") as handle:
        catalog = read_po(handle)
    extracted = _extracted()
    assert len(extracted) > 100           # the templates and the code, not an empty run
    missing, untranslated, wrong = [], [], []
    for msgid in extracted:
        entry = catalog.get(msgid)
        if entry is None:
            missing.append(msgid)
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if not all(strings) or entry.fuzzy:
            untranslated.append(msgid)
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        wanted = set().union(*(PLACEHOLDER.findall(i) for i in ids))
        if "owner" in wanted:                 # the possessive may be worded from the name
            wanted |= {"method"}
        for string in strings:
            used = set(PLACEHOLDER.findall(string))
            if not used <= wanted or not (wanted - {"owner", "method", "num"}) <= used:
                wrong.append((msgid, string))
    assert missing == [] and untranslated == [] and wrong == []


def test_numbers_and_dates_follow_the_locale():
    en, tw, cn = i18n.Formats("en"), i18n.Formats("zh-TW"), i18n.Formats("zh-CN")
    assert en.number(0.12345) == "0.123" and tw.number(0.12345) == "0.123"
    assert en.percent(0.123) == "12.3 %" and tw.percent(0.123) == "12.3%"
    assert en.count(10000) == "10,000" and cn.count(10000) == "10,000"
    assert en.date("2026-12-05T08:59:40+00:00") == "2026-12-05"
    assert tw.date("2026-12-05T08:59:40+00:00") == "2026年12月5日"
    assert cn.date("2026-12-05T08:59:40+00:00") == "2026年12月5日"
    assert en.number(None) == tw.number(float("nan")) == "–"


def test_an_unknown_language_is_a_usage_error(tmp_path, capsys):
    assert main(["run", "-o", str(tmp_path / "r"), "--lang", "fr", "--weights", "untrained"]) == 2
    assert "--lang fr" in capsys.readouterr().err


@pytest.mark.parametrize("lang,heading,other", [("zh-TW", "目錄", "圖片"), ("zh-CN", "目录", "图片")])
def test_a_chinese_pdf_embeds_a_cjk_font_and_reads_in_chinese(tmp_path, lang, heading, other):
    from pypdf import PdfReader

    from reportgen.render import charts, html, pdf

    result = synthetic_result(3, tmp_path)
    result = result.__class__(**{**result.__dict__,
                                 "charts": charts.draw_all(result, tmp_path, lang)})
    page = html.write_report(result, tmp_path, ".print.html", for_print=True, lang=lang)
    assert f'<html lang="{lang}">' in page.read_text("utf-8")
    reader = PdfReader(pdf.write_pdf(page, tmp_path))
    fonts = set()
    for p in reader.pages:
        for font in (p["/Resources"].get("/Font") or {}).values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    script = {"zh-TW": "TC", "zh-CN": "SC"}[lang]       # the script's own glyph forms
    assert any(f"Noto-Sans-CJK-{script}" in name for name in fonts), fonts
    text = "".join(p.extract_text() for p in reader.pages[:3])
    assert heading in text and other in text
    assert "Contents" not in text            # the table of contents is translated too

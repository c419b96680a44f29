"""The report's language: gettext catalogs (Babel) and locale-aware numbers and dates.

Catalogs are the translators' .po files themselves (``reportgen/locale/<ll_CC>/LC_MESSAGES/
reportgen.po``), compiled in memory when first used: no compiled .mo file is kept in the
repository and installing needs no build step. Messages are extracted from the Python code
and the templates with ``pybabel extract -F babel.cfg`` (README: Development).

English is the source language: it has no catalog, and its numbers keep the report's
established forms (``12.3 %``, ``2026-12-05``), so English reports do not change.
"""

from __future__ import annotations

import functools
import gettext as gettext_module
import io
import math
import os
from datetime import datetime
from pathlib import Path

DOMAIN = "reportgen"
LANGS = ("en", "zh-TW", "zh-CN")
# Report language -> Babel locale (numbers, dates) and catalog folder.
LOCALES = {"en": "en_US", "zh-TW": "zh_Hant_TW", "zh-CN": "zh_Hans_CN"}
CATALOGS = {"zh-TW": "zh_TW", "zh-CN": "zh_CN"}
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def default_lang(environ=None) -> str:
    """The report language the user's locale asks for (LC_ALL, LC_MESSAGES, LANG, as
    gettext reads them): Chinese in Taiwan, Hong Kong and Macau -> zh-TW, other Chinese
    -> zh-CN, anything else -> en."""
    environ = os.environ if environ is None else environ
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(variable)
        if value:
            break
    else:
        return "en"
    tag = value.split(".")[0].split("@")[0].replace("-", "_").lower()
    if tag.startswith("zh"):
        hant = ("_tw", "_hk", "_mo", "_hant")
        return "zh-TW" if any(part in tag for part in hant) else "zh-CN"
    return "en"


@functools.lru_cache(maxsize=None)
def translations(lang: str) -> gettext_module.NullTranslations:
    """The catalog of `lang` (a NullTranslations for English), compiled from its .po."""
    if lang == "en":
        null = gettext_module.NullTranslations()
        null.reportgen_lang = lang
        return null
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    path = LOCALE_DIR / CATALOGS[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=CATALOGS[lang], domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    catalog = Translations(compiled, domain=DOMAIN)
    catalog.reportgen_lang = lang       # the findings' numbers follow the same locale
    return catalog


class Formats:
    """Numbers, percentages and dates for one report language."""

    def __init__(self, lang: str):
        self.lang = lang
        self.locale = LOCALES[lang]

    @staticmethod
    def _missing(value) -> bool:
        return value is None or (isinstance(value, float) and not math.isfinite(value))

    def number(self, value, digits: int = 3) -> str:
        if self._missing(value):
            return "–"
        if self.lang == "en":
            return f"{value:.{digits}f}"
        from babel.numbers import format_decimal

        pattern = "0." + "0" * digits if digits else "0"
        return format_decimal(value, format=pattern, locale=self.locale)

    def sci(self, value) -> str:
        if self._missing(value):
            return "–"
        if self.lang == "en":
            return f"{value:.2e}"
        from babel.numbers import format_scientific

        return format_scientific(value, format="0.00E00", locale=self.locale)

    def percent(self, value, digits: int = 1) -> str:
        if self._missing(value):
            return "–"
        if self.lang == "en":
            return f"{100 * value:.{digits}f} %"
        from babel.numbers import format_percent

        pattern = "0." + "0" * digits + "%" if digits else "0%"
        return format_percent(value, format=pattern, locale=self.locale)

    def count(self, value: int) -> str:
        if self.lang == "en":
            return f"{value:,}"
        from babel.numbers import format_decimal

        return format_decimal(value, format="#,##0", locale=self.locale)

    def date(self, iso: str) -> str:
        """An ISO 8601 timestamp's date: 2026-12-05 in English, the locale's long form
        (2026年12月5日) otherwise."""
        if self.lang == "en":
            return iso[:10]
        from babel.dates import format_date

        return format_date(datetime.fromisoformat(iso).date(), format="long", locale=self.locale)

    def datetime(self, iso: str) -> str:
        """Date and time to the minute, as the timestamp's own clock shows it."""
        if self.lang == "en":
            return iso[:16].replace("T", " ")
        from babel.dates import format_datetime

        moment = datetime.fromisoformat(iso)
        return format_datetime(moment.replace(tzinfo=None), format="medium", locale=self.locale)


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message

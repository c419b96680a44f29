"""Does any installed font have glyphs for the user's text? WeasyPrint (through Pango and
fontconfig) falls back to any installed font per character, and prints empty boxes when
none has it; we warn instead of letting that pass silently."""

from __future__ import annotations

import shutil
import subprocess

MAX_CHARACTERS = 200   # distinct characters checked one by one, at most


def _fonts_with(characters: list[str]) -> bool:
    query = ":charset=" + " ".join(f"{ord(c):x}" for c in characters)
    try:
        out = subprocess.run(["fc-list", query, "family"], capture_output=True, text=True,
                             timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return True   # cannot tell: do not cry wolf
    return bool(out.stdout.strip())


def uncovered_characters(texts: list[str]) -> list[str]:
    """Characters of `texts` beyond ASCII that no installed font covers (sorted). Empty
    when fontconfig's fc-list is not there to ask."""
    characters = sorted({c for text in texts for c in text if ord(c) > 0x7F and c.isprintable()
                         and not c.isspace()})
    if not characters or shutil.which("fc-list") is None:
        return []
    if _fonts_with(characters):          # one font has them all: the common case
        return []
    return [c for c in characters[:MAX_CHARACTERS] if not _fonts_with([c])]


def font_warning(texts: list[str]) -> str | None:
    missing = uncovered_characters(texts)
    if not missing:
        return None
    shown = "".join(missing[:20]) + ("…" if len(missing) > 20 else "")
    return (f"no installed font has glyphs for {shown!r} (title, author or file names): the PDF "
            f"shows empty boxes there; install a font that covers them (for Chinese, Japanese "
            f"and Korean: apt-get install fonts-noto-cjk)")

"""report.pdf from report.html through WeasyPrint, reading only files of the report."""

from __future__ import annotations

import gc
import io
import struct
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import weasyprint
from weasyprint.images import RasterImage
from weasyprint.urls import FatalURLFetchingError, URLFetcher


class ReportRenderError(RuntimeError):
    """The PDF could not be rendered: a resource was forbidden or missing."""


class LocalOnlyFetcher(URLFetcher):
    """Serves data: URIs and files under `root`; anything else (network, files elsewhere)
    or a missing file stops the rendering instead of silently dropping a figure."""

    def __init__(self, root: Path, before_reading=None):
        super().__init__(allowed_protocols={"file", "data"}, fail_on_errors=True)
        self.root = Path(root).resolve()
        self.before_reading = before_reading    # called with each file's path first

    def fetch(self, url, headers=None):
        if url.startswith("data:"):
            return super().fetch(url, headers)
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise ValueError(f"the report may not load {url}")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"the report may not load {path}: outside {self.root}")
        if self.before_reading is not None:
            self.before_reading(path)
        if not path.is_file():
            raise FileNotFoundError(f"figure missing: {path}")
        return super().fetch(url, headers)


@contextmanager
def cyclic_gc_paused():
    """Python's cyclic garbage collector off for the block, back as it was after.

    WeasyPrint allocates a box, a style and many small objects per element: the collector
    keeps running full (generation 2) passes over all of them, and over whatever else the
    process holds, and finds almost nothing to free. For the 16-image x 3-model report
    that was ~0.9 s of ~7.5 s CPU; paused, peak RSS grew by <= 15 MB (measured)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_zlib_stream(data: bytes) -> bytes | None:
    """The concatenated IDAT chunks of an 8-bit, non-interlaced grayscale or RGB PNG, which
    are a PDF image stream as they are (FlateDecode with PNG predictors: each row carries
    its own filter type); None for any other PNG (16 bits, palette, alpha, interlaced)."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    bit_depth, colour_type, _, _, interlace = struct.unpack("!5B", data[24:29])
    if bit_depth != 8 or colour_type not in (0, 2) or interlace != 0:
        return None
    chunks, at = [], 8
    while at + 8 <= len(data):
        length, kind = struct.unpack("!I4s", data[at:at + 8])
        if kind == b"tRNS":          # transparency: WeasyPrint makes it a mask, not this path
            return None
        if kind == b"IDAT":
            chunks.append(data[at + 8:at + 8 + length])
        at += 12 + length
    return b"".join(chunks) or None


@contextmanager
def png_streams_reused():
    """WeasyPrint 70 decodes every PNG it embeds and encodes it again with Pillow, only to
    take the zlib stream back out of the new file (RasterImage._get_png_data): 1.1 s of the
    7.7 s PDF of a 100-image report, for the crops and gray maps. For the PNGs reportgen
    writes (8-bit, grayscale or RGB, not interlaced) the file's own stream is a valid such
    stream: it is taken as it is. For files written at zlib level 6 (the filters) it is
    the very stream WeasyPrint would make, so the PDF's bytes are the same; the crops and
    gray maps (level 1) embed a different stream of the same pixels (both tested). Anything
    else, and any WeasyPrint without that method, goes the library's own way."""
    original = RasterImage.__dict__.get("_get_png_data")
    if not isinstance(original, staticmethod):
        yield
        return
    reencode = original.__func__

    def png_data(pillow_image):
        source = getattr(pillow_image, "fp", None)
        if pillow_image.format == "PNG" and pillow_image.mode in ("L", "RGB") \
                and isinstance(source, io.BytesIO):
            stream = png_zlib_stream(source.getvalue())
            if stream is not None:
                return stream
        return reencode(pillow_image)

    RasterImage._get_png_data = staticmethod(png_data)
    try:
        yield
    finally:
        RasterImage._get_png_data = original


def write_pdf(html_path: Path, root: Path, before_reading=None) -> Path:
    """report.pdf in `root` from `html_path`; before_reading(path), if given, is called
    before each file of the report is read (to wait for files still being written)."""
    root = Path(root).resolve()
    pdf_path = root / "report.pdf"
    try:
        with cyclic_gc_paused(), png_streams_reused():
            weasyprint.HTML(filename=str(html_path), base_url=root.as_uri() + "/",
                            url_fetcher=LocalOnlyFetcher(root, before_reading)).write_pdf(pdf_path)
    except FatalURLFetchingError as exc:
        pdf_path.unlink(missing_ok=True)
        raise ReportRenderError(f"PDF not written: {exc} ({exc.__cause__})") from None
    return pdf_path

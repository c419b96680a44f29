"""Find, decode and preprocess input images, one file at a time.

Preprocessing is what the Gluon model-zoo ImageNet models expect: RGB, shorter side
resized to 256, centre crop 224x224, scaled to [0, 1], normalized with the ImageNet mean
and std. A file that cannot be used raises InputError with a one-line reason.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# Photos in formats Pillow cannot read: listed as skipped rather than passed over silently.
UNSUPPORTED_EXTENSIONS = {".heic": "HEIC", ".heif": "HEIF", ".svg": "SVG", ".cr2": "camera raw",
                          ".nef": "camera raw", ".arw": "camera raw", ".dng": "camera raw"}
RESIZE_SHORTER = 256
CROP = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Refuse before decoding anything larger: a tiny file can claim billions of pixels.
MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class DecodedImage:
    crop: np.ndarray          # uint8 (224, 224, 3): exactly what the model sees, before scaling
    original_size: tuple[int, int]  # (width, height) as stored, after EXIF orientation
    notes: tuple[str, ...]    # facts worth telling the reader (first frame of an animation, ...)


def find_images(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files under `paths` (folders walked recursively, sorted), and paths that could
    not be used at all, with a reason."""
    found: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            # Symlinked folders are not followed: no loops, no walking out of the tree.
            for root, dirs, files in os.walk(path, followlinks=False):
                dirs.sort()
                for name in sorted(files + dirs):
                    suffix = os.path.splitext(name)[1].lower()
                    if suffix in IMAGE_EXTENSIONS:
                        found.append(Path(root) / name)   # folders too: decode() says why not
                    elif suffix in UNSUPPORTED_EXTENSIONS and name in files:
                        problems.append((Path(root) / name, unsupported_reason(suffix)))
        elif path.exists():
            found.append(path)
        elif path.is_symlink():
            problems.append((path, "is a symlink that leads nowhere (broken, or a loop)"))
        else:
            problems.append((path, "does not exist"))
    # The same file named twice (e.g. a folder and a file in it) is processed once.
    unique = list(dict.fromkeys(found))
    return unique, problems


def shown_path(path: Path, inputs: list[Path]) -> str:
    """How the report names an input: relative to the folder it was found in, prefixed
    with that folder's name (``samples/cat.png``), so install locations and temporary
    folders do not fill the headings; a file named directly, as it was named."""
    absolute = Path(os.path.abspath(path))   # abspath: never follows (possibly looping) links
    for root in inputs:
        root = Path(os.path.abspath(root))
        if root.is_dir() and absolute.is_relative_to(root):
            return str(Path(root.name) / absolute.relative_to(root))
    return str(path)


def unsupported_reason(suffix: str) -> str:
    return (f"{UNSUPPORTED_EXTENSIONS[suffix]} files cannot be read by Pillow; "
            f"convert it to JPEG or PNG")


def image_id(path: Path, used: set[str]) -> str:
    """A short, file-system and URL safe, deterministic id for `path`: a readable slug of
    its name plus a hash of the full path, so two inputs never share assets."""
    stem = unicodedata.normalize("NFKD", path.stem).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-").lower()[:40] or "image"
    digest = hashlib.sha256(os.fsencode(str(path))).hexdigest()
    for length in range(8, len(digest) + 1):
        candidate = f"{slug}-{digest[:length]}"
        if candidate not in used:
            used.add(candidate)
            return candidate
    raise AssertionError("unreachable: sha256 prefixes of distinct paths collide")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def decode(path: Path) -> DecodedImage:
    """Open, validate and decode one image into its 224x224 RGB centre crop."""
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image file")
    if path.is_symlink() and not path.exists():
        raise InputError(f"{path}: is a symlink that leads nowhere (broken, or a loop)")
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    # WeasyPrint sets Pillow's global LOAD_TRUNCATED_IMAGES = True when imported, which
    # would decode a cut-off file into grey pixels without a word: refuse them here.
    load_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            # Our own limits (below) decide; Pillow still refuses claims over 2x its limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return _decode_opened(path, img)
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise InputError(f"{path}: claims too many pixels to decode safely") from None
    except UnidentifiedImageError:
        suffix = path.suffix.lower()
        if suffix in UNSUPPORTED_EXTENSIONS:
            raise InputError(f"{path}: {unsupported_reason(suffix)}") from None
        raise InputError(f"{path}: not an image Pillow can read (wrong extension, or not "
                         f"an image at all)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: cannot decode ({exc})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = load_truncated


def _decode_opened(path: Path, img: Image.Image) -> DecodedImage:
    width, height = img.size
    # EXIF orientations 5-8 swap width and height; report the size as the photo is seen.
    orientation = img.getexif().get(0x0112, 1)
    original_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    # JPEG decodes at 1/8 scale or less for large images (draft below), so its full size
    # never exists in memory; other formats decode at full size and are capped.
    if width * height > MAX_PIXELS and img.format != "JPEG":
        raise InputError(f"{path}: {width}x{height} pixels is more than the "
                         f"{MAX_PIXELS:,} reportgen decodes")
    notes = []
    frames = getattr(img, "n_frames", 1)
    if frames > 1 and img.format in ("TIFF", "MPO"):
        notes.append(f"{frames} pages: the first one was used")
    elif frames > 1:
        notes.append(f"animated ({frames} frames): the first frame was used")
    # JPEG can decode at 1/2, 1/4, 1/8 scale: large photos never exist at full size.
    scale = RESIZE_SHORTER / min(width, height)
    if scale < 1:
        img.draft("RGB", (max(1, int(width * scale) + 1), max(1, int(height * scale) + 1)))
    img.load()
    img = ImageOps.exif_transpose(img)
    rgb = to_rgb(img)
    return DecodedImage(crop=resize_and_crop(rgb), original_size=original_size, notes=tuple(notes))


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with transparency composited on white and 16-bit data scaled (not clipped)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or array.max() > 255 else 255.0
        img = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    elif img.mode == "F":
        array = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(array * (255.0 if array.max() <= 1 else 1.0) + 0.5,
                                      0, 255).astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "La", "PA"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    return img.convert("RGB")


def resize_and_crop(img: Image.Image) -> np.ndarray:
    """Shorter side to 256 (bilinear), then the centre 224x224, as uint8 (224, 224, 3).

    Only the source region under the crop is resampled (Pillow's `box`), which gives the
    same pixels as resizing the whole image and cropping, without ever building the whole
    resized image: a 1 x 100000 strip would otherwise become 256 x 25.6 million pixels."""
    width, height = img.size
    scale = RESIZE_SHORTER / min(width, height)
    new_width, new_height = max(CROP, round(width * scale)), max(CROP, round(height * scale))
    sx, sy = width / new_width, height / new_height   # source pixels per resized pixel
    left, top = (new_width - CROP) // 2, (new_height - CROP) // 2
    box = (left * sx, top * sy, (left + CROP) * sx, (top + CROP) * sy)
    return np.asarray(img.resize((CROP, CROP), Image.BILINEAR, box=box), dtype=np.uint8)


def normalize(crop: np.ndarray) -> np.ndarray:
    """uint8 (224, 224, 3) -> float32 (3, 224, 224), scaled to [0, 1] and standardized."""
    scaled = crop.astype(np.float32) / 255.0
    return ((scaled - MEAN) / STD).transpose(2, 0, 1).copy()


def noise_image(seed: int) -> np.ndarray:
    """The notebook's noise input: uniform(150, 180) per pixel and channel, as a 256x256
    8-bit image, cropped like any photo. Returns the uint8 (224, 224, 3) crop."""
    rng = np.random.default_rng(seed)
    pixels = np.rint(rng.uniform(150, 180, size=(RESIZE_SHORTER, RESIZE_SHORTER, 3)))
    return resize_and_crop(Image.fromarray(pixels.astype(np.uint8), "RGB"))

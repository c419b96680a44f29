"""Finding, decoding and preprocessing input images; ImageNet --target resolution."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reportgen import imagenet
from reportgen.errors import InputError, UsageError
from reportgen.images import (
    CROP,
    MEAN,
    STD,
    decode,
    find_images,
    image_id,
    noise_image,
    normalize,
    resize_and_crop,
)

GREY = (128, 128, 128)
RED = (220, 20, 30)


def solid(size, colour, mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour)


# --- normalize --------------------------------------------------------------------------------

def test_normalize_constant_colour_per_channel_rgb_order():
    crop = np.empty((224, 224, 3), dtype=np.uint8)
    crop[...] = (10, 128, 250)
    out = normalize(crop)
    assert out.shape == (3, 224, 224)
    assert out.dtype == np.float32
    for channel, value in enumerate((10, 128, 250)):
        expected = (value / 255 - [0.485, 0.456, 0.406][channel]) / [0.229, 0.224, 0.225][channel]
        np.testing.assert_allclose(out[channel], expected, rtol=1e-6, atol=1e-6)
    assert out[0, 0, 0] < out[1, 0, 0] < out[2, 0, 0]     # R is channel 0, B channel 2


def test_normalize_is_a_transpose_of_the_pixels():
    crop = np.random.default_rng(0).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    out = normalize(crop)
    for y, x in [(0, 0), (5, 7), (223, 1), (100, 223)]:
        expected = (crop[y, x].astype(np.float64) / 255 - MEAN) / STD
        np.testing.assert_allclose(out[:, y, x], expected, rtol=1e-5, atol=1e-6)
    assert out.flags["C_CONTIGUOUS"]


# --- resize_and_crop --------------------------------------------------------------------------

def test_resize_and_crop_takes_the_centre_of_a_wide_image():
    array = np.empty((300, 512, 3), dtype=np.uint8)
    array[...] = GREY
    array[:, :60] = (0, 0, 255)            # left and right: outside the crop
    array[:, -60:] = (0, 0, 255)
    array[:8] = (0, 255, 0)                # top and bottom: outside the crop too
    array[-8:] = (0, 255, 0)
    array[130:170, 236:276] = RED          # the centre mark, 40x40 around (256, 150)
    crop = resize_and_crop(Image.fromarray(array))

    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    red = (crop[..., 0] > 150) & (crop[..., 1] < 100) & (crop[..., 2] < 100)
    ys, xs = np.nonzero(red)
    assert abs(ys.mean() - 111.5) <= 1.0 and abs(xs.mean() - 111.5) <= 1.0
    # 40 px scaled by 256/300 is ~34 px
    assert 30 <= xs.max() - xs.min() + 1 <= 37 and 30 <= ys.max() - ys.min() + 1 <= 37
    assert not np.any((crop[..., 2] > 150) & (crop[..., 0] < 100))    # no blue
    assert not np.any((crop[..., 1] > 150) & (crop[..., 0] < 100))    # no green
    assert tuple(crop[0, 0]) == GREY and tuple(crop[-1, -1]) == GREY


def test_resize_and_crop_small_and_tall_images():
    assert resize_and_crop(solid((50, 30), RED)).shape == (224, 224, 3)        # upscaled
    tall = resize_and_crop(solid((300, 1000), RED))
    assert tall.shape == (224, 224, 3)
    assert np.all(tall == RED)


# --- decode: formats --------------------------------------------------------------------------

def smooth_image(width=300, height=400) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    array = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1)
    return Image.fromarray(array.astype(np.uint8))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp", ".tif"])
def test_decode_saved_image(tmp_path, suffix):
    path = tmp_path / f"photo{suffix}"
    smooth_image().save(path)
    decoded = decode(path)
    assert decoded.crop.shape == (224, 224, 3)
    assert decoded.crop.dtype == np.uint8
    assert decoded.original_size == (300, 400)
    assert decoded.notes == ()
    with Image.open(path) as img:
        reference = resize_and_crop(img.convert("RGB"))
    np.testing.assert_array_equal(decoded.crop, reference)


def test_decode_large_jpeg_reports_the_stored_size(tmp_path):
    path = tmp_path / "big.jpg"
    smooth_image(2048, 1536).save(path, quality=80)
    decoded = decode(path)
    assert decoded.crop.shape == (224, 224, 3)
    assert decoded.original_size == (2048, 1536)


def test_decode_large_jpeg_crop_is_close_to_the_full_decode(tmp_path):
    path = tmp_path / "big.jpg"
    smooth_image(2048, 1536).save(path, quality=90)
    with Image.open(path) as img:
        reference = resize_and_crop(img.convert("RGB")).astype(int)
    crop = decode(path).crop.astype(int)
    assert np.abs(crop - reference).mean() < 3


def test_decode_grayscale(tmp_path):
    path = tmp_path / "grey.png"
    solid((256, 256), 77, mode="L").save(path)
    crop = decode(path).crop
    assert crop.shape == (224, 224, 3)
    assert np.all(crop == 77)


def test_decode_palette_without_and_with_transparency(tmp_path):
    img = Image.new("P", (256, 256), 0)
    img.putpalette([200, 10, 30, 0, 0, 255] + [0] * (256 * 3 - 6))
    img.paste(1, (0, 128, 256, 256))      # bottom half: palette index 1
    opaque = tmp_path / "opaque.png"
    img.save(opaque)
    crop = decode(opaque).crop
    assert tuple(crop[10, 100]) == (200, 10, 30)
    assert tuple(crop[200, 100]) == (0, 0, 255)

    transparent = tmp_path / "transparent.png"
    img.save(transparent, transparency=1)  # index 1 is transparent
    crop = decode(transparent).crop
    assert tuple(crop[10, 100]) == (200, 10, 30)
    assert tuple(crop[200, 100]) == (255, 255, 255)


def test_decode_rgba_composites_on_white(tmp_path):
    array = np.zeros((256, 256, 4), dtype=np.uint8)    # fully transparent black
    array[:, :100] = (255, 0, 0, 255)                  # opaque red
    array[:, 150:] = (0, 0, 255, 128)                  # half-transparent blue
    path = tmp_path / "rgba.png"
    Image.fromarray(array, "RGBA").save(path)
    crop = decode(path).crop                           # columns 16..239 of the original
    assert tuple(crop[100, 10]) == (255, 0, 0)
    assert tuple(crop[100, 112]) == (255, 255, 255)    # transparent black became white
    r, g, b = (int(v) for v in crop[100, 200])
    assert abs(r - 127) <= 1 and abs(g - 127) <= 1 and b == 255


def test_decode_grey_with_alpha(tmp_path):
    path = tmp_path / "la.png"
    Image.new("LA", (256, 256), (0, 0)).save(path)
    assert np.all(decode(path).crop == 255)


def test_decode_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    array = np.empty((256, 256), dtype=np.uint16)
    array[:86] = 65535
    array[86:171] = 32768
    array[171:] = 1000
    path = tmp_path / "deep.png"
    Image.fromarray(array).save(path)
    with Image.open(path) as img:
        assert img.mode == "I;16"          # the case under test
    crop = decode(path).crop               # rows 16..239 of the original
    assert np.all(crop[10] == 255)
    assert np.all(np.abs(crop[112].astype(int) - 128) <= 1)
    assert np.all(crop[200] == 4)          # 1000 / 65535 * 255 = 3.9, not clipped to 255


def test_decode_applies_exif_orientation(tmp_path):
    array = np.empty((300, 400, 3), dtype=np.uint8)   # stored landscape, 400 wide
    array[...] = GREY
    array[:, :150] = RED                               # marker on the stored left side
    img = Image.fromarray(array)

    plain = tmp_path / "plain.jpg"
    img.save(plain, quality=95)
    crop = decode(plain).crop.astype(int)
    assert crop[112, 5, 0] > 180 and crop[112, 5, 1] < 80          # left is red
    assert abs(crop[5, 200, 0] - 128) < 20                          # top right is grey

    exif = Image.Exif()
    exif[0x0112] = 6                                   # rotate 90 degrees clockwise to show
    rotated = tmp_path / "rotated.jpg"
    img.save(rotated, quality=95, exif=exif.tobytes())
    decoded = decode(rotated)
    assert decoded.original_size == (300, 400)         # portrait once oriented
    crop = decoded.crop.astype(int)
    assert np.all(crop[5, :, 0] > 180) and np.all(crop[5, :, 1] < 80)   # the left went on top
    assert abs(crop[200, 5, 0] - 128) < 20 and abs(crop[200, 5, 1] - 128) < 20
    assert abs(crop[112, 5, 1] - 128) < 20             # left middle is grey now


def test_decode_animated_gif_uses_the_first_frame(tmp_path):
    frames = [solid((256, 256), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    decoded = decode(path)
    assert len(decoded.notes) == 1
    assert "3 frames" in decoded.notes[0] and "first" in decoded.notes[0]
    assert np.all(decoded.crop == (255, 0, 0))


def test_still_gif_has_no_note(tmp_path):
    path = tmp_path / "still.gif"
    solid((256, 256), (0, 0, 255)).save(path)
    assert decode(path).notes == ()


# --- decode: errors ---------------------------------------------------------------------------

def assert_input_error(path: Path):
    with pytest.raises(InputError) as info:
        decode(path)
    assert str(path) in str(info.value)
    assert info.value.exit_code == 1
    return info.value


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert "empty" in str(assert_input_error(path))


def test_text_with_jpg_extension(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is a shopping list, not a photo\n")
    assert_input_error(path)


def test_folder(tmp_path):
    folder = tmp_path / "photos.jpg"
    folder.mkdir()
    assert "folder" in str(assert_input_error(folder))


def test_missing_file(tmp_path):
    assert_input_error(tmp_path / "gone.png")


def test_truncated_png(tmp_path):
    noise = np.random.default_rng(1).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    path = tmp_path / "cut.png"
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_input_error(path)


def test_truncated_png_after_weasyprint_import(tmp_path, monkeypatch):
    """WeasyPrint turns Pillow's LOAD_TRUNCATED_IMAGES on globally when imported."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    test_truncated_png(tmp_path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for whoever set it


def test_truncated_jpeg_header(tmp_path):
    path = tmp_path / "cut.jpg"
    smooth_image().save(path)
    path.write_bytes(path.read_bytes()[:20])
    assert_input_error(path)


# --- find_images ------------------------------------------------------------------------------

def test_find_images_walks_sorted_and_filters(tmp_path):
    root = tmp_path / "in"
    for rel in ["b.png", "A.JPG", "z.Jpeg", "notes.txt", "model.params",
                "sub/c.PNG", "sub/readme.md", "sub/deeper/d.gif", "a_dir/e.webp",
                "a_dir/f.TIFF", "a_dir/g.bmp"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    missing = tmp_path / "not-there"

    found, problems = find_images([root, missing, root / "b.png"])

    assert found == [root / "A.JPG", root / "b.png", root / "z.Jpeg",
                     root / "a_dir" / "e.webp", root / "a_dir" / "f.TIFF",
                     root / "a_dir" / "g.bmp",
                     root / "sub" / "c.PNG", root / "sub" / "deeper" / "d.gif"]
    assert problems == [(missing, "does not exist")]


def test_find_images_named_file_is_kept_and_empty_folder_is_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    named = tmp_path / "scan.jpeg"
    named.write_bytes(b"x")
    found, problems = find_images([tmp_path / "empty", named])
    assert found == [named] and problems == []


# --- image_id ---------------------------------------------------------------------------------

NASTY_NAMES = ["my holiday photo.jpg", "café crème.png", "日本語.jpg", "100% #1 \"best\" 'one'.png",
               "<img src=x onerror=alert(1)>.png", "..hidden.jpg", "%.jpg", "ÅNGSTRÖM.JPG",
               "a" * 200 + ".png", "tab\there.png"]


@pytest.mark.parametrize("name", NASTY_NAMES)
def test_image_id_is_safe_and_deterministic(name):
    path = Path("/data/inputs") / name
    first = image_id(path, set())
    assert re.fullmatch(r"[a-z0-9-]+", first), first
    assert first == image_id(path, set())
    assert len(first) <= 40 + 1 + 64


def test_image_id_readable_slugs():
    assert image_id(Path("x/<img src=x onerror=alert(1)>.png"), set()).startswith(
        "img-src-x-onerror-alert-1-")
    assert image_id(Path("x/café crème.png"), set()).startswith("cafe-creme-")
    assert image_id(Path("x/日本語.jpg"), set()).startswith("image-")


def test_image_id_distinct_for_same_stem_in_different_folders():
    used: set[str] = set()
    a = image_id(Path("/data/a/cat.jpg"), used)
    b = image_id(Path("/data/b/cat.jpg"), used)
    c = image_id(Path("/data/a/cat.png"), used)
    assert len({a, b, c}) == 3
    assert all(i.startswith("cat-") for i in (a, b, c))
    assert image_id(Path("/data/a/cat.jpg"), set()) != image_id(Path("/data/b/cat.jpg"), set())
    assert used == {a, b, c}


def test_image_id_same_path_twice_in_one_run_gets_a_longer_id():
    used: set[str] = set()
    first = image_id(Path("/data/a/cat.jpg"), used)
    second = image_id(Path("/data/a/cat.jpg"), used)
    assert first != second and second.startswith(first)


# --- noise_image ------------------------------------------------------------------------------

def test_noise_image_deterministic_per_seed():
    a, b, c = noise_image(0), noise_image(0), noise_image(1)
    assert a.shape == (224, 224, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for img in (a, c):
        assert img.min() >= 150 and img.max() <= 180
        assert img.max() - img.min() >= 25          # really noise, not a flat fill
    assert CROP == 224


# --- imagenet.resolve_target ------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [("top1", None), ("TOP1", None), (" top1 ", None),
                                           ("281", 281), ("0", 0), ("999", 999),
                                           ("tabby", 281), ("Tabby", 281), ("n02123045", 281),
                                           ("crane", 517), ("crane bird", 134)])
def test_resolve_target(text, expected):
    assert imagenet.resolve_target(text) == expected


@pytest.mark.parametrize("text", ["1000", "no-such-class", "-1", "", "tabb"])
def test_resolve_target_errors(text):
    with pytest.raises(UsageError) as info:
        imagenet.resolve_target(text)
    assert info.value.exit_code == 2


def test_resolve_target_suggests_near_names():
    with pytest.raises(UsageError) as info:
        imagenet.resolve_target("tabb")
    assert "tabby" in (info.value.hint or "")


def test_class_table_and_label():
    assert len(imagenet.class_table()) == 1000
    assert imagenet.label(281) == "tabby"
    assert imagenet.label(0) == "tench"


def test_shown_path_is_relative_to_the_folder_it_was_found_in(tmp_path):
    from reportgen.images import shown_path

    folder = tmp_path / "deep" / "photos"
    (folder / "sub").mkdir(parents=True)
    assert shown_path(folder / "sub" / "cat.png", [folder]) == "photos/sub/cat.png"
    assert shown_path(tmp_path / "other.png", [folder]) == str(tmp_path / "other.png")

"""Image uploads: checked by content, bombs and broken files refused, metadata stripped.

Every image here is generated in memory with Pillow (or crafted byte by byte), so the
tests depend on no fixture file.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile
from PIL.PngImagePlugin import PngInfo

from refract.core.errors import (
    FieldError,
    PayloadTooLarge,
    ProblemError,
    UnsupportedMediaType,
    ValidationFailed,
)
from refract.imaging.uploads import NOT_A_DATA_URL, CleanImage, decode_data_url, sanitize_image
from tests.support.images import encode, noise

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
SECRET = "Secret-Location-42"


def sanitize(data: bytes, **overrides: Any) -> CleanImage:
    """``sanitize_image`` with the default limits of the settings."""
    limits: dict[str, Any] = {"field": "photo", "max_bytes": MAX_BYTES, "max_pixels": MAX_PIXELS}
    limits.update(overrides)
    return sanitize_image(data, **limits)


def reopen(clean: CleanImage) -> Image.Image:
    """Decode the sanitised bytes again, as a consumer would."""
    image = Image.open(io.BytesIO(clean.data))
    image.load()
    return image


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    """EXIF with a camera make, an orientation and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = SECRET
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 36.0)
    return exif


def png_with_header(width: int, height: int, idat: bytes) -> bytes:
    """A 1-bit greyscale PNG whose IHDR claims any size, with the given IDAT payload."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_with_header(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF0 marker is patched to claim ``width`` x ``height``."""
    jpeg = bytearray(encode(noise((32, 32)), "JPEG"))
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(jpeg)


@pytest.fixture
def no_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any image file's pixels are decoded."""

    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


# --- accepted images -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_real_images_pass_and_keep_their_format(fmt: str, mime: str) -> None:
    clean = sanitize(encode(noise((64, 48)), fmt))
    assert (clean.format, clean.mime_type, clean.width, clean.height) == (fmt, mime, 64, 48)
    again = reopen(clean)
    assert again.format == fmt
    assert again.size == (64, 48)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_and_gps_are_removed(fmt: str) -> None:
    data = encode(noise(), fmt, exif=exif_with_gps())
    before = Image.open(io.BytesIO(data)).getexif()
    assert before.get_ifd(ExifTags.IFD.GPSInfo)  # the fixture really carries GPS

    clean = sanitize(data)

    after = reopen(clean)
    assert len(after.getexif()) == 0
    assert not after.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert "exif" not in after.info
    assert SECRET.encode() not in clean.data
    assert b"Exif" not in clean.data


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied(fmt: str) -> None:
    # 40x20, red on the left, blue on the right; orientation 6 means "rotate 90 degrees
    # clockwise to display", which puts the red half on top.
    image = Image.new("RGB", (40, 20), "blue")
    image.paste(Image.new("RGB", (20, 20), "red"), (0, 0))

    clean = sanitize(encode(image, fmt, exif=exif_with_gps(orientation=6)))

    upright = reopen(clean).convert("RGB")
    assert (clean.width, clean.height) == (20, 40) == upright.size
    top, bottom = upright.getpixel((10, 5)), upright.getpixel((10, 35))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60
    assert ExifTags.Base.Orientation not in reopen(clean).getexif()


@pytest.mark.parametrize(
    ("fmt", "progressive"), [("JPEG", False), ("JPEG", True), ("PNG", False), ("WEBP", False)]
)
def test_max_side_keeps_a_large_image_scaled_down_to_fit(fmt: str, progressive: bool) -> None:
    # Red on the left half, blue on the right: the scaled image keeps the picture.
    image = Image.new("RGB", (1280, 720), "blue")
    image.paste(Image.new("RGB", (640, 720), "red"), (0, 0))
    params: dict[str, Any] = {"progressive": True} if progressive else {}

    clean = sanitize(encode(image, fmt, exif=exif_with_gps(), **params), max_side=640)

    scaled = reopen(clean).convert("RGB")
    assert (clean.width, clean.height) == (640, 360) == scaled.size
    left, right = scaled.getpixel((100, 180)), scaled.getpixel((540, 180))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert left[0] > 200 and right[2] > 200
    assert SECRET.encode() not in clean.data


def test_max_side_applies_after_the_exif_orientation() -> None:
    # 1000x200 stored, shown rotated (orientation 6) as 200x1000: it fits 500 as 100x500.
    clean = sanitize(
        encode(noise((1000, 200)), "JPEG", exif=exif_with_gps(orientation=6)), max_side=500
    )
    assert (clean.width, clean.height) == (100, 500) == reopen(clean).size


def test_max_side_leaves_a_smaller_image_as_it_is() -> None:
    clean = sanitize(encode(noise((300, 200)), "PNG"), max_side=640)
    assert (clean.width, clean.height) == (300, 200)


def test_png_text_chunks_and_icc_profile_are_removed() -> None:
    info = PngInfo()
    info.add_text("Comment", SECRET)
    info.add_text("Author", SECRET, zip=True)
    info.add_itxt("XML:com.adobe.xmp", f"<x:xmpmeta>{SECRET}</x:xmpmeta>")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(noise(), "PNG", pnginfo=info, icc_profile=icc)
    assert Image.open(io.BytesIO(data)).info.get("Comment") == SECRET

    clean = sanitize(data)

    after = reopen(clean)
    assert SECRET.encode() not in clean.data
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"eXIf"):
        assert chunk not in clean.data
    assert not {"Comment", "Author", "XML:com.adobe.xmp", "icc_profile"} & set(after.info)


def test_jpeg_comment_xmp_and_icc_profile_are_removed() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = f"<x:xmpmeta><rdf:RDF>{SECRET}</rdf:RDF></x:xmpmeta>".encode()
    data = encode(noise(), "JPEG", comment=SECRET, xmp=xmp, icc_profile=icc)
    assert SECRET.encode() in data

    clean = sanitize(data)

    after = reopen(clean)
    assert SECRET.encode() not in clean.data
    assert not {"comment", "xmp", "icc_profile", "exif"} & set(after.info)


@pytest.mark.parametrize(
    ("image", "fmt", "mode", "pixel"),
    [
        (Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", "RGB", (255, 0, 0)),
        (Image.new("L", (32, 32), 100), "JPEG", "RGB", (100, 100, 100)),
        (Image.new("LA", (32, 32), (10, 20)), "PNG", "RGBA", (10, 10, 10, 20)),
        (Image.new("1", (32, 32), 1), "PNG", "RGB", (255, 255, 255)),
        (Image.new("I;16", (32, 32), 65535), "PNG", "RGB", (255, 255, 255)),
        (Image.new("I;16", (32, 32), 32768), "PNG", "RGB", (128, 128, 128)),
        (Image.new("RGBA", (32, 32), (1, 2, 3, 4)), "PNG", "RGBA", (1, 2, 3, 4)),
        (Image.new("RGBA", (32, 32), (200, 0, 0, 0)), "WEBP", "RGBA", None),
    ],
)
def test_modes_are_normalised(
    image: Image.Image, fmt: str, mode: str, pixel: tuple[int, ...] | None
) -> None:
    clean = sanitize(encode(image, fmt))
    after = reopen(clean)
    assert after.mode == mode
    if pixel is not None:
        got = after.getpixel((16, 16))
        assert isinstance(got, tuple)
        assert all(abs(a - b) <= 2 for a, b in zip(got, pixel, strict=True)), got


def test_palette_transparency_becomes_alpha() -> None:
    image = Image.new("P", (32, 32), 3)
    image.putpalette([0, 0, 0, 10, 10, 10, 20, 20, 20, 200, 100, 50])
    clean = sanitize(encode(image, "PNG", transparency=3))
    after = reopen(clean)
    assert after.mode == "RGBA"
    assert after.getpixel((0, 0)) == (200, 100, 50, 0)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_images_keep_only_the_first_frame(fmt: str) -> None:
    red, blue = (Image.new("RGB", (32, 32), c) for c in ("red", "blue"))
    data = encode(red, fmt, save_all=True, append_images=[blue], lossless=True)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2

    clean = sanitize(data)

    after = reopen(clean)
    assert getattr(after, "n_frames", 1) == 1
    first = after.convert("RGB").getpixel((16, 16))
    assert isinstance(first, tuple)
    assert first[0] > 240 and first[2] < 15


def test_multi_picture_jpeg_from_a_phone_becomes_a_plain_jpeg() -> None:
    red, blue = (Image.new("RGB", (32, 32), c) for c in ("red", "blue"))
    data = encode(red, "MPO", save_all=True, append_images=[blue])
    assert Image.open(io.BytesIO(data)).format == "MPO"

    clean = sanitize(data)

    assert clean.format == "JPEG"
    after = reopen(clean)
    assert after.format == "JPEG"
    first = after.getpixel((16, 16))
    assert isinstance(first, tuple) and first[0] > 240


# --- refused by type (415) -------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"hello, I am a text file renamed photo.png\n", id="text-as-png"),
        pytest.param(encode(noise((32, 32)), "GIF"), id="gif"),
        pytest.param(encode(noise((32, 32)), "BMP"), id="bmp"),
        pytest.param(encode(noise((32, 32)), "TIFF"), id="tiff"),
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>', id="svg"),
        pytest.param(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n", id="pdf"),
        pytest.param(b"\x89PNG\r\n\x1a\n", id="png-signature-only"),
    ],
)
def test_non_images_and_other_formats_are_415(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        sanitize(data)
    assert caught.value.status == 415
    assert caught.value.errors == [FieldError("photo", caught.value.errors[0].message)]


# --- refused by content (422) ----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_images_are_422(fmt: str, keep: float) -> None:
    data = encode(noise((96, 64)), fmt)
    with pytest.raises(ValidationFailed, match="truncated or corrupt"):
        sanitize(data[: int(len(data) * keep)])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_corrupt_png_data_is_422() -> None:
    data = bytearray(encode(noise(), "PNG"))
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xaa" * 64
    with pytest.raises(ValidationFailed, match="truncated or corrupt"):
        sanitize(bytes(data))


def test_pixel_limit_is_checked_from_the_header_before_decoding(
    no_pixel_decoding: None,
) -> None:
    # 3000x3000 claims 9 Mpx: under Pillow's own limit, over ours.
    data = png_with_header(3000, 3000, zlib.compress(b"\0" * 100))
    with pytest.raises(ValidationFailed, match="3000x3000 pixels; at most 1000000") as caught:
        sanitize(data, max_pixels=1_000_000)
    assert caught.value.status == 422


def test_cheap_real_bomb_is_refused() -> None:
    # A genuine 25 Mpx 1-bit PNG compresses to a few KB.
    data = encode(Image.new("1", (5000, 5000)), "PNG")
    assert len(data) < 10_000
    with pytest.raises(ValidationFailed, match="5000x5000"):
        sanitize(data, max_pixels=1_000_000)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(png_with_header(20000, 20000, zlib.compress(b"\0" * 100)), id="png"),
        pytest.param(jpeg_with_header(60000, 60000), id="jpeg"),
    ],
)
def test_headers_claiming_hundreds_of_megapixels_are_422(data: bytes) -> None:
    # Over twice Pillow's own global limit: Pillow refuses while reading the header.
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ValidationFailed, match="too many pixels"):
        sanitize(data)
    assert limit_before == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize("size", [(8, 8), (15, 300), (300, 15), (1, 1)])
def test_tiny_images_are_422(size: tuple[int, int]) -> None:
    with pytest.raises(ValidationFailed, match="at least 16"):
        sanitize(encode(Image.new("RGB", size, "white"), "PNG"))


def test_sixteen_pixels_a_side_is_enough() -> None:
    assert sanitize(encode(Image.new("RGB", (16, 16), "white"), "PNG")).width == 16


# --- size (413) ------------------------------------------------------------------------


def test_byte_limit_is_413_and_inclusive() -> None:
    data = encode(noise(), "PNG")
    assert sanitize(data, max_bytes=len(data)).format == "PNG"
    with pytest.raises(PayloadTooLarge) as caught:
        sanitize(data, max_bytes=len(data) - 1)
    assert caught.value.status == 413
    assert caught.value.errors[0].field == "photo"


def test_errors_name_the_field() -> None:
    with pytest.raises(ProblemError) as caught:
        sanitize_image(b"nope", field="source.thumbnail", max_bytes=100, max_pixels=100)
    assert [e.field for e in caught.value.errors] == ["source.thumbnail"]
    assert caught.value.body()["errors"][0]["field"] == "source.thumbnail"


# --- data: URLs ------------------------------------------------------------------------


def data_url(data: bytes, media_type: str = "image/png") -> str:
    """A base64 data: URL."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def decode(value: str, **overrides: Any) -> CleanImage:
    """``decode_data_url`` with the default limits."""
    limits: dict[str, Any] = {
        "field": "source.thumbnail",
        "max_bytes": MAX_BYTES,
        "max_pixels": MAX_PIXELS,
    }
    limits.update(overrides)
    return decode_data_url(value, **limits)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_good_data_url_is_decoded_and_sanitised(fmt: str) -> None:
    raw = encode(noise(), fmt, exif=exif_with_gps())
    clean = decode(data_url(raw, f"image/{fmt.lower()}"))
    assert clean.format == fmt
    assert (clean.width, clean.height) == (64, 48)
    assert len(reopen(clean).getexif()) == 0


def test_data_url_type_and_case_do_not_decide_the_format() -> None:
    raw = encode(noise(), "PNG")
    clean = decode(
        data_url(raw, "image/jpeg").replace("data:image/jpeg;base64", "DATA:IMAGE/JPEG;BASE64")
    )
    assert clean.format == "PNG"


def test_data_url_with_parameters_is_accepted() -> None:
    raw = encode(noise(), "PNG")
    assert decode(data_url(raw, "image/png;name=thumb.png")).format == "PNG"


@pytest.mark.parametrize(
    "value",
    [
        "https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "//example.com/a.png",
        "iVBORw0KGgo=",
        "",
    ],
)
def test_non_data_urls_are_refused(value: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode(value)
    assert caught.value.errors == [FieldError("source.thumbnail", NOT_A_DATA_URL)]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("data:image/png;base64,iVBO$$$=", ValidationFailed),
        ("data:image/png;base64,iVBO\nRw0K", ValidationFailed),
        ("data:image/png;base64,iVBORw0K GgoA", ValidationFailed),
        ("data:image/png;base64,abc", ValidationFailed),
        ("data:image/png;base64,ab=c", ValidationFailed),
        ("data:image/png;base64,iVBO-_w0", ValidationFailed),
        ("data:image/png,%89PNG%0D%0A", ValidationFailed),
        ("data:image/png;base64", ValidationFailed),
        ("data:image/png;charset=utf-8;base64;base64,AAAA", ValidationFailed),
        ("data:image/<script>;base64,AAAA", ValidationFailed),
        ("data:text/plain;base64,aGVsbG8=", UnsupportedMediaType),
        ("data:;base64,aGVsbG8=", UnsupportedMediaType),
        ("data:image/png;base64,", UnsupportedMediaType),
        ("data:image/png;base64,aGVsbG8gd29ybGQ=", UnsupportedMediaType),
    ],
)
def test_bad_data_urls_are_refused(value: str, error: type[ProblemError]) -> None:
    with pytest.raises(error):
        decode(value)


def test_data_url_holding_a_gif_is_415() -> None:
    with pytest.raises(UnsupportedMediaType):
        decode(data_url(encode(noise((32, 32)), "GIF"), "image/gif"))


def test_data_url_size_is_checked_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = encode(noise(), "PNG")
    value = data_url(raw)
    assert decode(value, max_bytes=len(raw)).format == "PNG"

    def refuse(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("payload was decoded")

    monkeypatch.setattr("refract.imaging.uploads.base64.b64decode", refuse)
    with pytest.raises(PayloadTooLarge):
        decode(value, max_bytes=len(raw) - 1)

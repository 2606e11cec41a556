"""Empty, mislabelled, truncated, damaged and unsupported files: each gets a typed error with a one-line message."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike import (
    ConfigError,
    CorruptImage,
    DecodeLimits,
    InputError,
    LookalikeError,
    NotAnImage,
    TruncatedImage,
    UnsupportedFormat,
    fingerprint,
)
from lookalike.decode import decode_image, read_header
from tests.images import encode, mean_abs_diff, photo

PHOTO = photo(320, 240, seed=9)


def _one_line(err: BaseException) -> None:
    text = str(err)
    assert text.strip(), "empty message"
    assert "\n" not in text and "\r" not in text, f"message is not one line: {text!r}"


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, this is a text file, not a picture\n" * 20, b"\x00" * 1000, b"GIF87a", b"%PDF-1.4\n%%EOF\n"],
    ids=["empty", "text", "zeros", "gif-magic-only", "pdf"],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(NotAnImage) as err:
        decode_image(data)
    _one_line(err.value)
    with pytest.raises(NotAnImage):
        read_header(data)


def test_empty_file_says_so() -> None:
    with pytest.raises(NotAnImage, match="empty"):
        decode_image(b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "TIFF", "BMP"])
@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_file_is_truncated_image(fmt: str, fraction: float) -> None:
    data = encode(PHOTO, fmt)
    with pytest.raises(TruncatedImage) as err:
        decode_image(data[: int(len(data) * fraction)])
    _one_line(err.value)
    assert "truncated" in str(err.value)


def test_truncated_jpeg_still_has_a_readable_header() -> None:
    data = encode(PHOTO, "JPEG", quality=90)
    header = read_header(data[: len(data) // 2])
    assert (header.format, header.width, header.height) == ("JPEG", 320, 240)


@pytest.mark.parametrize(
    "fmt",
    [
        "WEBP",
        "HEIF",
        "AVIF",
    ],
)
def test_truncated_modern_formats_are_corrupt_images(fmt: str) -> None:
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif").register_heif_opener()
    data = encode(PHOTO, fmt)
    with pytest.raises(CorruptImage):
        decode_image(data[: len(data) // 2])


def _truncated(fmt: str) -> bytes:
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif").register_heif_opener()
    data = encode(PHOTO, fmt)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "fmt",
    [
        "JPEG",
        "PNG",
        "WEBP",
        "GIF",
        "TIFF",
        "BMP",
        "HEIF",
    ],
)
def test_decode_error_messages_are_one_line(fmt: str) -> None:
    with pytest.raises(InputError) as err:
        decode_image(_truncated(fmt))
    _one_line(err.value)


def test_png_with_damaged_image_data_is_a_corrupt_image() -> None:
    data = bytearray(encode(PHOTO, "PNG"))
    middle = len(data) // 2
    data[middle : middle + 100] = b"\x00" * 100  # inside the compressed pixels
    try:
        image = decode_image(bytes(data))
    except CorruptImage as err:
        _one_line(err)
        return
    pytest.fail(f"damaged PNG decoded without error (mean difference {mean_abs_diff(image.pixels, PHOTO):.0f})")


def _write(fmt: str) -> bytes:
    if fmt in ("ICO", "PCX", "TGA", "PPM"):
        return encode(PHOTO.resize((64, 64)), fmt)
    if fmt == "PSD":  # Pillow reads PSD but cannot write it: a minimal 1x1 RGB PSD by hand
        return (
            b"8BPS" + (1).to_bytes(2, "big") + b"\x00" * 6 + (3).to_bytes(2, "big")
            + (1).to_bytes(4, "big") + (1).to_bytes(4, "big") + (8).to_bytes(2, "big") + (3).to_bytes(2, "big")
            + b"\x00" * 4 + b"\x00" * 4 + b"\x00" * 4 + (0).to_bytes(2, "big") + b"\x80\x40\x20"
        )  # fmt: skip
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt", ["ICO", "PCX", "TGA", "PPM", "PSD"])
def test_format_outside_the_allow_list_is_unsupported(fmt: str) -> None:
    data = _write(fmt)
    with pytest.raises(UnsupportedFormat) as err:
        decode_image(data)
    _one_line(err.value)
    assert fmt in str(err.value)
    with pytest.raises(UnsupportedFormat):
        read_header(data)


def test_allow_list_can_be_narrowed() -> None:
    png = encode(PHOTO, "PNG")
    jpeg_only = DecodeLimits(formats=frozenset({"JPEG"}))
    with pytest.raises(UnsupportedFormat, match="PNG"):
        decode_image(png, limits=jpeg_only)
    with pytest.raises(UnsupportedFormat):
        fingerprint(png, limits=jpeg_only)
    assert decode_image(encode(PHOTO, "JPEG"), limits=jpeg_only).format == "JPEG"


def test_heic_outside_a_narrowed_allow_list_is_unsupported() -> None:
    pytest.importorskip("pillow_heif").register_heif_opener()
    heic = encode(PHOTO, "HEIF")
    with pytest.raises(UnsupportedFormat):
        decode_image(heic, limits=DecodeLimits(formats=frozenset({"JPEG", "PNG"})))


def test_unknown_format_in_allow_list_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        DecodeLimits(formats=frozenset({"JPEG", "ICO"}))
    with pytest.raises(ConfigError):
        DecodeLimits(max_pixels=0)


def test_every_input_error_is_a_lookalike_error_with_a_code() -> None:
    for exc_type in (NotAnImage, UnsupportedFormat, CorruptImage, TruncatedImage):
        assert issubclass(exc_type, InputError)
        assert issubclass(exc_type, LookalikeError)
    codes = {e.code for e in (NotAnImage, UnsupportedFormat, CorruptImage, TruncatedImage)}
    assert len(codes) == 4


def test_fingerprint_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    data = encode(PHOTO, "JPEG")
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedImage) as err:
        fingerprint(path)
    assert "broken.jpg" in str(err.value)
    _one_line(err.value)


@pytest.mark.parametrize("size", [(32, 24), (6400, 4800), (0, 0), (0xFFFFFFFF, 0xFFFFFFFF)])
def test_heic_with_an_edited_size_box_is_a_typed_error(size: tuple[int, int]) -> None:
    """pillow-heif raises RuntimeError for some of libheif's failures: they are typed errors too."""
    import struct

    pytest.importorskip("pillow_heif").register_heif_opener()
    from lookalike.errors import InputError

    data = bytearray(encode(photo(64, 48, seed=9), "HEIF", quality=50))
    at = data.find(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", *size)
    with pytest.raises(InputError) as err:
        decode_image(bytes(data))
    assert type(err.value).__name__ in ("CorruptImage", "TooLarge")

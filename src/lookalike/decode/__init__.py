"""Bytes to upright canonical pixels: the only package that imports Pillow and pillow-heif."""

from lookalike.decode.image import DecodedImage, ImageHeader, RowSink, decode_image, read_header
from lookalike.decode.metadata import FileFacts, file_facts, preview_jpeg, preview_pixels
from lookalike.decode.pixels import halve
from lookalike.decode.source import (
    REQUEST_HEADERS,
    BoundedBody,
    Source,
    file_kind,
    is_url,
    read_file,
    read_source,
    redacted_url,
)

__all__ = [
    "REQUEST_HEADERS",
    "BoundedBody",
    "DecodedImage",
    "FileFacts",
    "ImageHeader",
    "RowSink",
    "Source",
    "decode_image",
    "file_facts",
    "file_kind",
    "halve",
    "is_url",
    "preview_jpeg",
    "preview_pixels",
    "read_header",
    "read_file",
    "read_source",
    "redacted_url",
]

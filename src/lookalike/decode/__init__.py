"""Bytes to upright canonical pixels: the only package that imports Pillow and pillow-heif."""

from lookalike.decode.image import DecodedImage, ImageHeader, decode_image, halve, read_header
from lookalike.decode.metadata import FileFacts, file_facts, preview_jpeg, preview_pixels
from lookalike.decode.source import Source, file_kind, is_url, read_file, read_source

__all__ = [
    "DecodedImage",
    "FileFacts",
    "ImageHeader",
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
]

"""Bytes to upright canonical pixels: the only package that imports Pillow and pillow-heif."""

from lookalike.decode.image import DecodedImage, ImageHeader, decode_image, halve, read_header
from lookalike.decode.source import Source, is_url, read_source

__all__ = ["DecodedImage", "ImageHeader", "Source", "decode_image", "halve", "is_url", "read_header", "read_source"]

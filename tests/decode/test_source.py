"""Reading image bytes from files and bytes in hand (URLs: tests/match and tests/hostile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike import FetchError, TooLarge, fingerprint
from lookalike.decode import read_source
from tests.images import encode, photo


def test_file_is_read_with_its_name(tmp_path: Path) -> None:
    data = encode(photo(64, 48), "PNG")
    path = tmp_path / "picture.png"
    path.write_bytes(data)
    source = read_source(path)
    assert source.data == data
    assert source.name == str(path)
    assert fingerprint(path).name == str(path)


def test_bytes_pass_through() -> None:
    source = read_source(b"\x89PNG whatever")
    assert source.data == b"\x89PNG whatever"
    assert source.name == "<bytes>"


def test_missing_file_is_a_fetch_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="no such file"):
        read_source(tmp_path / "nope.jpg")


def test_folder_is_a_fetch_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="folder"):
        read_source(tmp_path)


def test_file_over_the_byte_cap_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(b"\xff" * 5000)
    with pytest.raises(TooLarge):
        read_source(path, max_bytes=4999)
    assert read_source(path, max_bytes=5000).data == b"\xff" * 5000


def test_bytes_over_the_byte_cap_are_refused() -> None:
    with pytest.raises(TooLarge):
        read_source(b"x" * 11, max_bytes=10)

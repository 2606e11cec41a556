"""Hostile and broken web servers: every failure is a typed error, and none hangs or fills memory."""

from __future__ import annotations

import pytest

from lookalike import DecodeLimits, FetchError, FetchLimits, NotAnImage, TooLarge, compare, fingerprint
from lookalike.decode import read_source
from tests.conftest import ImageServer
from tests.images import encode, photo

QUICK = FetchLimits(connect_timeout_s=2.0, read_timeout_s=2.0)


def test_unreachable_url_is_a_fetch_error(closed_port_url: str) -> None:
    with pytest.raises(FetchError) as err:
        fingerprint(closed_port_url, fetch=QUICK)
    assert closed_port_url in str(err.value)
    assert "\n" not in str(err.value)


def test_http_error_status_is_a_fetch_error(image_server: ImageServer) -> None:
    with pytest.raises(FetchError, match="404"):
        read_source(image_server.url("/missing"), fetch=QUICK)


def test_download_over_the_declared_byte_cap_is_too_large(image_server: ImageServer) -> None:
    with pytest.raises(TooLarge):
        read_source(image_server.url("/huge"), fetch=FetchLimits(max_bytes=1024 * 1024))


def test_download_over_the_byte_cap_without_a_length_is_cut_off(image_server: ImageServer) -> None:
    with pytest.raises(TooLarge):
        read_source(image_server.url("/huge-undeclared"), fetch=FetchLimits(max_bytes=1024 * 1024))


def test_decode_byte_limit_caps_downloads_too(image_server: ImageServer) -> None:
    url = image_server.add("cap.png", encode(photo(200, 150, seed=1), "PNG"))
    with pytest.raises(TooLarge):
        fingerprint(url, limits=DecodeLimits(max_bytes=1000), fetch=QUICK)


def test_redirect_loop_is_a_fetch_error(image_server: ImageServer) -> None:
    with pytest.raises(FetchError, match="redirect"):
        read_source(image_server.url("/loop"), fetch=QUICK)


def test_redirects_up_to_the_cap_are_followed(image_server: ImageServer) -> None:
    data = encode(photo(64, 48, seed=2), "PNG")
    image_server.add("redirected.png", data)
    limits = FetchLimits(max_redirects=3)
    assert read_source(image_server.url("/redirect/3/redirected.png"), fetch=limits).data == data
    with pytest.raises(FetchError):
        read_source(image_server.url("/redirect/4/redirected.png"), fetch=limits)


def test_redirect_to_a_local_file_is_refused(image_server: ImageServer) -> None:
    with pytest.raises(FetchError, match="non-http"):
        read_source(image_server.url("/to-file"), fetch=QUICK)


def test_slow_server_times_out(image_server: ImageServer) -> None:
    with pytest.raises(FetchError, match="timed out"):
        read_source(image_server.url("/slow"), fetch=FetchLimits(read_timeout_s=0.3))


def test_fetched_bytes_that_are_not_an_image_are_reported(image_server: ImageServer) -> None:
    url = image_server.add("page.jpg", b"<html><body>Not found</body></html>")
    with pytest.raises(NotAnImage) as err:
        compare(url, url, fetch=QUICK)
    assert "page.jpg" in str(err.value)


def _gzip_zeros(n_bytes: int, layers: int) -> bytes:
    """``layers`` of gzip around ``n_bytes`` zero bytes (compressed a MB at a time)."""
    import gzip
    import zlib

    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = b"".join(inner.compress(bytes(1 << 20)) for _ in range(n_bytes >> 20)) + inner.flush()
    for _ in range(layers - 1):
        data = gzip.compress(data, 9)
    return data


def test_downloads_ask_for_the_bytes_uncompressed(image_server: ImageServer) -> None:
    data = encode(photo(64, 48, seed=3), "PNG")
    assert read_source(image_server.add("plain.png", data), fetch=QUICK).data == data
    assert image_server.request_headers["accept-encoding"] == "identity"


def test_one_layer_of_gzip_or_deflate_is_undone(image_server: ImageServer) -> None:
    import gzip
    import zlib

    data = encode(photo(64, 48, seed=4), "PNG")
    assert read_source(image_server.add("g.png", gzip.compress(data), encoding="gzip"), fetch=QUICK).data == data
    assert read_source(image_server.add("d.png", zlib.compress(data), encoding="deflate"), fetch=QUICK).data == data


def test_nested_compression_is_refused_before_inflating(image_server: ImageServer) -> None:
    bomb = _gzip_zeros(64 << 20, layers=2)  # a few KB that inflate to 64 MB
    with pytest.raises(FetchError, match="compressed 2 times"):
        read_source(image_server.add("bomb2", bomb, encoding="gzip, gzip"), fetch=QUICK)


def test_a_gzip_bomb_is_cut_at_the_cap_on_inflated_bytes(image_server: ImageServer) -> None:
    bomb = _gzip_zeros(64 << 20, layers=1)  # about 64 KB that inflate to 64 MB
    with pytest.raises(TooLarge, match="limit of 1,048,576"):
        read_source(image_server.add("bomb1", bomb, encoding="gzip"), fetch=FetchLimits(max_bytes=1 << 20))


def test_unknown_or_damaged_encodings_are_fetch_errors(image_server: ImageServer) -> None:
    with pytest.raises(FetchError, match="does not undo"):
        read_source(image_server.add("br", b"\x00" * 10, encoding="br"), fetch=QUICK)
    with pytest.raises(FetchError, match="damaged|ends early"):
        read_source(image_server.add("bad-gzip", b"\x1f\x8b\x08garbage", encoding="gzip"), fetch=QUICK)

"""FIFOs, odd names and decoders that raise what they like: a typed error for that one input, never
a hang, a traceback or an aborted run; human output never carries a raw control character."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lookalike import CorruptImage, NotRegularFile, fingerprint
from lookalike.cli.output import printable
from lookalike.decode import decode_image, read_file, read_header
from tests.hostile.test_hostile_tree import ESCAPED_NAME, edited_heic
from tests.images import encode, photo


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile, match="FIFO"):
        read_file(fifo, max_bytes=1000)  # a plain open() would block here for ever


@pytest.mark.parametrize("command", ["hash", "index", "check"])
def test_commands_given_a_fifo_report_it_and_go_on(command: str, tmp_path: Path, cli: object) -> None:
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    good = tmp_path / "good.jpg"
    good.write_bytes(encode(photo(200, 150, seed=3), "JPEG"))
    db = ["--db", str(tmp_path / "i.db")] if command != "hash" else []
    if command == "check":
        assert cli("index", good, *db).returncode == 0  # type: ignore[operator]
    proc = cli(command, fifo, good, *db)  # type: ignore[operator]  # the fixture's timeout catches a hang
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not a regular file" in proc.stderr and "Traceback" not in proc.stderr
    assert "good.jpg" in proc.stdout or command == "index"
    if command == "index":
        assert "added 1" in proc.stdout


def test_a_heic_with_an_edited_size_box_is_a_corrupt_image() -> None:
    data = edited_heic()  # pillow-heif raises RuntimeError ("Security limit exceeded") decoding it
    with pytest.raises(CorruptImage) as err:
        decode_image(data)
    assert "\n" not in str(err.value)
    with pytest.raises(CorruptImage):
        fingerprint(data)
    for width in (0, 2**32 - 1):  # header boxes pillow-heif cannot even open
        damaged = bytearray(data)
        box = damaged.find(b"ispe")
        damaged[box + 8 : box + 12] = width.to_bytes(4, "big")
        with pytest.raises(CorruptImage):
            read_header(bytes(damaged))


def test_hash_of_an_edited_heic_is_one_error_line(tmp_path: Path, cli: object) -> None:
    bad = tmp_path / "edited.heic"
    bad.write_bytes(edited_heic())
    proc = cli("hash", bad, "--json")  # type: ignore[operator]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert '"code":"corrupt_image"' in proc.stdout


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred\x1b[0m.jpg", "\\x1b[31mred\\x1b[0m.jpg"),
        ("a\rb\nc\td", "a\\rb\\nc\\td"),
        (os.fsdecode(b"caf\xe9.jpg"), "caf\\xe9.jpg"),
        ("\u202egpj.exe", "\\u202egpj.exe"),
        ("\x9b2J\x7f", "\\x9b2J\\x7f"),
        ("café 😀 a\u00a0b.jpg", "café 😀 a\u00a0b.jpg"),
    ],
)
def test_printable_escapes_what_a_terminal_would_act_on(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_every_line_of_hash_and_check_escapes_names(tmp_path: Path, cli: object) -> None:
    named = tmp_path / ESCAPED_NAME
    named.write_bytes(encode(photo(200, 150, seed=5), "JPEG"))
    broken = tmp_path / ("\x1b]0;title\x07broken.jpg")
    broken.write_bytes(b"not a picture")
    for args in (
        ["hash", tmp_path],
        ["index", tmp_path, "--db", tmp_path / "i.db"],
        ["check", tmp_path, "--db", tmp_path / "i.db"],
    ):
        proc = cli(*args)  # type: ignore[operator]
        assert proc.returncode == 1, proc.stderr
        for text in (proc.stdout, proc.stderr):
            assert "\x1b" not in text and "\x07" not in text and "\r" not in text, text
        assert "\\x1b]0;title\\x07broken.jpg" in proc.stderr

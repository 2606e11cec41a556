"""The keeper is the original, each copy is described as a copy of it, and edited copies are left
alone by actions unless asked: on a generated folder of one picture and its edited copies."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.scan import (
    Action,
    FindOptions,
    FindResult,
    find_groups,
    parse_keep,
    plan_actions,
    read_decisions,
)
from lookalike.scan.source import SourceFacts, is_enlargement, spectrum_profile
from tests.images import corpus_photos, encode

#: name -> what was done to the original (names say nothing the tool could use: no "orig" or "copy")
COPIES = ("half", "enlarged", "gray", "boxed", "lossless", "cropped", "q60")


def _original() -> Image.Image:
    """A real photo (an enlargement is told by the way real detail fades, which synthetic noise lacks)."""
    photos = corpus_photos()
    if not photos:
        pytest.skip("the public benchmark corpus is not beside the repository")
    im = Image.open(photos[0]).convert("RGB")
    return im.resize((480, round(480 * im.height / im.width)), Image.Resampling.LANCZOS)


def make_family(root: Path, names: dict[str, str]) -> dict[str, Path]:
    """The original and its copies under ``root``, written under ``names`` (role -> file name)."""
    im = _original()
    w, h = im.size
    jpeg = encode(im, "JPEG", quality=95)
    decoded = Image.open(io.BytesIO(jpeg)).convert("RGB")
    boxed = Image.new("RGB", (w, w), (0, 0, 0))
    boxed.paste(im, (0, (w - h) // 2))
    files = {
        "original": jpeg,
        "half": encode(im.resize((w // 2, h // 2), Image.Resampling.LANCZOS), "JPEG", quality=90),
        "enlarged": encode(im.resize((w * 3 // 2, h * 3 // 2), Image.Resampling.LANCZOS), "JPEG", quality=90),
        "gray": encode(ImageOps.grayscale(im).convert("RGB"), "JPEG", quality=90),
        "boxed": encode(boxed, "JPEG", quality=90),
        "lossless": encode(decoded, "PNG"),  # the same pixels as the original, stored losslessly
        "cropped": encode(im.crop((w // 3, 0, w, h * 5 // 6)), "JPEG", quality=90),
        "q60": encode(im, "JPEG", quality=60),
    }
    out: dict[str, Path] = {}
    for role, data in files.items():
        path = root / names[role]
        path.write_bytes(data)
        out[role] = path
    return out


NAMES = {role: f"{role}.jpg" if role != "lossless" else "lossless.png" for role in ("original", *COPIES)}
#: the same files under names that sort the other way round, and the original given the newest name
SHUFFLED = {role: f"{chr(ord('z') - i)}_{i}.{'png' if role == 'lossless' else 'jpg'}" for i, role in
            enumerate(reversed(("original", *COPIES)))}  # fmt: skip


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], FindResult]:
    root = tmp_path_factory.mktemp("family")
    files = make_family(root, NAMES)
    result = find_groups([root], db=root.parent / "family.db", options=FindOptions(jobs=1))
    return files, result


def _group(result: FindResult, files: dict[str, Path]) -> dict[str, object]:
    [group] = [g for g in result.groups if str(files["original"]) in {m.path for m in g.members}]
    return {"keep": group.keep, "members": {m.path: m for m in group.members}}


def test_the_original_is_kept_over_enlarged_padded_gray_and_lossless_copies(family) -> None:  # type: ignore[no-untyped-def]
    files, result = family
    g = _group(result, files)
    assert g["keep"] == str(files["original"])
    members = g["members"]
    assert isinstance(members, dict)
    for role in ("half", "enlarged", "gray", "boxed", "lossless", "q60"):
        assert str(files[role]) in members, role
    keeper = members[str(files["original"])]
    assert keeper.keep and keeper.evidence.startswith("kept (the original")


def test_each_copy_reads_as_a_copy_of_the_keeper(family) -> None:  # type: ignore[no-untyped-def]
    files, result = family
    members = _group(result, files)["members"]
    assert isinstance(members, dict)
    half = members[str(files["half"])]
    assert half.match == str(files["original"])
    assert "resized to 50%" in half.evidence and "enlarged" not in half.evidence
    assert "enlarged to 150%" in members[str(files["enlarged"])].evidence
    gray = members[str(files["gray"])].evidence
    assert "converted to grayscale" in gray and "colourised" not in gray
    lossless = members[str(files["lossless"])]
    assert lossless.verdict == "same_pixels" and lossless.eligible


def test_choice_does_not_depend_on_names_or_order(tmp_path: Path) -> None:
    files = make_family(tmp_path, SHUFFLED)
    result = find_groups([tmp_path], db=tmp_path.parent / "shuffled.db", options=FindOptions(jobs=1))
    assert _group(result, files)["keep"] == str(files["original"])


def test_edited_copies_are_reported_but_left_alone_unless_asked(family) -> None:  # type: ignore[no-untyped-def]
    files, result = family
    members = _group(result, files)["members"]
    assert isinstance(members, dict)
    cropped = members.get(str(files["cropped"]))
    if cropped is None:
        pytest.skip("the crop was not grouped")  # grouping is not this test's subject
    assert not cropped.eligible and "--include-edited" in cropped.eligibility
    default = {s.path for s in plan_actions(result, Action.DELETE)}
    assert str(files["cropped"]) not in default and str(files["half"]) in default
    assert str(files["original"]) not in default
    assert str(files["cropped"]) in {s.path for s in plan_actions(result, Action.DELETE, include_edited=True)}
    doc = json.loads(json.dumps(result.to_dict()))
    flags = {m["path"]: (m["eligible"], m["eligibility"]) for g in doc["groups"] for m in g["members"]}
    assert flags[str(files["cropped"])][0] is False and flags[str(files["half"])][0] is True


def test_explicit_policy_still_wins(tmp_path: Path) -> None:
    files = make_family(tmp_path, NAMES)
    result = find_groups(
        [tmp_path], db=tmp_path.parent / "policy.db", options=FindOptions(jobs=1, keep=parse_keep("resolution"))
    )
    assert _group(result, files)["keep"] == str(files["enlarged"])


def test_decisions_change_the_keeper_exclude_a_file_and_are_remembered(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    root.mkdir()
    files = make_family(root, NAMES)
    decisions = tmp_path / "d.json"
    decisions.write_text(json.dumps({"lookalike_decisions": 1, "decisions": [
        {"path": str(files["half"]), "decision": "keep"}, {"path": str(files["q60"]), "decision": "exclude"},
    ]}))  # fmt: skip
    db = tmp_path / "d.db"
    first = find_groups([root], db=db, options=FindOptions(jobs=1, decisions=read_decisions(decisions)))
    later = find_groups([root], db=db, options=FindOptions(jobs=1))
    for result in (first, later):
        g = _group(result, files)
        assert g["keep"] == str(files["half"])
        members = g["members"]
        assert isinstance(members, dict)
        q60 = members[str(files["q60"])]
        assert not q60.eligible and q60.eligibility == "excluded by your decision"
        planned = {s.path for s in plan_actions(result, Action.DELETE, include_edited=True)}
        assert str(files["q60"]) not in planned and str(files["half"]) not in planned
        assert str(files["original"]) in planned


def test_bad_decisions_file_is_a_clear_error(tmp_path: Path) -> None:
    from lookalike.errors import ConfigError

    bad = tmp_path / "bad.json"
    bad.write_text('{"decisions": []}')
    with pytest.raises(ConfigError, match="not a decisions file"):
        read_decisions(bad)
    bad.write_text('{"lookalike_decisions": 1, "decisions": [{"path": "x.jpg", "decision": "burn"}]}')
    with pytest.raises(ConfigError, match="keep or exclude"):
        read_decisions(bad)


def test_enlargement_is_told_from_a_real_larger_picture() -> None:
    im = _original()
    real = np.asarray(im)
    enlarged = np.asarray(im.resize((im.width * 3 // 2, im.height * 3 // 2), Image.Resampling.LANCZOS))
    assert is_enlargement(spectrum_profile(enlarged), 1.5)
    assert not is_enlargement(spectrum_profile(real), 2.0)  # against its half-size copy
    assert not is_enlargement(spectrum_profile(real), 1.05)  # too close in size to say


def test_source_facts_quality_orders_lossless_first() -> None:
    def facts(lossless: bool, q: float | None) -> SourceFacts:
        return SourceFacts("p", 10, 10, 100, "image/jpeg", lossless, False, q, 0.0, 1.0, 0)

    assert facts(True, None).quality > facts(False, 95).quality > facts(False, None).quality


def test_cli_says_what_is_left_alone(tmp_path: Path, cli: object) -> None:
    root = tmp_path / "pics"
    root.mkdir()
    make_family(root, NAMES)
    shutil.copy(root / "original.jpg", root / "same.jpg")
    proc = cli("find", root, "--db", tmp_path / "c.db")  # type: ignore[operator]
    assert proc.returncode == 0, proc.stderr
    assert f"keep  {root / 'original.jpg'}" in proc.stdout or f"keep  {root / 'same.jpg'}" in proc.stdout
    if "left " in proc.stdout:
        assert "--include-edited" in proc.stdout
    assert os.path.exists(root / "original.jpg")


def test_rows_cached_before_source_facts_get_them_on_the_next_run(tmp_path: Path) -> None:
    import sqlite3

    root = tmp_path / "pics"
    root.mkdir()
    files = make_family(root, NAMES)
    db = tmp_path / "old.db"
    find_groups([root], db=db, options=FindOptions(jobs=1))
    with sqlite3.connect(db) as con:  # as a cache written before these columns existed leaves them
        con.execute(
            "UPDATE find_rows SET jpeg_quality = NULL, padding = NULL, content_aspect = NULL, colours = NULL,"
            " grid_step = NULL"
        )
        con.execute("DELETE FROM find_spectra")
        con.execute("DELETE FROM find_relative")
    again = find_groups([root], db=db, options=FindOptions(jobs=1))
    assert again.stats.read == 0  # nothing decoded for matching again
    assert _group(again, files)["keep"] == str(files["original"])
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM find_rows WHERE padding IS NULL OR colours IS NULL").fetchone()[0] == 0


#: copies made from the original that are bigger than it, or lossless, and so win on quality alone
DERIVED = ("framed", "captioned", "palette", "redecoded", "stamped")


def make_derived_family(root: Path) -> dict[str, Path]:
    """A photo (with no margins of its own) saved as JPEG (quality 85) and copies made from it,
    all written at one time so that age says nothing: framed (a white frame around it, PNG),
    captioned (a caption area of text beside it, PNG), palette (a 256-colour GIF), redecoded (its
    YCbCr converted by Pillow's own arithmetic, as another decoder would: pixels a level apart,
    PNG) and stamped (its decode with a small mark in a corner, BMP: the JPEG's 8 x 8 grid is still
    in its pixels)."""
    from PIL import ImageDraw

    from lookalike.scan.margins import margins

    # a photo whose edges are textured: a plain backdrop at an edge reads as a margin of its own
    for path in corpus_photos():
        im = Image.open(path).convert("RGB")
        im = im.resize((480, round(480 * im.height / im.width)), Image.Resampling.LANCZOS)
        if margins(np.asarray(im))[0] == 0.0:
            break
    else:
        pytest.skip("the benchmark corpus has no photo without margins")
    w, h = im.size
    jpeg = encode(im, "JPEG", quality=85)
    decoded = Image.open(io.BytesIO(jpeg)).convert("RGB")
    framed = Image.new("RGB", (w + 60, h + 60), (255, 255, 255))
    framed.paste(decoded, (30, 30))
    captioned = Image.new("RGB", (w + w // 3, h), (250, 250, 246))
    captioned.paste(decoded, (0, 0))
    draw = ImageDraw.Draw(captioned)
    for i in range(5):
        draw.text((w + 12, 20 + 30 * i), "a walk by the lake", fill=(30, 30, 30))
    ycc = Image.open(io.BytesIO(jpeg))
    ycc.draft("YCbCr", ycc.size)
    stamped = decoded.copy()
    ImageDraw.Draw(stamped).rectangle((4, 4, 60, 20), fill=(255, 0, 0))
    files = {
        "original": (jpeg, "jpg"),
        "framed": (encode(framed, "PNG"), "png"),
        "captioned": (encode(captioned, "PNG"), "png"),
        "palette": (encode(decoded.quantize(256), "GIF"), "gif"),
        "redecoded": (encode(ycc.convert("RGB"), "PNG"), "png"),
        "stamped": (encode(stamped, "BMP"), "bmp"),
    }
    out: dict[str, Path] = {}
    for i, (role, (data, ext)) in enumerate(sorted(files.items())):
        out[role] = root / f"d{i}.{ext}"  # names say nothing of what they are
        out[role].write_bytes(data)
        os.utime(out[role], ns=(1_700_000_000_000_000_000,) * 2)
    return out


def test_copies_made_from_the_original_are_not_kept_though_bigger_or_lossless(tmp_path: Path, corpus: Path) -> None:
    root = tmp_path / "pics"
    root.mkdir()
    files = make_derived_family(root)
    result = find_groups([root], db=tmp_path / "d.db", options=FindOptions(jobs=1))
    g = _group(result, files)
    members = g["members"]
    assert isinstance(members, dict)
    assert {str(files[r]) for r in DERIVED} <= set(members)
    assert g["keep"] == str(files["original"])
    assert members[str(files["original"])].evidence.startswith("kept (the original")
    # no copy reads as the opposite of what was done to it
    for role in ("framed", "captioned"):
        assert "cropped" not in members[str(files[role])].evidence, role


def test_each_derivation_alone_decides_against_quality() -> None:
    from lookalike.match import Verdict
    from lookalike.scan.source import derived_from

    def facts(path: str, w: int, h: int, mime: str, lossless: bool, **kw: object) -> SourceFacts:
        base: dict[str, object] = dict(gray=False, jpeg_quality=None if lossless else 85.0, padding=0.0,
                                       content_aspect=w / h, mtime_ns=0, colours=40_000, grid_step=0)  # fmt: skip
        base.update(kw)
        return SourceFacts(path, w, h, 1000, mime, lossless, **base)  # type: ignore[arg-type]

    jpeg = facts("o", 480, 320, "image/jpeg", False, grid_step=5)
    near = Verdict.NEAR_DUPLICATE
    palette = facts("g", 480, 320, "image/gif", True, colours=256)
    assert derived_from(jpeg, palette, near) == ("g", derived_from(jpeg, palette, near)[1])  # type: ignore[index]
    gridded = facts("b", 480, 320, "image/bmp", True, grid_step=5)
    assert derived_from(gridded, jpeg, near)[0] == "b"  # type: ignore[index]
    other_grid = facts("b2", 480, 320, "image/bmp", True, grid_step=3)  # a JPEG history of its own
    assert derived_from(other_grid, jpeg, near) is None
    decoded = facts("p", 480, 320, "image/png", True)
    assert derived_from(jpeg, decoded, near) is None
    assert derived_from(jpeg, decoded, near, decoded=True)[0] == "p"  # type: ignore[index]
    beside = facts("c", 640, 320, "image/png", True, padding=0.25, content_aspect=1.5)
    assert derived_from(beside, jpeg, near)[0] == "c"  # type: ignore[index]
    # a drawing of few colours is no palette reduction of its noisy JPEG copy's colours
    drawing = facts("d", 480, 320, "image/png", True, colours=200)
    noisy = facts("j", 480, 320, "image/jpeg", False, colours=900)
    assert derived_from(drawing, noisy, near) is None


def test_pixel_facts_count_a_palette_and_find_a_jpegs_grid() -> None:
    from lookalike.decode import decode_image
    from lookalike.fingerprints.provenance import pixel_facts

    im = _original()
    jpeg = encode(im, "JPEG", quality=75)
    decoded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    assert pixel_facts(decoded).grid_step == 8  # quality 75: the standard table's DC step 16 halved
    assert pixel_facts(np.asarray(im)).grid_step == 0  # never a JPEG at this size
    shifted = decoded[3:, 5:]  # the grid no longer on the corner
    assert pixel_facts(np.ascontiguousarray(shifted)).grid_step == 0
    gif = decode_image(encode(im.quantize(256), "GIF")).pixels
    assert pixel_facts(gif).colours <= 256 < pixel_facts(np.asarray(im)).colours

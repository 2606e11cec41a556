"""``lookalike serve --settings FILE`` judges every verdict with the file's thresholds (read by the
loader every command uses) and reports them at ``GET /v1/settings``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from lookalike.config import Thresholds
from tests.images import EXAMPLES

ORIGINAL = EXAMPLES / "library" / "rocket.jpg"
CROP = EXAMPLES / "uploads" / "rocket_cropped.png"


def _settings(path: Path, near: float, similar: float) -> Path:
    thresholds = {"near_duplicate": near, "similar": similar}
    path.write_text(json.dumps({"format": "lookalike-settings/1", "thresholds": thresholds}))
    return path


def test_serve_judges_with_the_settings_file_and_says_which(serve: Any, tmp_path: Path) -> None:
    strict = _settings(tmp_path / "strict.json", 0.95, 0.30)
    default = serve(str(tmp_path / "default.sqlite"), workers=1, storage=tmp_path / "default-files")
    served = serve(
        str(tmp_path / "strict.sqlite"), workers=1, storage=tmp_path / "files", extra=("--settings", str(strict))
    )
    verdicts: dict[str, tuple[str, float]] = {}
    for name, server in (("default", default), ("strict", served)):
        key = server.key("alice")
        stored = httpx.post(server.url + "/v1/images", headers=key, files={"file": ("r.jpg", ORIGINAL.read_bytes())})
        assert stored.status_code == 201, stored.text
        r = httpx.post(server.url + "/v1/check", headers=key, files={"file": ("c.png", CROP.read_bytes())}, timeout=60)
        assert r.status_code == 200, r.text
        verdicts[name] = (r.json()["verdict"], r.json()["matches"][0]["score"])
        shown = httpx.get(server.url + "/v1/settings", headers=key)
        assert shown.status_code == 200
        expected = {"near_duplicate": 0.95, "similar": 0.30} if name == "strict" else Thresholds().to_dict()
        assert shown.json()["thresholds"] == expected
        assert httpx.get(server.url + "/v1/settings").status_code == 401
    assert verdicts["default"][0] == "near_duplicate" and verdicts["strict"][0] == "similar"
    assert abs(verdicts["default"][1] - verdicts["strict"][1]) <= 0.01

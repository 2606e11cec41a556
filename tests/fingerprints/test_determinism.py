"""The same picture gives the same fingerprint bits whatever BLAS kernel, SIMD level or thread
count the machine picks.

Servers of one deployment can be Intel or AMD, x86-64 or ARM: a hash stored by one and computed
again by another must be equal, bit for bit, or exact look-ups and golden values break (they did:
the stamp's dHash differed between an Intel and an AMD EPYC machine). Each variant below runs the
whole fingerprint path in a fresh process, with OpenBLAS forced to another kernel and NumPy's
SIMD dispatch turned off, and every serialised fingerprint must be identical.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.images import EXAMPLES, REPO, gradient, photo, save, stamp

#: an OpenBLAS kernel every CPU of the architecture can run, unlike the one it picks for itself
_PORTABLE_KERNEL = {"x86_64": "Prescott", "AMD64": "Prescott", "aarch64": "ARMV8", "arm64": "ARMV8"}

_SCRIPT = """
import json, sys
from pathlib import Path
from lookalike import fingerprint
from lookalike.fingerprints import fingerprint_to_text
out = {p.name: fingerprint_to_text(fingerprint(p)) for p in sorted(Path(sys.argv[1]).iterdir())}
print(json.dumps(out))
"""


def _numpy_simd_targets() -> list[str]:
    """The SIMD targets NumPy dispatches to on this machine (to turn them off in a variant)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__  # type: ignore[attr-defined]

    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]


def _pictures(folder: Path) -> None:
    """Pictures whose hashes hinge on ties and last bits: plain margins, flat and mirrored
    areas, odd sizes that do not divide the grid, a panorama, a tiny icon, real photos."""
    save(stamp(200, seed=0), folder / "stamp.png")
    save(stamp(123, seed=3), folder / "stamp_odd.png")
    save(photo(320, 240, seed=0), folder / "photo.png")
    save(photo(901, 603, seed=1), folder / "photo_odd.jpg")
    save(gradient(257, 191), folder / "gradient.png")
    flat = np.full((100, 140, 3), 200, np.uint8)
    flat[30:70, 40:100] = 20  # a centred dark box: symmetric, many equal cells and coefficients
    Image.fromarray(flat).save(folder / "box.png")
    wide = np.zeros((90, 2000, 3), np.uint8)
    wide[:, ::50] = 255
    Image.fromarray(wide).save(folder / "panorama.png")
    Image.fromarray(np.full((7, 10, 3), 90, np.uint8)).save(folder / "tiny.png")
    for p in sorted((EXAMPLES / "library").glob("*.jpg"))[:4]:
        (folder / p.name).write_bytes(p.read_bytes())


def _fingerprints(folder: Path, **env: str) -> dict[str, str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), **env}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(folder)], env=environment, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


def test_fingerprints_are_identical_under_other_blas_kernels_simd_levels_and_threads(tmp_path: Path) -> None:
    kernel = _PORTABLE_KERNEL.get(platform.machine())
    if kernel is None:
        pytest.skip(f"no portable OpenBLAS kernel known for {platform.machine()}")
    _pictures(tmp_path)
    as_picked = _fingerprints(tmp_path)
    assert len(as_picked) >= 10
    variants = {
        "portable BLAS kernel, one thread": {"OPENBLAS_CORETYPE": kernel, "OPENBLAS_NUM_THREADS": "1"},
        "no NumPy SIMD dispatch, two BLAS threads": {
            "NPY_DISABLE_CPU_FEATURES": " ".join(_numpy_simd_targets()),
            "OPENBLAS_NUM_THREADS": "2",
        },
    }
    for name, env in variants.items():
        other = _fingerprints(tmp_path, **env)
        differing = sorted(k for k in as_picked if other.get(k) != as_picked[k])
        assert not differing, f"{name}: fingerprints differ for {differing}"

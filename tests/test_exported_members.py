"""The public surface is exactly the documented one (httpx's ``tests/test_exported_members.py`` is the
model): ``lookalike.__all__`` lists these names, nothing else public is importable from the package,
each name resolves to an object documented in its own right, and the API page generates from them."""

from __future__ import annotations

import types
from pathlib import Path

import lookalike

#: the documented public names (docs/reference/python.md renders their docstrings); adding or removing
#: one is a change of the public API and belongs in this list on purpose
DOCUMENTED = {
    "AddOutcome", "AlreadyExists", "CheckMatch", "CheckResult", "Comparison", "ConfigError", "CorruptImage",
    "DecodeLimits", "Decision", "Dihedral", "FetchError", "FetchLimits", "FindOptions", "FindResult",
    "Fingerprint", "FingerprintError", "Index", "InputError", "LookalikeError", "NotAnImage", "NotFound",
    "NotRegularFile", "OnDuplicate", "Outcome", "Signal", "StoreError", "Thresholds", "TooLarge",
    "TruncatedImage", "UnsupportedFormat", "Verdict",
    "compare", "find_duplicates", "fingerprint", "fingerprint_bytes", "fingerprint_from_bytes",
    "fingerprint_from_text", "fingerprint_to_bytes", "fingerprint_to_text", "reference_pdq",
}  # fmt: skip


def test_all_is_exactly_the_documented_names() -> None:
    assert sorted(lookalike.__all__) == sorted(DOCUMENTED)
    assert len(lookalike.__all__) == len(set(lookalike.__all__))


def test_nothing_else_public_is_reachable_from_the_package() -> None:
    public = {
        name
        for name in dir(lookalike)
        if not name.startswith("_") and not isinstance(getattr(lookalike, name), types.ModuleType)
    }
    assert public == DOCUMENTED


def test_every_public_name_resolves_to_a_documented_object() -> None:
    for name in lookalike.__all__:
        member = getattr(lookalike, name)
        assert member is not None, name
        assert (getattr(member, "__doc__", None) or "").strip(), f"{name} has no docstring"
        # re-exported, not re-defined: the object lives in a private module of the package
        assert getattr(member, "__module__", "lookalike").startswith("lookalike"), name


def test_the_api_page_is_generated_from_the_package() -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "reference" / "python.md"
    assert "::: lookalike" in page.read_text(encoding="utf-8")

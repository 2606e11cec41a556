"""Evidence sentences are written only under ``lookalike/match/`` (``match.evidence`` renders them):
a string literal elsewhere in the package that words a finding would give one finding two wordings.
Docstrings and comments may speak of the findings; only strings the program uses are checked."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lookalike"

#: words of the evidence a person reads for a match (``match.evidence.render_evidence``)
EVIDENCE_PHRASES = (
    "matching keypoints", "same picture", "identical bytes", "re-encoded", "converted from", "shares a region",
    "bits apart", "pHash differs", "same pixels in a different file", "learned embedding cosine",
    "a person marked", "too thin for local features",
)  # fmt: skip


def used_strings(source: str) -> list[tuple[int, str]]:
    """(line, text) of the string constants in ``source`` that are not docstrings (a bare string
    statement: a module's, class's, function's or attribute's documentation), f-string parts included."""
    tree = ast.parse(source)
    documentation = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in documentation
    ]


def evidence_wording(source: str) -> list[tuple[int, str]]:
    """(line, phrase) of each evidence phrase in a used string of ``source``."""
    return [
        (line, phrase)
        for line, text in used_strings(source)
        for phrase in EVIDENCE_PHRASES
        if phrase.lower() in text.lower()
    ]


def test_the_check_sees_strings_in_use_and_passes_over_documentation() -> None:
    source = '''"""A module that says the same picture."""
def f(bits: int) -> str:
    """Two files 3 bits apart."""
    # identical bytes, in a comment
    return f"{bits} bits apart" + ", same picture"
'''
    assert sorted(evidence_wording(source)) == [(5, "bits apart"), (5, "same picture")]


def test_evidence_is_worded_only_under_match() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "match":
            continue
        for line, phrase in evidence_wording(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(PACKAGE)}:{line}: {phrase!r}")
    assert found == [], "build a match.evidence.Evidence and render it instead:\n" + "\n".join(found)

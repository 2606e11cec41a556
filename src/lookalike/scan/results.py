"""What ``find_duplicates`` returns: groups of members with their evidence, pairs, errors, counts.

Values only, each with its JSON form (``to_dict``, what ``lookalike find --json`` prints). A
member's verdict is a ``Verdict``; its evidence is an ``Evidence``, data from which the line a
person reads is rendered; a file that could not be read is a ``FileError``, the one failure type
of a run (its JSON form is the one error shape of every command: ``{"path", "error": {"code",
"message"}}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lookalike.errors import FileError
from lookalike.match import Verdict
from lookalike.match import evidence as found
from lookalike.walk import FoundFile

__all__ = [
    "Evidence", "EvidenceKind", "FileError", "FindResult", "FindStats", "Group", "Member", "Pair", "SimilarPair",
]  # fmt: skip


class EvidenceKind(StrEnum):
    """What a member's evidence rests on."""

    MATCH = "match"  #: the cascade's own words on the pair (``check``'s explanation)
    SAME_FILE = "same_file"  #: the same bytes under another path
    PERSON = "person"  #: a person marked the pair as duplicates
    LOCAL_FEATURES = "local_features"  #: local features found the member's picture in the other's
    KEEPER = "keeper"  #: why the keeper is kept


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a member is in its group, as data; ``text`` is the line a person reads.

    ``detail``: the cascade's explanation (``MATCH``), what the fitted transform says
    (``LOCAL_FEATURES``), or why the keeper was chosen (``KEEPER``). ``facts``: the keeper's size,
    format and date. ``same_picture`` (``LOCAL_FEATURES``): said of a duplicate, of a shared region,
    or (None) against the keeper of a member linked to it only through another member.
    ``kept_in_folder``: a member kept because it lies in a ``--keep-in`` folder. The words of a
    match are ``match.evidence``'s, as every front end prints them."""

    kind: EvidenceKind
    detail: str = ""
    facts: str = ""
    same_picture: bool | None = None
    kept_in_folder: bool = False

    @property
    def text(self) -> str:
        """The evidence in ``check``'s words."""
        if self.kind is EvidenceKind.SAME_FILE:
            text = found.render_evidence(found.Evidence(basis=found.Basis.SAME_BYTES))
        elif self.kind is EvidenceKind.PERSON:
            text = found.render_evidence(found.Evidence(basis=found.Basis.PERSON))
        elif self.kind is EvidenceKind.LOCAL_FEATURES:
            local = found.Evidence(
                basis=found.Basis.LOCAL_FEATURES, local_words=self.detail, same_picture=self.same_picture
            )
            text = found.render_evidence(local)
        elif self.kind is EvidenceKind.KEEPER:
            text = f"kept ({self.detail}): {self.facts}"
        else:
            text = self.detail
        return f"kept: in a --keep-in folder; {text}" if self.kept_in_folder else text

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Member:
    """One file of a group: why it is there (its link to the keeper when it has one, else its best
    link in the group: ``score``, ``verdict``, ``reason`` describing this file as a copy of
    ``match``, the file at the other end; ``evidence`` is its text), whether it is kept, whether a
    person excluded it from actions, and whether an action may touch it without
    ``--include-edited`` (``eligible``, and ``eligibility`` says why)."""

    path: str
    score: float
    verdict: Verdict
    reason: Evidence
    match: str
    keep: bool
    width: int
    height: int
    byte_size: int
    mime: str
    taken_at: str | None
    eligible: bool = True
    eligibility: str = ""
    excluded: bool = False
    #: the SHA-256 of its bytes as read (hex): what an action verifies before it touches the file
    sha256: str = ""

    @property
    def evidence(self) -> str:
        """The evidence as a person reads it (``reason.text``)."""
        return self.reason.text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "path": self.path, "score": round(self.score, 4), "verdict": self.verdict.value, "evidence": self.evidence,
            "match": self.match, "keep": self.keep, "width": self.width, "height": self.height,
            "bytes": self.byte_size, "mime": self.mime, "taken_at": self.taken_at,
            "eligible": self.eligible, "eligibility": self.eligibility, "sha256": self.sha256,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Group:
    """Copies of one picture: the keeper's path, and every member (the keeper first)."""

    keep: str
    members: tuple[Member, ...]

    @property
    def removable(self) -> tuple[Member, ...]:
        """The members an action touches by default: not kept, and eligible (see ``Member``)."""
        return self.actionable(include_edited=False)

    def actionable(self, *, include_edited: bool) -> tuple[Member, ...]:
        """The members an action may touch: not kept (nor excluded by a person), and eligible
        unless ``include_edited`` (then edited copies joined by local features or through
        another member too)."""
        return tuple(m for m in self.members if not m.keep and (m.eligible or (include_edited and not m.excluded)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"keep": self.keep, "members": [m.to_dict() for m in self.members]}


@dataclass(frozen=True, slots=True)
class Pair:
    """Two files the cascade linked (or a person did)."""

    a: str
    b: str
    score: float
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"a": self.a, "b": self.b, "score": round(self.score, 4), "verdict": self.verdict.value}


@dataclass(frozen=True, slots=True)
class SimilarPair:
    """Two files of one scene by the learned embedding alone (``find --similar``): listed apart from
    the groups, never acted on; ``score`` is below the ``similar`` threshold (``scan.similar``)."""

    a: str
    b: str
    cosine: float
    score: float
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "a": self.a, "b": self.b, "score": round(self.score, 4), "cosine": round(self.cosine, 4),
            "verdict": Verdict.SIMILAR.value, "evidence": self.evidence,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class FindStats:
    """Counts of one run."""

    files: int
    read: int
    cached: int
    errors: int
    groups: int
    duplicates: int
    reclaimable_bytes: int
    pairs: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "files": self.files, "read": self.read, "cached": self.cached, "errors": self.errors,
            "groups": self.groups, "duplicates": self.duplicates, "reclaimable_bytes": self.reclaimable_bytes,
            "pairs": self.pairs, "seconds": round(self.seconds, 2),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class FindResult:
    """What ``find_duplicates`` found: groups (largest first), linked pairs, unreadable files, counts.

    ``pairs`` grow with the files, not their square: the files of the same bytes are one node,
    listed as its first path ``identical`` to each other path, and a link between two nodes is
    one pair of their first paths."""

    groups: tuple[Group, ...]
    pairs: tuple[Pair, ...]
    errors: tuple[FileError, ...]
    stats: FindStats
    roots: tuple[str, ...] = field(default=())
    #: files reached through more than one path (symlinks, hard links, a folder named twice): each
    #: is listed once, under ``path``, and never acted on as a duplicate of itself
    aliases: tuple[FoundFile, ...] = field(default=())
    #: with ``--similar`` (the learned tier): semantic neighbours, best first; None without it
    similar: tuple[SimilarPair, ...] | None = None
    #: what a person should know of the run that is no file's error: decisions that were not
    #: recorded (outside the scanned folders) or that name no file of the run
    notices: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``lookalike find --json`` (``similar`` only with ``--similar``)."""
        return {
            "groups": [g.to_dict() for g in self.groups],
            "pairs": [p.to_dict() for p in self.pairs],
            "stats": self.stats.to_dict(),
            "errors": [e.to_dict() for e in self.errors],
            "aliases": [{"path": a.path, "also": list(a.also)} for a in self.aliases],
            "notices": list(self.notices),
            **({} if self.similar is None else {"similar": [p.to_dict() for p in self.similar]}),
        }

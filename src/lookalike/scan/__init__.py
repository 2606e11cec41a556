"""Folders to duplicate groups, keepers and safe actions: ``lookalike find``.

``find_groups`` walks folders, reads only new or changed files (a cache in the index
database), finds every duplicate pair through the index's cascade, groups the pairs and picks a
keeper per group (the original the others derive from, ``source.py``, unless a policy or a
person says otherwise). ``plan_actions``/``apply_actions`` move, hard-link, trash or delete the
other members (edited copies only when asked), writing an undo manifest first; ``undo`` puts
moved and trashed files back.
"""

from lookalike.errors import FileError
from lookalike.scan.actions import Action, ActionReport, Step, apply_actions, held_back, plan_actions
from lookalike.scan.decisions import read_decisions, record_decisions
from lookalike.scan.find import find_groups
from lookalike.scan.keeper import DEFAULT_KEEP, KeepCriterion, parse_keep
from lookalike.scan.lookup import Duplicate, duplicates_of, mark_pair, unmark_pair
from lookalike.scan.options import FIND_SCOPE, FindOptions
from lookalike.scan.results import (
    Evidence,
    EvidenceKind,
    FindResult,
    FindStats,
    Group,
    Member,
    Pair,
    SimilarPair,
)
from lookalike.scan.undo import undo

__all__ = [
    "DEFAULT_KEEP",
    "Duplicate",
    "FIND_SCOPE",
    "Action",
    "ActionReport",
    "Evidence",
    "EvidenceKind",
    "FileError",
    "FindOptions",
    "FindResult",
    "FindStats",
    "Group",
    "KeepCriterion",
    "Member",
    "Pair",
    "SimilarPair",
    "Step",
    "apply_actions",
    "duplicates_of",
    "find_groups",
    "held_back",
    "mark_pair",
    "parse_keep",
    "plan_actions",
    "read_decisions",
    "record_decisions",
    "undo",
    "unmark_pair",
]

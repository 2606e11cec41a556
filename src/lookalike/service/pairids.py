"""Review pair ids as a tenant sees them: a keyed permutation of the database's row id, one key per
tenant, so that ids say nothing about other tenants' activity (row ids are one sequence for every
tenant: a tenant that saw pair 1,000 and then pair 1,450 learned that others made 449 pairs).

The permutation is a four-round Feistel network on 52 bits (so that an id stays exact as a
JavaScript number, which holds integers up to 2^53: the review page sends it back as one), each
round's function an HMAC-SHA256 from the server's secret and the tenant (Luby and Rackoff, "How to construct
pseudorandom permutations from pseudorandom functions", SIAM J. Computing 17(2), 1988: four rounds
make a strong pseudorandom permutation). An id is stable for as long as the secret is, and the
secret lives in the storage folder (created at the first start, read by every worker), which is
backed up with the database. An id from another tenant decodes to a row of no pair of this tenant
(404), as before.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from lookalike.errors import StoreError

__all__ = ["PairIds"]

_HALF_BITS = 26
_HALF = (1 << _HALF_BITS) - 1
_ROUNDS = 4
#: row ids below this are permuted (2^52: far beyond any review table)
LIMIT = 1 << (2 * _HALF_BITS)
SECRET_NAME = ".review-id-key"


class PairIds:
    """Public pair ids for one server's secret (see the module docstring)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def for_storage(cls, root: Path) -> PairIds:
        """The ids of the storage folder ``root``: its secret read, or made (32 random bytes) at the
        first start. Raises ``StoreError`` when it can be neither read nor written."""
        path = Path(root) / SECRET_NAME
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the review id key ({exc.strerror or exc})") from exc
        else:  # first start: the one process that created the file writes it
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(32))
                fh.flush()
                os.fsync(fh.fileno())
        try:
            secret = path.read_bytes()
        except OSError as exc:
            raise StoreError(f"{path}: cannot read the review id key ({exc.strerror or exc})") from exc
        if len(secret) != 32:  # another worker is writing it this very moment
            secret = _wait_for(path)
        return cls(secret)

    def public(self, tenant: str, pk: int) -> int:
        """The id ``tenant`` sees for row ``pk`` (1 .. 2^52)."""
        if not 0 < pk < LIMIT:
            raise StoreError(f"review row {pk} is outside the range of pair ids")
        keys = self._round_keys(tenant)
        left, right = pk >> _HALF_BITS, pk & _HALF
        for key in keys:
            left, right = right, left ^ _round(key, right)
        return (left << _HALF_BITS | right) + 1

    def private(self, tenant: str, pair_id: int) -> int | None:
        """The row of ``tenant``'s pair id, or None for a number that is no pair id."""
        if not 0 < pair_id <= LIMIT:
            return None
        x = pair_id - 1
        left, right = x >> _HALF_BITS, x & _HALF
        for key in reversed(self._round_keys(tenant)):
            left, right = right ^ _round(key, left), left
        pk = left << _HALF_BITS | right
        return pk if pk > 0 else None

    def _round_keys(self, tenant: str) -> list[bytes]:
        base = hmac.new(self._secret, b"review-pair-ids\0" + tenant.encode(), hashlib.sha256).digest()
        return [hmac.new(base, bytes([i]), hashlib.sha256).digest() for i in range(_ROUNDS)]


def _round(key: bytes, half: int) -> int:
    digest = hmac.new(key, half.to_bytes(4, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") & _HALF


def _wait_for(path: Path) -> bytes:
    """The secret once the worker that created the file has written it."""
    import time

    for _ in range(100):
        time.sleep(0.05)
        secret = path.read_bytes()
        if len(secret) == 32:
            return secret
    raise StoreError(f"{path}: the review id key is damaged (not 32 bytes): restore it from a backup")

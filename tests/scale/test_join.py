"""The candidate join finds exactly the pairs the retrieval rule admits (checked against every
pair by brute force), each once, whichever way its tables and probe chunks are split."""

from __future__ import annotations

import numpy as np

from lookalike.match.retrieval import PHASH_RADIUS, candidate_mask
from lookalike.scale.join import admit, build_tables, collapse, join_chunk, join_local, probe_parts


def _codes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pHash variants (n, 8), PDQ variants (n, 8, 4)): random pictures, a tenth of them near
    copies of another under a random turn (a few pHash bits and a few dozen PDQ bits flipped)."""
    rng = np.random.default_rng(seed)
    ph = rng.integers(0, 2**64, size=(n, 8), dtype=np.uint64)
    pdq = rng.integers(0, 2**64, size=(n, 8, 4), dtype=np.uint64)
    originals = rng.choice(n // 2, size=n // 10, replace=False)
    copies = n // 2 + np.arange(n // 10)
    for o, c in zip(originals, copies):
        k = rng.integers(0, 8)
        moved = rng.choice(64, rng.integers(0, PHASH_RADIUS + 3), replace=False)
        ph[c, 0] = ph[o, k] ^ np.uint64(sum(1 << int(b) for b in moved))
        flips = rng.choice(256, rng.integers(0, 110), replace=False)
        pdq[c, 0] = pdq[o, k]
        for f in flips:
            pdq[c, 0, f // 64] ^= np.uint64(1 << int(f % 64))
    return ph, pdq, originals, copies


def _brute(ph: np.ndarray, pdq: np.ndarray) -> set[tuple[int, int]]:
    n = len(ph)
    out = set()
    for k in range(8):
        d_ph = np.bitwise_count(ph[:, k][:, None] ^ ph[:, 0][None, :]).astype(np.int64)
        d_pdq = np.bitwise_count(pdq[:, k][:, None, :] ^ pdq[:, 0][None, :, :]).sum(axis=2).astype(np.int64)
        ok = candidate_mask(d_ph, d_pdq) & ~np.eye(n, dtype=bool)
        out |= {(min(a, b), max(a, b)) for a, b in zip(*np.nonzero(ok))}
    return {(int(a), int(b)) for a, b in out}


def _probes(ph: np.ndarray, pdq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(ph)
    return ph.reshape(-1), pdq.reshape(-1, 4), np.repeat(np.arange(n, dtype=np.int64), 8)


def test_the_join_finds_exactly_the_pairs_of_brute_force() -> None:
    ph, pdq, originals, copies = _codes(1500, seed=5)
    i, j, rejected = join_local(ph[:, 0].copy(), pdq[:, 0].copy(), *_probes(ph, pdq))
    found = set(zip(i.tolist(), j.tolist()))
    assert found == _brute(ph, pdq)
    assert len(found) == len(i)  # each pair once
    assert rejected > 0  # PDQ turned some pHash-only candidates away


def test_any_split_into_tables_and_probe_parts_gives_the_same_pairs() -> None:
    ph, pdq, _, _ = _codes(1200, seed=6)
    whole = join_local(ph[:, 0].copy(), pdq[:, 0].copy(), *_probes(ph, pdq))
    qph, qpdq, qids = _probes(ph, pdq)
    for parts in (1, 3, 7):
        rows, stored = [], []
        for table in build_tables(ph[:, 0].copy()):
            for part in probe_parts(qph, table.table, parts):
                x, y = join_chunk(table, qph[part], qids[part], part)
                rows.append(x)
                stored.append(y)
        i, j, _ = admit(np.concatenate(rows), np.concatenate(stored), qpdq, qids, pdq[:, 0].copy())
        assert np.array_equal(i, whole[0]) and np.array_equal(j, whole[1])
    # and chunks of probes in any order, not parts by key
    rows, stored = [], []
    for table in build_tables(ph[:, 0].copy()):
        for start in range(0, len(qph), 700):
            part = np.arange(start, min(start + 700, len(qph)))
            x, y = join_chunk(table, qph[part], qids[part], part)
            rows.append(x)
            stored.append(y)
    i, j, _ = admit(np.concatenate(rows), np.concatenate(stored), qpdq, qids, pdq[:, 0].copy())
    assert np.array_equal(i, whole[0]) and np.array_equal(j, whole[1])


def test_identical_codes_collapse_to_one() -> None:
    ph = np.array([5, 7, 5, 9, 7], dtype=np.uint64)
    pdq = np.zeros((5, 4), dtype=np.uint64)
    first, code_of = collapse(ph, pdq)
    assert first.tolist() == [0, 1, 3]
    assert code_of.tolist() == [0, 1, 0, 2, 1]

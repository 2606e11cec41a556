"""HammingIndex: exact agreement with a brute-force scan, updates, persistence and errors."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import numba
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lookalike.errors import ConfigError, StoreError
from lookalike.fingerprints.kernels import jit
from lookalike.index.search import hamming
from lookalike.index.search.hamming import HammingIndex

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


def brute(ids: I64, codes: U64, q: U64, r: int) -> tuple[I64, I64]:
    """Every (id, distance) within r of q, by distance then id: the reference answer."""
    d = np.bitwise_count(codes ^ q).sum(axis=1, dtype=np.int64)
    sel = np.flatnonzero(d <= r)
    order = np.lexsort((ids[sel], d[sel]))
    return ids[sel][order], d[sel][order]


def assert_same(got: tuple[I64, I64], expected: tuple[I64, I64]) -> None:
    assert got[0].dtype == np.int64 and got[1].dtype == np.int64
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def flip_bits(codes: U64, counts: npt.NDArray[np.int64], rng: np.random.Generator) -> U64:
    """Each row with counts[i] distinct random bits flipped."""
    n, w = codes.shape
    chosen = np.argsort(rng.random((n, 64 * w)), axis=1) < counts[:, None]
    return codes ^ np.packbits(chosen, axis=1).view(">u8").astype(np.uint64)


def dataset(n: int, bits: int, seed: int) -> tuple[I64, U64]:
    """Half uniform codes, half tight clusters (centre plus 0-4 flipped bits), shuffled ids."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**64, (n, bits // 64), dtype=np.uint64)
    half = n // 2
    centres = codes[half : half + max(1, half // 40)]
    members = centres[(len(centres) * rng.random(half) ** 2).astype(np.int64)]
    codes[:half] = flip_bits(members, rng.integers(0, 5, half), rng)
    ids = (rng.permutation(n) * 7 - n).astype(np.int64)  # distinct, unordered, some negative
    return ids, codes


def queries(ids: I64, codes: U64, count: int, seed: int) -> U64:
    """Stored codes, near-copies of stored codes, and random codes."""
    rng = np.random.default_rng(seed)
    stored = codes[rng.integers(0, len(codes), count)]
    near = flip_bits(codes[rng.integers(0, len(codes), count)], rng.integers(1, 6, count), rng)
    return np.concatenate([stored, near, rng.integers(0, 2**64, (count, codes.shape[1]), dtype=np.uint64)])


@contextlib.contextmanager
def small_thresholds(tables_from: int = 64, delta_max: int = 32) -> Iterator[None]:
    """Build tables (and freeze the delta) at tiny sizes, so small data exercises every path."""
    with (
        mock.patch.object(hamming, "_TABLES_FROM", tables_from),
        mock.patch.object(hamming, "_DELTA_MAX", delta_max),
    ):
        yield


@pytest.mark.parametrize("bits", [64, 256])
@pytest.mark.parametrize("scan_fraction", [hamming._SCAN_FRACTION, 2.0], ids=["costed", "always-probe"])
def test_radius_equals_brute_force_on_clustered_data(bits: int, scan_fraction: float) -> None:
    ids, codes = dataset(40_000, bits, seed=bits)
    index = HammingIndex(bits)
    index.add(ids, codes)
    assert len(index) == len(ids)
    assert index._parts and index._parts[0].key_bits, "a 40k index should use its tables"
    radii = [0, 1, 4, 10, 17] + ([31, 64] if bits == 256 else [])
    # At 2.0 the cost model never falls back to a scan, so the tables answer every radius.
    with mock.patch.object(hamming, "_SCAN_FRACTION", scan_fraction):
        for r in radii:
            qs = queries(ids, codes, 4, seed=r)
            for q in qs:
                assert_same(index.radius(q if bits > 64 else q[0], r), brute(ids, codes, q, r))


def test_queries_too_costly_to_probe_fall_back_to_a_scan() -> None:
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 2**64, (25_000, 1), dtype=np.uint64)
    codes[:5000] = codes[0]  # one code 5000 times: probing near it costs more than a scan
    ids = np.arange(25_000, dtype=np.int64)[::-1].copy()
    index = HammingIndex()
    index.add(ids, codes)
    qs = np.concatenate([codes[:1] ^ np.uint64(3), codes[6000:6010], codes[:1]])
    for r in (2, 5):
        for q in qs:
            assert_same(index.radius(q[0], r), brute(ids, codes, q, r))


def test_radius_with_planted_neighbours_at_every_distance() -> None:
    ids, codes = dataset(30_000, 64, seed=1)
    rng = np.random.default_rng(2)
    q = rng.integers(0, 2**64, (1, 1), dtype=np.uint64)
    planted = flip_bits(np.repeat(q, 22, axis=0), np.tile(np.arange(11), 2), rng)
    ids = np.concatenate([ids, 10**12 + np.arange(22)])
    codes = np.concatenate([codes, planted])
    index = HammingIndex()
    index.add(ids, codes)
    for r in range(12):
        got = index.radius(q[0, 0], r)
        assert_same(got, brute(ids, codes, q[0], r))
        assert set(range(10**12, 10**12 + 22)) & set(got[0].tolist()) >= {
            10**12 + i + 11 * j for i in range(min(r, 10) + 1) for j in range(2)
        }


def test_query_and_code_forms_agree() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 2**64, 500, dtype=np.uint64)
    as_bytes = codes[:, None].byteswap().view(np.uint8)  # big-endian bytes, as np.packbits gives
    a, b = HammingIndex(), HammingIndex()
    a.add(np.arange(500), codes)
    b.add(np.arange(500), as_bytes)
    q = codes[7]
    for query in (q, int(q), as_bytes[7], np.array([q])):
        assert_same(a.radius(query, 20), b.radius(q, 20))
    bits = np.unpackbits(as_bytes, axis=1)
    np.testing.assert_array_equal(np.packbits(bits, axis=1), as_bytes)


def test_knn_is_exact_with_ties_broken_by_id() -> None:
    base = np.uint64(0xF0F0_F0F0_0000_FFFF)
    # Many codes at the same few distances, ids deliberately out of order.
    flips = np.array([0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 40], np.uint64)
    codes = base ^ ((np.uint64(1) << flips) - np.uint64(1))
    ids = np.array([50, 40, 30, 20, 19, 18, 17, 16, 9, 8, 7, 1000], np.int64)
    index = HammingIndex()
    index.add(ids, codes)
    for k in (0, 1, 3, 4, 6, 11, 12, 50):
        got = index.knn(base, k)
        expect = brute(ids, codes[:, None], np.array([base]), 64)
        assert_same(got, (expect[0][:k], expect[1][:k]))
    assert index.knn(base, 4)[0].tolist() == [50, 20, 30, 40]


@pytest.mark.parametrize("bits", [64, 256])
def test_knn_on_indexed_data(bits: int) -> None:
    ids, codes = dataset(20_000, bits, seed=5)
    index = HammingIndex(bits)
    index.add(ids, codes)
    for q in queries(ids, codes, 3, seed=6):
        for k in (1, 10, 100):
            expect = brute(ids, codes, q, bits)
            assert_same(index.knn(q if bits > 64 else q[0], k), (expect[0][:k], expect[1][:k]))


def test_add_remove_replace_interleaved_with_queries() -> None:
    rng = np.random.default_rng(7)
    model: dict[int, int] = {}
    with small_thresholds():
        index = HammingIndex()
        for _ in range(60):
            op = rng.integers(0, 4)
            if op < 2:  # add a batch, some ids new and some replacing, with duplicates inside
                new_ids = rng.integers(0, 400, rng.integers(1, 40))
                new_codes = rng.integers(0, 2**64, len(new_ids), dtype=np.uint64)
                index.add(new_ids.astype(np.int64), new_codes)
                model.update(zip(new_ids.tolist(), new_codes.tolist()))
            elif op == 2:  # remove some known and some unknown ids
                gone = rng.integers(0, 500, rng.integers(1, 30)).astype(np.int64)
                index.remove(gone)
                for i in gone.tolist():
                    model.pop(i, None)
            else:  # replace a known id with a near copy of another code
                if model:
                    i, other = rng.choice(list(model), 2)
                    index.add(np.array([i]), np.array([model[other] ^ 5], np.uint64))
                    model[int(i)] = model[other] ^ 5
            assert len(index) == len(model)
            ids = np.array(list(model), np.int64)
            codes = np.array(list(model.values()), np.uint64).reshape(-1, 1)
            for q in codes[:3] if len(codes) else np.zeros((1, 1), np.uint64):
                for r in (0, 6, 20):
                    assert_same(index.radius(q[0], r), brute(ids, codes, q, r))
            if len(model) > 5:
                expect = brute(ids, codes, codes[0], 64)
                assert_same(index.knn(codes[0, 0], 5), (expect[0][:5], expect[1][:5]))
        assert len(index._parts) >= 1, "the test should have frozen and merged parts"


def test_save_load_round_trip(tmp_path: Path) -> None:
    ids, codes = dataset(20_000, 256, seed=8)
    index = HammingIndex(256)
    index.add(ids, codes)
    index.remove(ids[:100])  # tombstones
    index.add(ids[100:110], codes[:10])  # replacements held in the delta
    path = tmp_path / "index.hamming"
    index.save(path)
    loaded = HammingIndex.load(path)
    assert loaded.bits == 256 and len(loaded) == len(index)
    for q in queries(ids, codes, 3, seed=9):
        for r in (0, 12, 40):
            assert_same(loaded.radius(q, r), index.radius(q, r))
    empty = HammingIndex()
    empty.save(tmp_path / "empty")
    assert len(HammingIndex.load(tmp_path / "empty")) == 0


def test_corrupt_or_wrong_files_raise_store_error(tmp_path: Path) -> None:
    index = HammingIndex()
    index.add(np.arange(1000), np.arange(1000, dtype=np.uint64))
    good = tmp_path / "good"
    index.save(good)
    data = good.read_bytes()
    cases = {
        "missing": None,
        "truncated": data[: len(data) // 2],
        "garbage": b"\x93NUMPY not really" * 10,
        "empty": b"",
    }
    for at in (len(data) // 4, len(data) // 2, 3 * len(data) // 4):  # inside ids and codes data
        cases[f"flipped{at}"] = data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(StoreError) as err:
            HammingIndex.load(path)
        assert "\n" not in str(err.value)
    np.save(tmp_path / "plain.npy", np.arange(3))
    np.savez(tmp_path / "other.npz", format=np.array("something else"), bits=64, ids=np.arange(2))
    np.savez(tmp_path / "nocodes.npz", format=np.array(hamming._FORMAT), bits=64, ids=np.arange(2))
    fmt, two = np.array(hamming._FORMAT), np.zeros((2, 1), np.uint64)
    np.savez(tmp_path / "dtype.npz", format=fmt, bits=np.int64(64), ids=np.arange(2.0), codes=two)
    np.savez(tmp_path / "dup.npz", format=fmt, bits=np.int64(64), ids=np.array([1, 1]), codes=two)
    np.savez(tmp_path / "shape.npz", format=fmt, bits=np.int64(256), ids=np.arange(2), codes=two)
    np.savez(tmp_path / "bits.npz", format=fmt, bits=np.int64(65), ids=np.arange(2), codes=two)
    for name in ("plain.npy", "other.npz", "nocodes.npz", "dtype.npz", "dup.npz", "shape.npz", "bits.npz"):
        with pytest.raises(StoreError):
            HammingIndex.load(tmp_path / name)
    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as z:  # an object array must not unpickle
        with z.open("format.npy", "w") as f:
            np.lib.format.write_array(f, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(StoreError):
        HammingIndex.load(tmp_path / "pickled.npz")


def test_bad_arguments_raise_config_error() -> None:
    for bits in (0, -64, 65, 100, True, 64.0, "64"):
        with pytest.raises(ConfigError):
            HammingIndex(bits)  # type: ignore[arg-type]
    index = HammingIndex()
    ok_ids, ok_codes = np.arange(3), np.arange(3, dtype=np.uint64)
    bad_adds = [
        (np.arange(3.0), ok_codes),  # float ids
        (np.arange(3, dtype=np.uint64), ok_codes),  # ids that may not fit int64
        (np.arange(3).reshape(3, 1), ok_codes),  # 2-d ids
        ([0, 1, 2], ok_codes),  # not an array
        (ok_ids, np.arange(3, dtype=np.int64)),  # signed codes
        (ok_ids, np.zeros((3, 7), np.uint8)),  # 7 bytes a code
        (ok_ids, np.zeros((3, 2), np.uint64)),  # 128-bit words in a 64-bit index
        (ok_ids, np.arange(4, dtype=np.uint64)),  # length mismatch
    ]
    for ids, codes in bad_adds:
        with pytest.raises(ConfigError):
            index.add(ids, codes)  # type: ignore[arg-type]
    index.add(ok_ids, ok_codes)
    with pytest.raises(ConfigError):
        index.remove(np.array([0.5]))
    for r in (-1, True, 1.5, None):
        with pytest.raises(ConfigError):
            index.radius(0, r)  # type: ignore[arg-type]
    for q in (-1, 1 << 64, True, 1.0, np.zeros(7, np.uint8), np.zeros((1, 8), np.uint8), np.int64(3)):
        with pytest.raises(ConfigError):
            index.radius(q, 3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        index.knn(0, -1)
    with pytest.raises(ConfigError):
        HammingIndex(256).radius(np.uint64(1), 3)


code_sets = st.lists(st.integers(0, 2**64 - 1), min_size=0, max_size=60)


@settings(max_examples=60, deadline=None)
@given(
    pool=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=8),
    picks=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 63)), max_size=70),
    extra=code_sets,
    q=st.integers(0, 2**64 - 1),
    r=st.integers(0, 66),
)
def test_property_radius_equals_brute_force(
    pool: list[int], picks: list[tuple[int, int]], extra: list[int], q: int, r: int
) -> None:
    # Codes near a few centres (so many ties and shared buckets) plus arbitrary ones.
    values = [pool[i % len(pool)] ^ (1 << b) for i, b in picks] + extra
    codes = np.array(values, np.uint64).reshape(-1, 1)
    ids = np.arange(len(values), dtype=np.int64)[::-1].copy()
    for tables_from in (1, 10**9):  # every size through the tables, then always by scan
        never_scan = mock.patch.object(hamming, "_SCAN_FRACTION", 2.0)
        with small_thresholds(tables_from=tables_from, delta_max=1), never_scan:
            index = HammingIndex()
            index.add(ids, codes)
            for query in (q, int(codes[0, 0]) if len(values) else q):
                assert_same(index.radius(query, r), brute(ids, codes, np.array([query], np.uint64), r))


def test_empty_index_and_empty_batches() -> None:
    index = HammingIndex(256)
    assert len(index) == 0
    assert_same(index.radius(0, 5), (np.empty(0, np.int64), np.empty(0, np.int64)))
    assert_same(index.knn(0, 3), (np.empty(0, np.int64), np.empty(0, np.int64)))
    index.add(np.empty(0, np.int64), np.empty((0, 32), np.uint8))
    index.remove(np.array([1, 2]))
    assert len(index) == 0


def test_memory_per_64_bit_code_stays_under_32_bytes() -> None:
    ids, codes = dataset(300_000, 64, seed=10)
    index = HammingIndex()
    index.add(ids, codes)
    assert index.nbytes() / len(index) < 32
    index.remove(ids[: len(ids) // 130])  # tombstones, just under the rebuild threshold
    assert index._dead[0].size
    assert index.nbytes() / len(index) < 32


def test_knn_scan_fallback_skips_removed_codes() -> None:
    ids, codes = dataset(20_000, 64, seed=11)
    index = HammingIndex()
    index.add(ids, codes)
    index.remove(ids[:300])
    keep = np.arange(300, len(ids))
    for q in codes[:5]:  # queries whose nearest codes were removed
        expect = brute(ids[keep], codes[keep], q, 64)
        assert_same(index.knn(q[0], 50), (expect[0][:50], expect[1][:50]))
        assert_same(index.knn(q[0], 20_000), expect)  # everything: the scan fallback


def test_huge_radius_returns_every_code() -> None:
    ids, codes = dataset(20_000, 64, seed=12)
    index = HammingIndex()
    index.add(ids, codes)
    q = codes[0]
    assert_same(index.radius(q[0], 10**30), brute(ids, codes, q, 64))  # r beyond int64 too


def test_concurrent_queries_agree_with_serial_ones() -> None:
    ids, codes = dataset(40_000, 64, seed=13)
    index = HammingIndex()
    index.add(ids, codes)
    qs = queries(ids, codes, 10, seed=14)[:, 0]
    serial = [index.radius(q, 8) for q in qs]
    with ThreadPoolExecutor(4) as pool:  # the kernels release the GIL
        threaded = list(pool.map(lambda q: index.radius(q, 8), qs))
    for got, expected in zip(threaded, serial):
        assert_same(got, expected)


def test_kernels_compile_without_a_writable_cache_directory() -> None:
    # A read-only install without a writable home leaves numba no cache directory, and it then
    # refuses cache=True at decoration; so does a function without a source file, as here.
    namespace: dict[str, Any] = {}
    exec("def double(x):\n    return 2 * x\n", namespace)
    with pytest.raises(RuntimeError, match="cannot cache"):
        numba.njit(cache=True)(namespace["double"])
    assert jit(namespace["double"])(21) == 42


CACHED_QUERY = """
import sys
import numpy as np
from lookalike.index.search import hamming
hamming._TABLES_FROM, hamming._DELTA_MAX = 64, 64  # a part with tables, at once
rng = np.random.default_rng(0)
codes = rng.integers(0, 2**64, 5000, dtype=np.uint64)
index = hamming.HammingIndex()
index.add(np.arange(5000), codes)
ids, d = index.radius(codes[7], 12)
assert ids.tolist() == [7] and d.tolist() == [0], (ids, d)
print(sum(hamming._search.stats.cache_hits.values()), sum(hamming._search.stats.cache_misses.values()))
"""


def test_kernels_are_cached_on_disk(tmp_path: Path) -> None:
    # NUMBA_CACHE_DIR comes first among numba's cache locations: the first process compiles and
    # writes the kernels there, the next loads them. -W error: numba warns of nothing, either.
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-W", "error", "-c", CACHED_QUERY], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        runs.append(done.stdout.split())
    assert runs == [["0", "1"], ["1", "0"]]
    assert list(tmp_path.rglob("*.nbi")) and list(tmp_path.rglob("*.nbc"))


def test_shared_index_answers_as_a_private_one_and_keeps_later_changes(tmp_path: Path) -> None:
    ids, codes = dataset(40_000, 64, seed=21)
    private, shared = HammingIndex(), HammingIndex()
    for index in (private, shared):
        index.add(ids[:30_000], codes[:30_000])
    shared.share(tmp_path)
    (folder,) = tmp_path.glob("hamming-*")  # one folder of files, mapped, not read into memory
    mapped = Path("/proc/self/maps").read_text()
    assert str(folder / "codes.npy") in mapped and str(folder / "perm.npy") in mapped

    # changes after sharing: new codes, a replaced code, removed codes, on both indexes alike
    for index in (private, shared):
        index.add(ids[30_000:], codes[30_000:])
        index.add(ids[:1], codes[5:6])
        index.remove(ids[100:600])
    assert len(shared) == len(private) == 40_000 - 500
    for q in queries(ids, codes, 8, seed=22)[:, 0]:
        for r in (0, 6, 14):
            assert_same(shared.radius(q, r), private.radius(q, r))
        assert_same(shared.knn(q, 5), private.knn(q, 5))

    # a second process's index (here: a second index) with the same codes maps the same files
    other = HammingIndex()
    other.add(ids[:30_000], codes[:30_000])
    other.share(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]
    assert_same(other.radius(codes[7, 0], 3), brute(ids[:30_000], codes[:30_000], codes[7], 3))


def test_sharing_into_an_unwritable_folder_raises_store_error(tmp_path: Path) -> None:
    ids, codes = dataset(20_000, 64, seed=23)
    index = HammingIndex()
    index.add(ids, codes)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot share"):
        index.share(blocker)
    assert_same(index.radius(codes[3, 0], 2), brute(ids, codes, codes[3], 2))  # still answers

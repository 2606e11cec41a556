"""One suite over every store: SQLite (a real file) and PostgreSQL (a real server) must behave alike.

The first test fails when a public method is added to one store and not the
other (or to neither the ``Store`` protocol), which is how a new table in
``SQLiteStore`` is noticed before the service runs on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import cache

import pytest

from lookalike.errors import AlreadyExists, NotFound, StoreError
from lookalike.fingerprints import FINGERPRINT_VERSION, Fingerprint, analyse
from lookalike.index.store.interface import Store, open_store
from lookalike.index.store.postgres import PostgresStore
from lookalike.index.store.records import Decision, NewFile
from lookalike.index.store.sqlite import SQLiteStore
from tests.index.conftest import jpeg, picture


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_both_stores_have_the_same_public_methods_with_the_same_signatures() -> None:
    sqlite, postgres = _public(SQLiteStore), _public(PostgresStore)
    assert sorted(sqlite) == sorted(postgres), "a public store method is missing from one of the stores"
    for name in sqlite:
        assert list(sqlite[name].parameters) == list(postgres[name].parameters), name
    protocol = {n for n in dir(Store) if not n.startswith("_")}
    assert protocol <= set(sqlite), "the Store protocol names a method the stores lack"


@cache
def fp(seed: int) -> Fingerprint:
    return analyse(jpeg(picture(seed, 160, 120))).fingerprint


@pytest.fixture
def store(db_location: str) -> Iterator[Store]:
    s = open_store(db_location)
    yield s
    s.close()


def new(seed: int, scope: str = "alice", image_id: str | None = None, rendition: str = "") -> NewFile:
    return NewFile(fingerprint=fp(seed), scope=scope, source=f"src-{seed}", image_id=image_id, rendition=rendition)


def test_adding_the_same_bytes_twice_to_a_scope_stores_one_file(store: Store) -> None:
    ((first, new1),) = store.add_files([new(1, image_id="a")])
    ((again, new2),) = store.add_files([new(1, image_id="b")])
    ((other_scope, new3),) = store.add_files([new(1, scope="bob", image_id="a")])
    assert (new1, new2, new3) == (True, False, True)
    assert again.pk == first.pk and again.image_id == "a"
    assert other_scope.pk != first.pk
    assert [f.pk for f in store.files_by_sha("alice", fp(1).sha256)] == [first.pk]
    assert store.files_by_sha("carol", fp(1).sha256) == []


def test_renditions_paging_and_removal(store: Store) -> None:
    store.add_files([new(1, image_id="b", rendition="full"), new(2, image_id="b", rendition="small")])
    store.add_files([new(3, image_id="a"), new(4, image_id="c"), new(5, scope="bob", image_id="a0")])
    record = store.image("alice", "b")
    assert [f.rendition for f in record.files] == ["full", "small"]
    assert [r.image_id for r in store.images("alice", limit=2)] == ["a", "b"]
    assert [r.image_id for r in store.images("alice", after="b")] == ["c"]
    assert [len(r.files) for r in store.images("alice")] == [1, 2, 1]
    seq = store.last_change()
    removed = store.remove_image("alice", "b")
    assert sorted(removed) == sorted(f.pk for f in record.files)
    newest, added, gone = store.changes_since(seq)
    assert newest > seq and added == [] and sorted(gone) == sorted(removed)
    with pytest.raises(NotFound):
        store.image("alice", "b")
    with pytest.raises(NotFound):
        store.remove_image("bob", "a")  # alice's id, asked for in bob's scope
    assert store.files([*removed, 999_999]) == []


def test_a_replaced_file_keeps_its_image_rendition_and_review_pairs(store: Store) -> None:
    from lookalike.fingerprints.local import local_features

    (old, _), (small, _), (other, _) = store.add_files(
        [new(1, image_id="a", rendition="full"), new(2, image_id="a", rendition="small"), new(3, image_id="b")]
    )
    store.add_review("alice", old.image_pk, other.image_pk, score=0.5, verdict="similar", evidence="why")
    (pair,) = store.reviews("alice")
    store.decide(pair.pk, Decision.NOT_DUPLICATE, "alice")
    seq = store.last_change()
    analysis = analyse(jpeg(picture(9, 320, 240)))
    local = local_features(analysis.image.pixels).to_bytes()
    item = NewFile(fingerprint=analysis.fingerprint, scope="alice", source="src-better", local=local)

    stored = store.replace_file(old.pk, item)

    assert (stored.image_id, stored.image_pk, stored.rendition, stored.source) == (
        "a",
        old.image_pk,
        "full",
        "src-better",
    )
    record = store.image("alice", "a")
    assert {(f.rendition, f.source) for f in record.files} == {("full", "src-better"), ("small", "src-2")}
    assert store.files([old.pk]) == [] and store.local_features([old.pk, stored.pk]) == {stored.pk: local}
    assert store.files_by_sha("alice", fp(1).sha256) == []
    assert [f.pk for f in store.files_by_sha("alice", analysis.fingerprint.sha256)] == [stored.pk]
    newest, added, gone = store.changes_since(seq)
    assert [r.pk for r in added] == [stored.pk] and gone == [old.pk]
    assert [r.local_codes for r in added] == [item.local_codes]
    assert store.decisions([old.image_pk]) == {(pair.a_pk, pair.b_pk): Decision.NOT_DUPLICATE}
    assert store.stats().files == 3
    with pytest.raises(AlreadyExists):  # the bytes of another stored file: two rows may not hold them
        store.replace_file(stored.pk, new(2))
    with pytest.raises(NotFound):
        store.replace_file(old.pk, new(4))
    assert small.pk in {f.pk for f in store.image("alice", "a").files}


def test_the_change_log_and_codes_agree(store: Store) -> None:
    assert store.changes_since(0) == (0, [], [])
    results = store.add_files([new(s) for s in (1, 2, 3)])
    seq, added, removed = store.changes_since(0)
    assert seq == store.last_change() and removed == []
    assert [r.pk for r in added] == [f.pk for f, _ in results]
    assert [r.phash for r in added] == [fp(s).phash for s in (1, 2, 3)]  # unsigned 64-bit survives storage
    assert [r.pk for batch in store.codes(batch=2) for r in batch] == [f.pk for f, _ in results]
    assert store.scope_names() == {store.scope_pk("alice"): "alice"}
    assert store.files([results[1][0].pk])[0].fingerprint == fp(2)


def test_local_features_and_their_retrieval_codes_are_kept(store: Store) -> None:
    from lookalike.fingerprints.local import local_features
    from lookalike.index.store.records import LOCAL_CODES

    analysis = analyse(jpeg(picture(8, 320, 240)))
    local = local_features(analysis.image.pixels).to_bytes()
    item = NewFile(fingerprint=analysis.fingerprint, scope="alice", local=local)
    ((f, _),) = store.add_files([item])
    assert store.local_features([f.pk]) == {f.pk: local}
    ((row,),) = list(store.codes())
    assert row.local_codes == item.local_codes and 0 < len(row.local_codes) <= 32 * LOCAL_CODES
    assert store.changes_since(0)[1][0].local_codes == item.local_codes


def test_embeddings_are_kept_per_file_and_model_and_go_with_their_image(store: Store) -> None:
    vector = bytes(range(256)) * 10  # 2,560 bytes: a float16 EfficientNet-Lite0 vector
    item = replace(new(1, image_id="a"), embedding=("lite0:abc", vector))
    (a, _), (b, _), (c, _) = store.add_files([item, new(2, image_id="b"), new(3, image_id="c")])
    assert store.embeddings("lite0:abc", [a.pk, b.pk]) == {a.pk: vector}  # b was stored without one
    store.put_embeddings("lite0:abc", [(b.pk, b"\x01" * 2560), (999_999, b"\x02" * 2560)])  # a gone row: skipped
    store.put_embeddings("other-model", [(a.pk, b"\x03" * 8)])  # another encoder's vector beside the first
    store.put_embeddings("lite0:abc", [(b.pk, b"\x04" * 2560)])  # replaced, not doubled
    rows = [r for batch in store.embedding_rows("lite0:abc", batch=1) for r in batch]
    assert rows == [(a.pk, vector), (b.pk, b"\x04" * 2560)]
    assert store.embeddings("other-model", [a.pk, b.pk, c.pk]) == {a.pk: b"\x03" * 8}
    store.remove_image("alice", "a")
    assert [pk for batch in store.embedding_rows("lite0:abc") for pk, _ in batch] == [b.pk]
    assert store.embeddings("other-model", [a.pk]) == {}


def test_review_pairs_and_decisions_stay_in_their_scope(store: Store) -> None:
    (a, _), (b, _) = store.add_files([new(1, image_id="a"), new(2, image_id="b")])
    store.add_review("alice", b.image_pk, a.image_pk, score=0.5, verdict="similar", evidence="why")
    store.add_review("alice", a.image_pk, b.image_pk, score=0.9, verdict="similar", evidence="again")
    (pair,) = store.reviews("alice")
    assert (pair.a_id, pair.b_id, pair.score, pair.a_source) == ("a", "b", 0.5, "src-1")
    assert store.reviews("bob") == []
    with pytest.raises(NotFound):
        store.decide(pair.pk, Decision.DUPLICATE, "bob")
    decided = store.decide(pair.pk, Decision.DUPLICATE, "alice")
    assert decided.decision is Decision.DUPLICATE and decided.decided_at is not None
    assert store.decisions([a.image_pk]) == {(pair.a_pk, pair.b_pk): Decision.DUPLICATE}
    store.decide_images("alice", a.image_pk, b.image_pk, Decision.NOT_DUPLICATE)
    assert store.review_pair(pair.pk).decision is Decision.NOT_DUPLICATE
    assert store.stats().review_decided == 1


def test_api_keys_are_found_by_hash_and_revoked(store: Store) -> None:
    digest = hashlib.sha256(b"secret").digest()
    key = store.add_api_key("alice", "k1", digest, name="laptop")
    assert key.scope == "alice" and key.revoked_at is None
    assert store.api_key_scope(digest) == "alice"
    assert store.api_key_scope(hashlib.sha256(b"other").digest()) is None
    assert [k.key_id for k in store.api_keys("alice")] == ["k1"] and store.api_keys("bob") == []
    revoked = store.revoke_api_key("k1")
    assert revoked.revoked_at is not None
    assert store.api_key_scope(digest) is None
    with pytest.raises(NotFound):
        store.revoke_api_key("nope")
    with pytest.raises(AlreadyExists, match="exists already"):
        store.add_api_key("bob", "k2", digest)  # a hash is unique
    with pytest.raises(AlreadyExists, match="'k1'"):
        store.add_api_key("bob", "k1", hashlib.sha256(b"another").digest())  # so is an id
    assert issubclass(AlreadyExists, StoreError)


def test_the_scope_lock_lets_one_holder_in_at_a_time_per_scope(store: Store, db_location: str) -> None:
    other = open_store(db_location)  # another connection, as another process would have
    inside: list[str] = []
    overlaps: list[str] = []

    def hold(s: Store, scope: str, name: str) -> None:
        with s.scope_lock(scope):
            if any(n.startswith(scope) for n in inside):
                overlaps.append(name)
            inside.append(f"{scope}:{name}")
            time.sleep(0.05)
            inside.remove(f"{scope}:{name}")

    threads = [
        threading.Thread(target=hold, args=(s, scope, f"{i}"))
        for i in range(4)
        for s, scope in ((store, "alice"), (other, "alice"), (store, "bob"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert overlaps == []


def test_stats_count_files_whose_fingerprints_are_older_than_this_version(store: Store) -> None:
    older = NewFile(
        fingerprint=replace(fp(7), version=FINGERPRINT_VERSION - 1), scope="alice", source="old", image_id=None
    )
    store.add_files([new(1), new(2), older])
    stats = store.stats()
    assert (stats.files, stats.outdated_fingerprints) == (3, 1)


def test_a_database_of_an_earlier_schema_is_brought_up_to_date(db_location: str) -> None:
    """A database from before ``local_codes`` (schema 3) opens, gains the table, and its files'
    retrieval codes are filled in from their stored features."""
    from lookalike.fingerprints.local import local_features

    analysis = analyse(jpeg(picture(8, 320, 240)))
    local = local_features(analysis.image.pixels).to_bytes()
    item = NewFile(fingerprint=analysis.fingerprint, scope="alice", local=local)
    s = open_store(db_location)
    s.add_files([item])
    s.close()
    _downgrade_to_schema_3(db_location)

    s = open_store(db_location)
    try:
        ((row,),) = list(s.codes())
        assert row.local_codes == item.local_codes
    finally:
        s.close()


def _downgrade_to_schema_3(location: str) -> None:
    """What a database of schema 3 looks like: no ``local_codes`` table, marked version 3."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("DROP TABLE local_codes")
            conn.execute("DELETE FROM schema_migrations WHERE version > 3")
        return
    import sqlite3

    conn = sqlite3.connect(location)
    conn.execute("DROP TABLE local_codes")
    conn.execute("PRAGMA user_version=3")
    conn.commit()
    conn.close()

"""API keys of the service: made here (so the command line and the service share one format),
stored hashed by the store.

A key reads ``lk_<id>_<secret>``: the id (8 hex digits) names the key in
listings and revocations; the secret is 32 random bytes. The store keeps the
id and the SHA-256 of the whole key, never the key: a stolen database does not
hand out working keys, and a 256-bit secret makes a salted slow hash pointless.
"""

from __future__ import annotations

import hashlib
import secrets

from lookalike.index.store.interface import KeyStore
from lookalike.index.store.records import ApiKey

__all__ = ["create_api_key", "key_hash"]


def key_hash(key: str) -> bytes:
    """What the store keeps of ``key``."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def create_api_key(store: KeyStore, scope: str, *, name: str = "") -> tuple[str, ApiKey]:
    """A new key for ``scope`` (the tenant): the key itself, shown once, and its stored record."""
    key_id = secrets.token_hex(4)
    key = f"lk_{key_id}_{secrets.token_urlsafe(32)}"
    return key, store.add_api_key(scope, key_id, key_hash(key), name=name)

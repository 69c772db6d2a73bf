"""Virtual-key records: validation, hashing, and the SQLite and Redis stores (create, look up, update, revoke)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from pathlib import Path

import pytest
import redis

from spoon_llm.errors import ConfigurationError, LLMError, ValidationError
from spoon_llm.server.keys import (
    KEY_PREFIX,
    KeyConflictError,
    KeyNotFoundError,
    KeyStore,
    KeyStoreUnavailableError,
    RedisKeyStore,
    SQLiteKeyStore,
    VirtualKey,
    generate_key,
    hash_key,
    new_key,
    server_secret,
)


def test_generated_keys_are_long_random_and_url_safe() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith(KEY_PREFIX)
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key[len(KEY_PREFIX):])


def test_hash_is_hmac_sha256_under_the_secret(secret: bytes) -> None:
    plain = generate_key()
    assert hash_key(plain, secret) == hmac.new(secret, plain.encode(), hashlib.sha256).hexdigest()
    assert hash_key(plain, secret + b"x") != hash_key(plain, secret)


def test_server_secret_prefers_the_secret_then_derives_from_the_master_key() -> None:
    assert server_secret("abc", "master") == b"abc"
    derived = server_secret(None, "master-key-1")
    assert derived == server_secret("", "master-key-1") and derived != b"master-key-1"
    assert derived != server_secret(None, "master-key-2")
    with pytest.raises(ConfigurationError, match=r"server\.secret.*SPOON_LLM_SERVER_SECRET"):
        server_secret(None, None)


def test_new_key_keeps_only_the_hash_and_a_display_prefix(secret: bytes) -> None:
    record, plain = new_key("alice", secret, models=["gpt-4o"], rpm=5, metadata={"team": "t1"})
    assert record.key_hash == hash_key(plain, secret)
    assert record.display == plain[:len(KEY_PREFIX) + 4] + "…"
    assert plain not in repr(record) and record.key_hash not in repr(record)
    assert plain not in str(record.to_dict()) and "key_hash" not in record.public_dict()
    assert record.models == ("gpt-4o",) and record.status() == "active"
    assert VirtualKey.from_dict(record.to_dict()) == record


@pytest.mark.parametrize(("fields", "message"), [
    ({"alias": "has space"}, "alias 'has space' is invalid"),
    ({"role": "root"}, "role must be 'user' or 'admin'"),
    ({"budget_period": "weekly"}, "budget_period must be total, daily or monthly"),
    ({"rpm": 0}, "'rpm' must be > 0"),
    ({"tpm": -5}, "'tpm' must be > 0"),
    ({"max_concurrent": 1.5}, "'max_concurrent' must be a whole number"),
    ({"rpm": True}, "'rpm' must be a whole number"),
    ({"budget_limit": -1.0}, "'budget_limit' must be >= 0"),
    ({"budget_limit": float("nan")}, "'budget_limit' must be >= 0"),
    ({"models": [""]}, "models must be non-empty names"),
    ({"metadata": {"team": 3}}, "metadata keys and values must be strings"),
])
def test_invalid_fields_are_refused_with_the_field_named(secret: bytes, fields: dict[str, object],
                                                         message: str) -> None:
    alias = str(fields.pop("alias", "alice"))
    with pytest.raises(ValidationError, match=re.escape(message)):
        new_key(alias, secret, **fields)


async def test_create_look_up_list(key_store: KeyStore, secret: bytes) -> None:
    alice, alice_key = new_key("alice", secret, rpm=10, metadata={"user": "alice"})
    bob, _ = new_key("bob", secret, role="admin", models=["fast", "gpt-*"], budget_limit=2.5,
                     budget_period="daily")
    version = await key_store.version()
    await key_store.create(alice)
    await key_store.create(bob)
    assert await key_store.version() == version + 2
    assert await key_store.get_by_hash(hash_key(alice_key, secret)) == alice
    assert await key_store.get_by_hash(hash_key(generate_key(), secret)) is None
    assert await key_store.get_by_alias("bob") == bob
    assert await key_store.get_by_alias("carol") is None
    assert [r.alias for r in await key_store.list_keys()] == ["alice", "bob"]
    twin, _ = new_key("alice", secret)
    with pytest.raises(KeyConflictError, match="'alice' already exists"):
        await key_store.create(twin)
    assert await key_store.version() == version + 2  # a refused create changes nothing


async def test_update_and_revoke(key_store: KeyStore, secret: bytes) -> None:
    record, plain = new_key("alice", secret, rpm=10)
    await key_store.create(record)
    before = await key_store.version()
    updated = await key_store.update("alice", rpm=20, models=["fast"], budget_limit=1.0)
    assert (updated.rpm, updated.models, updated.budget_limit) == (20, ("fast",), 1.0)
    assert await key_store.get_by_hash(hash_key(plain, secret)) == updated
    with pytest.raises(ValidationError, match="cannot change key_hash"):
        await key_store.update("alice", key_hash="0" * 64)
    with pytest.raises(ValidationError, match="'rpm' must be > 0"):
        await key_store.update("alice", rpm=0)
    revoked = await key_store.revoke("alice")
    assert revoked.revoked_at is not None and revoked.status() == "revoked"
    again = await key_store.revoke("alice")
    assert again.revoked_at == revoked.revoked_at  # the first revocation time stays
    assert (await key_store.get_by_alias("alice")) == again
    assert await key_store.version() > before
    for call in (key_store.revoke("nobody"), key_store.update("nobody", rpm=1), key_store.require("nobody")):
        with pytest.raises(KeyNotFoundError, match="no virtual key named 'nobody'"):
            await call


async def test_concurrent_updates_lose_nothing(key_store: KeyStore, secret: bytes) -> None:
    record, _ = new_key("alice", secret, metadata={})
    await key_store.create(record)

    async def tag(i: int) -> None:
        await key_store._swap("alice", lambda r: r.replace(metadata={**r.metadata, f"k{i}": "v"}))

    await asyncio.gather(*(tag(i) for i in range(20)))
    final = await key_store.require("alice")
    assert sorted(final.metadata) == sorted(f"k{i}" for i in range(20))


async def test_the_plain_key_is_nowhere_in_the_sqlite_file(tmp_path: Path, secret: bytes) -> None:
    path = tmp_path / "keys.db"
    store = SQLiteKeyStore(path)
    plains = []
    try:
        for alias in ("alice", "bob", "carol"):
            record, plain = new_key(alias, secret, metadata={"user": alias})
            await store.create(record)
            plains.append((record, plain))
        await store.revoke("bob")
        files = [p for p in tmp_path.iterdir() if p.name.startswith("keys.db")]
        data = b"".join(p.read_bytes() for p in files)  # the database and its WAL, while still open
    finally:
        await store.close()
    data += path.read_bytes()
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    for record, plain in plains:
        assert record.key_hash.encode() in data  # the scan does see the stored records
        assert plain.encode() not in data
        assert plain[len(KEY_PREFIX):].encode() not in data  # not even without its prefix


async def test_the_plain_key_is_nowhere_in_redis(redis_url: str, redis_prefix: str, secret: bytes) -> None:
    store = RedisKeyStore(redis_url, prefix=redis_prefix)
    try:
        record, plain = new_key("alice", secret, metadata={"team": "t"})
        await store.create(record)
        await store.update("alice", rpm=3)
    finally:
        await store.close()
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{redis_prefix}*"))
        assert len(keys) == 3
        parts = []
        for key in keys:  # every value as stored, read by type (DUMP output may be compressed)
            kind = client.type(key)
            if kind == b"hash":
                parts.extend(f + v for f, v in client.hgetall(key).items())
            else:
                assert kind == b"string"
                parts.append(client.get(key) or b"")
        dumped = b"".join(keys) + b"".join(parts)
    finally:
        client.close()
    assert record.key_hash.encode() in dumped
    assert plain.encode() not in dumped and plain[len(KEY_PREFIX):].encode() not in dumped


async def test_an_unreachable_redis_is_a_clear_error_without_the_password(secret: bytes) -> None:
    store = RedisKeyStore("redis://:hunter2-password@127.0.0.1:1/0", timeout=0.2)
    try:
        with pytest.raises(KeyStoreUnavailableError, match="unreachable") as caught:
            await store.version()
    finally:
        await store.close()
    assert isinstance(caught.value, LLMError)
    assert "hunter2" not in str(caught.value) and "hunter2" not in store.describe()


async def test_a_damaged_record_is_a_clear_error(tmp_path: Path, secret: bytes) -> None:
    import sqlite3

    store = SQLiteKeyStore(tmp_path / "keys.db")
    record, plain = new_key("alice", secret)
    try:
        await store.create(record)
        with sqlite3.connect(tmp_path / "keys.db") as conn:
            conn.execute("UPDATE virtual_keys SET data = ? WHERE alias = 'alice'",
                         ('{"alias": "alice", "colour": "red"}',))
        with pytest.raises(LLMError, match="stored virtual key record cannot be read"):
            await store.get_by_hash(hash_key(plain, secret))
    finally:
        await store.close()

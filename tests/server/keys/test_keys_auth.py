"""Authenticator: every outcome (no key, wrong key, revoked, expired, master, both headers), throttling of failed
attempts, staleness bound of the cache, and what happens when the store is unreachable."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis

from spoon_llm.errors import LLMError
from spoon_llm.server.auth import Authenticator, GatewayAuthError, Principal, presented_key
from spoon_llm.server.keys import KeyStore, RedisKeyStore, SQLiteKeyStore, new_key

MASTER = "sk-master-0123456789abcdef"


class Clock:
    """A hand-moved monotonic clock for the throttling window and the cache refresh."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def refused(auth: Authenticator, headers: object, client: str = "10.0.0.1") -> GatewayAuthError:
    with pytest.raises(GatewayAuthError) as caught:
        await auth.authenticate(headers, client)  # type: ignore[arg-type]
    return caught.value


def assert_no_key_inside(error: BaseException, *secrets: str) -> None:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        text = f"{current} {current!r} {current.args!r}"
        for secret in secrets:
            assert secret not in text
        current = current.__cause__ or current.__context__


async def test_every_outcome(key_store: KeyStore, secret: bytes) -> None:
    alice, alice_key = new_key("alice", secret, models=["gpt-4o", "claude-*"], metadata={"user": "a", "team": "t"})
    gone, gone_key = new_key("gone", secret)
    old, old_key = new_key("old", secret, expires_at=time.time() - 1)
    for record in (alice, gone, old):
        await key_store.create(record)
    await key_store.revoke("gone")
    auth = Authenticator(master_key=MASTER, store=key_store, secret=secret)

    master = await auth.authenticate(bearer(MASTER), "10.0.0.1")
    assert (master.alias, master.role, master.models, master.key_id, master.is_admin) == (
        "master", "admin", None, None, True)

    principal = await auth.authenticate(bearer(alice_key), "10.0.0.1")
    assert isinstance(principal, Principal)
    assert (principal.alias, principal.role, principal.key_id) == ("alice", "user", alice.id)
    assert principal.models == frozenset({"gpt-4o", "claude-*"}) and dict(principal.tags) == {"user": "a",
                                                                                             "team": "t"}
    assert principal.may_use("gpt-4o") and principal.may_use("claude-sonnet-4") and not principal.may_use("gpt-4")
    assert not principal.is_admin
    # x-api-key (the Anthropic SDK), any header case, and ASGI's raw byte pairs.
    assert (await auth.authenticate({"X-Api-Key": alice_key}, None)).alias == "alice"
    raw = [(b"host", b"x"), (b"authorization", f"Bearer {alice_key}".encode())]
    assert (await auth.authenticate(raw, "10.0.0.1")).alias == "alice"

    cases = [
        ({}, 401, "missing_api_key", "no API key"),
        ({"authorization": "Basic abc"}, 401, "invalid_api_key", "Bearer <key>"),
        (bearer("sk-spoon-" + "x" * 43), 401, "invalid_api_key", "invalid API key"),
        (bearer("not-a-spoon-key"), 401, "invalid_api_key", "invalid API key"),
        (bearer(MASTER + "x"), 401, "invalid_api_key", "invalid API key"),
        (bearer(gone_key), 401, "key_revoked", "'gone' was revoked at"),
        ({"x-api-key": old_key}, 401, "key_expired", "'old' expired at"),
    ]
    for headers, status, code, text in cases:
        error = await refused(auth, headers)
        assert (error.status, error.code) == (status, code)
        assert text in str(error)
        assert isinstance(error, LLMError)
        assert_no_key_inside(error, MASTER, alice_key, gone_key, old_key, "x" * 43)


async def test_failed_attempts_are_throttled_per_address(tmp_path: Path, secret: bytes) -> None:
    store = SQLiteKeyStore(tmp_path / "keys.db")
    record, plain = new_key("alice", secret)
    await store.create(record)
    clock = Clock()
    auth = Authenticator(master_key=MASTER, store=store, secret=secret, max_failures=5, failure_window=60.0,
                         clock=clock)
    try:
        for _ in range(5):
            clock.now += 1.0
            assert (await refused(auth, bearer("sk-spoon-wrong"), "10.0.0.9")).status == 401
        throttled = await refused(auth, bearer(plain), "10.0.0.9")  # even the right key, from that address
        assert (throttled.status, throttled.code) == (429, "too_many_failures")
        assert throttled.retry_after == pytest.approx(56.0)  # the first failure leaves the window then
        assert (await auth.authenticate(bearer(plain), "10.0.0.10")).alias == "alice"  # other addresses: fine
        assert (await auth.authenticate(bearer(MASTER), "10.0.0.10")).alias == "master"
        clock.now += 56.0
        assert (await auth.authenticate(bearer(plain), "10.0.0.9")).alias == "alice"
        assert auth.stats["throttled"] == 1
    finally:
        await store.close()


async def test_a_revocation_is_seen_within_the_refresh_interval(tmp_path: Path, secret: bytes) -> None:
    # Two stores on one file stand for two replicas: the revocation goes through one, the cache is in the other.
    path = tmp_path / "keys.db"
    admin_side, serving_side = SQLiteKeyStore(path), SQLiteKeyStore(path)
    record, plain = new_key("alice", secret)
    await admin_side.create(record)
    clock = Clock()
    auth = Authenticator(master_key=None, store=serving_side, secret=secret, refresh=0.5, clock=clock)
    try:
        assert (await auth.authenticate(bearer(plain), "c")).alias == "alice"
        await admin_side.revoke("alice")
        clock.now += 0.4
        assert (await auth.authenticate(bearer(plain), "c")).alias == "alice"  # cached, still within 0.5 s
        clock.now += 0.1
        assert (await refused(auth, bearer(plain), "c")).code == "key_revoked"
        # A key created elsewhere is found although its hash was cached as unknown before.
        bob, bob_key = new_key("bob", secret)
        assert (await refused(auth, bearer(bob_key), "c")).code == "invalid_api_key"
        await admin_side.create(bob)
        clock.now += 0.5
        assert (await auth.authenticate(bearer(bob_key), "c")).alias == "bob"
    finally:
        await admin_side.close()
        await serving_side.close()


async def test_concurrent_requests_share_one_version_check_and_one_lookup(redis_url: str, redis_prefix: str,
                                                            secret: bytes) -> None:
    store = RedisKeyStore(redis_url, prefix=redis_prefix)
    record, plain = new_key("alice", secret)
    await store.create(record)
    auth = Authenticator(master_key=None, store=store, secret=secret, clock=Clock())
    admin = redis.Redis.from_url(redis_url)
    try:
        assert (await auth.authenticate(bearer(plain), "c")).alias == "alice"
        auth.invalidate()
        admin.config_resetstat()
        principals = await asyncio.gather(*(auth.authenticate(bearer(plain), "c") for _ in range(50)))
        assert {p.alias for p in principals} == {"alice"}
        stats = admin.info("commandstats")
        assert stats["cmdstat_get"]["calls"] == 1  # the version counter, read once for all fifty
        assert stats["cmdstat_hget"]["calls"] == 1  # and the record, looked up once for all fifty
    finally:
        admin.close()
        await store.close()


@pytest.mark.parametrize("fail_mode", ["closed", "open"])
async def test_an_unreachable_store_follows_fail_mode(redis_url: str, redis_prefix: str, secret: bytes,
                                                      fail_mode: str) -> None:
    good = RedisKeyStore(redis_url, prefix=redis_prefix)
    record, plain = new_key("alice", secret)
    await good.create(record)
    await good.close()
    clock = Clock()
    auth = Authenticator(master_key=MASTER, store=good, secret=secret, clock=clock,
                         fail_mode=fail_mode)  # type: ignore[arg-type]
    auth.store = dead = RedisKeyStore("redis://127.0.0.1:1/0", prefix=redis_prefix, timeout=0.2)
    try:
        error = await refused(auth, bearer(plain))
        assert (error.status, error.code, error.retry_after) == (503, "key_store_unavailable", 1.0)
        assert plain not in str(error)
        # The master key never needs the store.
        assert (await auth.authenticate(bearer(MASTER), "c")).alias == "master"
    finally:
        await dead.close()
    # With keys cached from a healthy store: closed refuses, open serves the cache.
    warm = RedisKeyStore(redis_url, prefix=redis_prefix)
    auth = Authenticator(master_key=None, store=warm, secret=secret, clock=clock,
                         fail_mode=fail_mode)  # type: ignore[arg-type]
    assert (await auth.authenticate(bearer(plain), "c")).alias == "alice"
    await warm.close()
    auth.store = dead = RedisKeyStore("redis://127.0.0.1:1/0", prefix=redis_prefix, timeout=0.2)
    clock.now += 1.0
    try:
        if fail_mode == "closed":
            assert (await refused(auth, bearer(plain))).code == "key_store_unavailable"
        else:
            assert (await auth.authenticate(bearer(plain), "c")).alias == "alice"
    finally:
        await dead.close()


def test_header_parsing() -> None:
    assert presented_key({"authorization": "bearer  k1 "}) == "k1"
    assert presented_key({"authorization": "Bearer k1", "x-api-key": "k2"}) == "k1"
    assert presented_key({"x-api-key": "k2"}) == "k2"
    assert presented_key({"x-api-key": "  "}) is None
    assert presented_key([(b"x-api-key", b"k3")]) == "k3"
    with pytest.raises(GatewayAuthError, match="Bearer <key>"):
        presented_key({"authorization": "Bearer "})


def test_repr_never_shows_the_master_key(tmp_path: Path, secret: bytes) -> None:
    auth = Authenticator(master_key=MASTER, store=None, secret=None)
    assert MASTER not in repr(auth) and "set" in repr(auth)


def test_a_key_store_without_a_secret_is_a_configuration_error(tmp_path: Path) -> None:
    from spoon_llm.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"server\.secret"):
        Authenticator(master_key=None, store=SQLiteKeyStore(tmp_path / "keys.db"), secret=None)

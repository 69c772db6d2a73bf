"""The audit log's HMAC chain on both stores: appends from many writers never fork it, ``verify`` passes on an
intact log and names the first altered, removed or reordered record; ``spoon-llm audit verify`` exits 0 / 1."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from spoon_llm.errors import ConfigurationError
from spoon_llm.server.admin.audit import AuditLog, audit_secret, verify_chain
from spoon_llm.server.admin.store import AdminStore, RedisAdminStore, SQLiteAdminStore

from ..conftest import Gateway
from .conftest import ADMIN, cli

SECRET = b"audit-test-secret-0123456789"


@pytest.fixture(params=["sqlite", "redis"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[AdminStore, AdminStore]]:
    """Two store objects over one log (two replicas' views)."""
    if request.param == "sqlite":
        pair: tuple[AdminStore, AdminStore] = (SQLiteAdminStore(tmp_path / "admin.db"),
                                               SQLiteAdminStore(tmp_path / "admin.db"))
    else:
        url, prefix = request.getfixturevalue("redis_url"), f"a{uuid.uuid4().hex[:10]}"
        pair = (RedisAdminStore(url, prefix=prefix), RedisAdminStore(url, prefix=prefix))
    try:
        yield pair
    finally:
        for store in pair:
            await store.close()


async def test_concurrent_appends_from_two_writers_form_one_chain(stores: tuple[AdminStore, AdminStore]) -> None:
    logs = [AuditLog(store, SECRET) for store in stores]
    await asyncio.gather(*(logs[i % 2].record(actor=f"a{i}", source="127.0.0.1", action="budget_changed",
                                              target="global", before={"budget_limit": i},
                                              after={"budget_limit": i + 1}) for i in range(30)))
    records = await stores[0].audit_records()
    assert [r["seq"] for r in records] == list(range(1, 31))
    assert sorted(r["actor"] for r in records) == sorted(f"a{i}" for i in range(30))
    report = await logs[1].verify()
    assert (report.ok, report.records, report.bad_seq) == (True, 30, None)
    assert not verify_chain(records, b"another-secret").ok  # the key matters


async def test_verify_names_the_first_altered_removed_or_reordered_record(
        stores: tuple[AdminStore, AdminStore]) -> None:
    log = AuditLog(stores[0], SECRET)
    for i in range(5):
        await log.record(actor="master", source=None, action="key_created", target=f"k{i}")
    records = await stores[0].audit_records()

    altered = [dict(r) for r in records]
    altered[2]["actor"] = "mallory"
    report = verify_chain(altered, SECRET)
    assert (report.ok, report.bad_seq) == (False, 3) and "altered" in (report.reason or "")

    # Re-signing an altered record without the key is impossible; with a forged mac the next link breaks.
    removed = records[:2] + records[3:]
    report = verify_chain(removed, SECRET)  # the first record out of place is named
    assert (report.ok, report.bad_seq) == (False, 4) and "expected record 3" in (report.reason or "")
    swapped = [records[0], records[2], records[1], *records[3:]]
    assert verify_chain(swapped, SECRET).bad_seq == 3
    assert verify_chain([], SECRET).ok


async def test_the_sqlite_log_refuses_updates_and_deletes(tmp_path: Path) -> None:
    store = SQLiteAdminStore(tmp_path / "admin.db")
    try:
        await AuditLog(store, SECRET).record(actor="master", source=None, action="key_revoked", target="k")
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "admin.db") as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit_log SET data = '{}'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit_log")


def test_audit_secret_comes_from_the_setting_else_the_master_key() -> None:
    assert audit_secret("explicit", "master", None) == b"explicit"
    derived = audit_secret(None, "master", None)
    assert derived != b"master" and derived == audit_secret(None, "master", "other")
    assert audit_secret(None, None, "secret") != derived
    with pytest.raises(ConfigurationError, match="audit_secret"):
        audit_secret(None, None, None)


def test_cli_verify_passes_then_fails_after_a_record_is_altered_in_the_store(
        api: httpx2.Client, admin_gateway: Gateway) -> None:
    for alias in ("cli-one", "cli-two"):
        assert api.post("/api/admin/keys", headers=ADMIN, json={"alias": alias}).status_code == 201
    config = admin_gateway.state_dir / "gateway.toml"
    intact = cli(config, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.startswith("audit log intact: ") and "admin.db" in intact.stdout

    entry = api.get("/api/admin/audit", headers=ADMIN, params={"action": "key_created"}).json()["items"][-1]
    with sqlite3.connect(admin_gateway.state_dir / "admin.db") as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")  # what someone with write access to the file can do
        data = json.loads(conn.execute("SELECT data FROM audit_log WHERE seq = ?", (entry["seq"],)).fetchone()[0])
        data["actor"] = "someone-else"
        conn.execute("UPDATE audit_log SET data = ? WHERE seq = ?", (json.dumps(data), entry["seq"]))
    broken = cli(config, "audit", "verify", "--json")
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert (report["ok"], report["bad_seq"]) == (False, entry["seq"])
    text = cli(config, "audit", "verify")
    assert text.returncode == 1 and f"record {entry['seq']}" in text.stderr
    # Put it back, so later tests of this module see an intact log again (verify re-created the trigger).
    with sqlite3.connect(admin_gateway.state_dir / "admin.db") as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET data = ? WHERE seq = ?", (json.dumps(entry), entry["seq"]))
    assert cli(config, "audit", "verify").returncode == 0


def test_cli_verify_reports_an_unusable_configuration(tmp_path: Path) -> None:
    (tmp_path / "bare.toml").write_text('[providers.openai]\napi_key = "sk-x-0123456789"\n')
    result = cli(tmp_path / "bare.toml", "audit", "verify")
    assert result.returncode == 2 and "audit_secret" in result.stderr


async def test_each_record_is_also_a_structured_log_record(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    store = SQLiteAdminStore(tmp_path / "admin.db")
    try:
        with caplog.at_level("INFO", logger="spoon_llm.server.audit"):
            await AuditLog(store, SECRET).record(actor="master", source="10.0.0.9", action="backend_switched",
                                                 target="vllm", before={"backend": "openai"},
                                                 after={"backend": "vllm"})
    finally:
        await store.close()
    (entry,) = [r for r in caplog.records if r.name == "spoon_llm.server.audit"]
    assert entry.event == "backend_switched"  # type: ignore[attr-defined]
    assert entry.getMessage().startswith("backend_switched ")
    fields = entry.fields  # type: ignore[attr-defined]
    assert (fields["actor"], fields["source"], fields["target"], fields["after"]) == (
        "master", "10.0.0.9", "vllm", {"backend": "vllm"})
    assert "mac" not in fields

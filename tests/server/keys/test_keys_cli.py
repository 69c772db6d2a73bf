"""``spoon-llm keys create|list|show|revoke`` as real subprocesses, on the SQLite file and on Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spoon_llm.server.auth import Authenticator, GatewayAuthError
from spoon_llm.server.keys import KEY_PREFIX, RedisKeyStore, SQLiteKeyStore, server_secret

SECRET = "cli-test-secret-abcdef"


def keys(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "spoon_llm", "keys", *args], env=env, capture_output=True,
                            text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def env(child_env: dict[str, str]) -> dict[str, str]:
    return {**child_env, "SPOON_LLM_SERVER_SECRET": SECRET}


async def test_create_list_show_revoke(env: dict[str, str], _state_path: Path) -> None:
    created = keys("create", "alice", "--model", "gpt-4o", "-m", "claude-*", "--budget", "12.5", "--period",
                   "monthly", "--rpm", "60", "--tpm", "10000", "--max-concurrent", "4", "--expires", "30d",
                   "--user", "alice", "--team", "research", "--meta", "cost_center=42", "--json", env=env)
    data = json.loads(created.stdout)
    plain = data.pop("key")
    assert plain.startswith(KEY_PREFIX) and len(plain) == len(KEY_PREFIX) + 43
    assert data["alias"] == "alice" and data["role"] == "user" and data["status"] == "active"
    assert data["models"] == ["gpt-4o", "claude-*"] and data["budget_limit"] == 12.5
    assert (data["budget_period"], data["rpm"], data["tpm"], data["max_concurrent"]) == ("monthly", 60, 10000, 4)
    assert data["metadata"] == {"user": "alice", "team": "research", "cost_center": "42"}
    assert data["expires_at"] == pytest.approx(time.time() + 30 * 86400, abs=120)
    assert "key_hash" not in data and data["key_prefix"] == plain[:len(KEY_PREFIX) + 4] + "…"

    text = keys("create", "ops", "--role", "admin", env=env)
    assert text.stdout.splitlines()[0] == "created virtual key 'ops' (admin)"
    ops_key = text.stdout.splitlines()[1]
    assert ops_key.startswith(KEY_PREFIX) and "shown only this once" in text.stderr

    listed = keys("list", env=env).stdout
    shown = keys("show", "alice", env=env).stdout
    as_json = keys("list", "--json", env=env).stdout
    for output in (listed, shown, as_json):
        assert plain not in output and ops_key not in output
    assert "alice" in listed and "ops" in listed and plain[:len(KEY_PREFIX) + 4] + "…" in listed
    assert [r["alias"] for r in json.loads(as_json)] == ["alice", "ops"]
    assert "budget:         $12.5 monthly" in shown and "metadata:       cost_center=42, team=research, user=alice" \
        in shown

    # The gateway's authenticator, on the same file, accepts the printed key and refuses it once revoked.
    store = SQLiteKeyStore(_state_path.with_name("keys.db"))
    auth = Authenticator(master_key=None, store=store, secret=SECRET.encode(), refresh=0.0)
    try:
        principal = await auth.authenticate({"authorization": f"Bearer {plain}"}, "127.0.0.1")
        assert (principal.alias, dict(principal.tags)["team"]) == ("alice", "research")
        revoked = keys("revoke", "alice", env=env)
        assert revoked.stdout.startswith("revoked virtual key 'alice' at ")
        with pytest.raises(GatewayAuthError, match="'alice' was revoked"):
            await auth.authenticate({"authorization": f"Bearer {plain}"}, "127.0.0.1")
    finally:
        await store.close()
    assert json.loads(keys("show", "alice", "--json", env=env).stdout)["status"] == "revoked"
    assert [r["alias"] for r in json.loads(keys("list", "--active", "--json", env=env).stdout)] == ["ops"]
    # Neither the plain keys nor their random parts are anywhere in the store's files.
    data_bytes = b"".join(p.read_bytes() for p in _state_path.parent.iterdir())
    for key in (plain, ops_key):
        assert key[len(KEY_PREFIX):].encode() not in data_bytes


def test_errors_exit_1_with_the_reason(env: dict[str, str], child_env: dict[str, str]) -> None:
    keys("create", "alice", env=env)
    cases = [
        (("create", "alice"), env, "'alice' already exists"),
        (("show", "bob"), env, "no virtual key named 'bob'"),
        (("revoke", "bob"), env, "no virtual key named 'bob'"),
        (("create", "bob", "--expires", "soon"), env, "--expires 'soon' is neither a duration"),
        (("create", "bob", "--rpm", "0"), env, "'rpm' must be > 0"),
        (("create", "bob", "--period", "weekly", "--budget", "1"), env, "budget_period must be total"),
        (("create", "bob", "--meta", "novalue"), env, "--meta 'novalue' must read key=value"),
        (("create", "bob"), child_env, "set [server] secret (or SPOON_LLM_SERVER_SECRET)"),
    ]
    for args, environment, message in cases:
        result = keys(*args, env=environment, check=False)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


async def test_the_config_file_names_the_store_and_the_secret(tmp_path: Path, child_env: dict[str, str],
                                                             redis_url: str, redis_prefix: str) -> None:
    # [server] master_key only: the hashing secret is derived from it; [state] names Redis.
    master = "sk-master-cli-0123456789"
    config = tmp_path / "gateway.toml"
    config.write_text(f'[server]\nmaster_key = "{master}"\n\n'
                      f'[state]\nbackend = "redis"\nurl = "{redis_url}"\nkey_prefix = "{redis_prefix}"\n')
    created = json.loads(keys("create", "carol", "--config", str(config), "--json", env=child_env).stdout)
    store = RedisKeyStore(redis_url, prefix=redis_prefix)
    auth = Authenticator(master_key=master, store=store, secret=server_secret(None, master))
    try:
        assert (await auth.authenticate({"x-api-key": created["key"]}, None)).alias == "carol"
    finally:
        await store.close()
    listed = json.loads(keys("list", "--config", str(config), "--json", env=child_env).stdout)
    assert [r["alias"] for r in listed] == ["carol"]
    assert not (tmp_path / "state").exists()  # nothing went to the SQLite file


def test_a_misspelt_server_setting_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nsecrett = "x"\n')
    result = keys("list", "--config", str(config), env=env, check=False)
    assert result.returncode == 1 and "secrett" in result.stderr


async def test_show_reports_the_spend_the_gateway_recorded(env: dict[str, str]) -> None:
    from spoon_llm.config import ConfigurationManager
    from spoon_llm.server.auth import Principal
    from spoon_llm.server.guard import build_guard

    plain = json.loads(keys("create", "alice", "--budget", "2", "--period", "monthly", "--json", env=env).stdout)
    config = ConfigurationManager(None, env={}).config
    key_store = SQLiteKeyStore(Path(env["SPOON_LLM_STATE_PATH"]).with_name("keys.db"))
    record = await key_store.require("alice")
    guard = build_guard(config, key_store)  # what the gateway builds: spend goes to the SQLite state file
    assert guard is not None
    try:
        who = Principal(alias="alice", role="user", models=None, tags={}, key_id=record.id, key=record)
        await (await guard.admit(who, "m", estimate_usd=0.5)).release(0.25)
        held = await guard.admit(who, "m", estimate_usd=0.5)  # in flight while the command looks
        shown = json.loads(keys("show", "alice", "--json", env=env).stdout)
        assert plain["key"] not in json.dumps(shown)
        assert shown["spend"]["spent"] == 0.25 and shown["spend"]["reserved"] == 0.5
        assert shown["spend"]["limit"] == 2.0 and shown["spend"]["period"] == "monthly"
        await held.release(0.5)
    finally:
        await guard.close()
        await key_store.close()
    text = keys("show", "alice", env=env).stdout
    assert "spent:          $0.75 of $2" in text and "$1.25 left" in text

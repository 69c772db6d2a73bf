"""Budgets and the usage ledger: namespaced per application, read back after a restart, truthful refusals."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.costs.namespace import resolve_namespace
from spoon_llm.errors import BudgetExceededError
from spoon_llm.manager import LLMManager
from spoon_llm.testing import ProviderSimulator, Reply, Usage

from .conftest import KEY

WORKER = Path(__file__).with_name("_restart_worker.py")
# $100 per million output tokens, input free: 100 output tokens cost $0.01.
PRICING = '[pricing."priced-model"]\ninput_per_1m = 0.0\noutput_per_1m = 100.0\n'


def write_config(folder: Path, sim: ProviderSimulator, limit: float, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spoon_llm.toml"
    path.write_text(f'{extra}[providers.openai]\napi_key = "{KEY}"\nbase_url = "{sim.openai_base_url}"\n'
                    f'model = "priced-model"\n\n[budget]\nlimit = {limit}\n\n[state]\nledger = "sqlite"\n\n'
                    + PRICING)
    return path


async def run_worker(config: Path, requests: int, max_tokens: int = 100) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error", str(WORKER), str(config), str(requests), str(max_tokens),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_a_restart_reads_spend_back_and_status_tracker_and_budget_agree(
        sim: ProviderSimulator, tmp_path: Path) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=5, output_tokens=100)))
    config = write_config(tmp_path / "app", sim, limit=0.035)
    first = await run_worker(config, 3)
    assert first["ok"] == 3 and first["start_budget"]["spent"] == 0
    assert first["end_budget"]["spent"] == pytest.approx(0.03) and first["end_cost"] == pytest.approx(0.03)

    second = await run_worker(config, 1)  # a new process on the same file and SQLite store
    assert second["start_budget"]["spent"] == pytest.approx(0.03)        # status says what was spent
    assert second["start_cost"] == pytest.approx(0.03) and second["start_requests"] == 3  # tracker totals too
    assert second["ok"] == 0 and len(second["refusals"]) == 1
    refusal = second["refusals"][0]
    assert refusal["spent"] == pytest.approx(0.03) and refusal["reserved"] == 0 and refusal["limit"] == 0.035
    assert "spent 0.03, reserved 0 by requests in flight" in refusal["message"]
    # 0.005 is left: the reservation is what exceeds, and the error says which max_tokens fits.
    assert "the reservation, not the spend, is what exceeds the budget" in refusal["message"]
    assert "pass max_tokens=50 or less" in refusal["message"]
    assert sim.request_count == 3


async def test_two_applications_on_one_machine_have_their_own_budgets(
        sim: ProviderSimulator, tmp_path: Path) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=5, output_tokens=100)))
    first = await run_worker(write_config(tmp_path / "app-one", sim, limit=0.02), 3)
    assert first["ok"] == 2 and len(first["refusals"]) == 1
    # Same default SQLite file (SPOON_LLM_STATE_PATH), another application: its first request is served.
    second = await run_worker(write_config(tmp_path / "app-two", sim, limit=0.02), 1)
    assert second["ok"] == 1 and second["start_budget"]["spent"] == 0 and second["start_cost"] == 0


def test_the_namespace_comes_from_the_setting_or_the_file_location(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "spoon_llm.toml").write_text("")
    a = resolve_namespace(ConfigurationManager(tmp_path / "a" / "spoon_llm.toml", env={}))
    b = resolve_namespace(ConfigurationManager(tmp_path / "b" / "spoon_llm.toml", env={}))
    assert a != b and a.startswith("a-") and b.startswith("b-")
    assert resolve_namespace(ConfigurationManager(tmp_path / "a" / "spoon_llm.toml", env={})) == a  # stable
    assert resolve_namespace(ConfigurationManager({"namespace": "billing"}, env={})) == "billing"
    assert resolve_namespace(ConfigurationManager({}, env={"SPOON_LLM_NAMESPACE": "etl"})) == "etl"


async def test_refusal_without_max_tokens_names_the_default_and_what_fits(sim: ProviderSimulator) -> None:
    config = ConfigurationManager({"providers": {"openai": {"api_key": KEY, "base_url": sim.openai_base_url,
                                                            "model": "priced-model"}},
                                   "pricing": {"priced-model": {"input_per_1m": 0.0, "output_per_1m": 100.0}},
                                   "budget": {"limit": 0.01}, "state": {"ledger": "memory"}}, env={})
    async with LLMManager(config) as manager:
        with pytest.raises(BudgetExceededError) as caught:
            await manager.chat("hi")  # 4096 output tokens reserved by default: $0.4096 > $0.01
        response = await manager.chat("hi", max_tokens=100)
    message = str(caught.value)
    assert "spent 0, reserved 0" in message and "it assumes 4096 output tokens" in message
    assert "no max_tokens was given" in message and "pass max_tokens=100 or less" in message
    assert caught.value.requested == pytest.approx(0.4096) and response.content

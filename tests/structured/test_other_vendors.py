"""Typed output on every other vendor through the simulator: each gets its own mechanism and the parsed instance."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from spoon_llm import ConfigurationManager, LLMManager
from spoon_llm.testing import ProviderSimulator, Reply

COMPATIBLE = ("mistral", "groq", "xai", "cerebras", "together", "fireworks")


class Item(BaseModel):
    name: str
    tags: list[str] = []


class Order(BaseModel):
    id: int
    items: list[Item]


ORDER = {"id": 7, "items": [{"name": "spoon", "tags": ["steel"]}]}


def _section(sim: ProviderSimulator, vendor: str) -> dict[str, Any]:
    if vendor in COMPATIBLE:
        return {"type": vendor, "api_key": f"{vendor}-key-123456789", "model": "m-1",
                "base_url": sim.compatible_base_url(vendor)}
    if vendor == "azure":
        return {"type": "azure", "api_key": "azure-key-123456789", "model": "gpt-4o", "base_url": sim.azure_endpoint,
                "api_version": "2024-10-21"}
    if vendor == "deepseek":
        return {"type": "deepseek", "api_key": "sk-deepseek-123456789", "base_url": sim.deepseek_base_url}
    if vendor == "openai_responses":
        return {"type": "openai_responses", "api_key": "sk-test-responses-123456789", "model": "gpt-4.1",
                "base_url": sim.openai_base_url}
    if vendor == "bedrock":
        return {"type": "bedrock", "base_url": sim.base_url, "aws_region": "us-east-1",
                "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "model": "amazon.nova-pro-v1:0"}
    if vendor == "vertex_anthropic":
        return {"type": "vertex_anthropic", "base_url": sim.vertex_base_url, "model": "claude-sonnet-4-5@20250929",
                "project": "test-project", "vertex_location": "us-east5",
                "vertex_access_token": "ya29.test-token-0000000001"}
    assert vendor == "vertex"
    return {"type": "vertex", "base_url": sim.vertex_base_url, "model": "gemini-2.5-flash", "project": "test-project",
            "vertex_location": "us-central1", "vertex_access_token": "ya29.test-token-0000000000"}


@pytest.mark.parametrize("vendor", [*COMPATIBLE, "azure", "deepseek", "openai_responses", "bedrock", "vertex",
                                    "vertex_anthropic"])
async def test_typed_output_on_every_vendor(sim: ProviderSimulator, vendor: str) -> None:
    sim.script(vendor, Reply(text=json.dumps(ORDER)))
    manager = LLMManager(ConfigurationManager({"providers": {vendor: _section(sim, vendor)}}, env={}))
    try:
        response = await manager.chat("Order?", response_format=Order)
    finally:
        await manager.cleanup()
    assert response.parsed == Order.model_validate(ORDER)
    body = sim.last_request(vendor).body
    if vendor == "deepseek":  # json_object only: the schema travels as an instruction
        assert body["response_format"] == {"type": "json_object"}
        assert body["messages"][0]["role"] == "system" and '"Item"' in body["messages"][0]["content"]
    elif vendor == "openai_responses":
        fmt = body["text"]["format"]
        assert (fmt["type"], fmt["name"], fmt["strict"]) == ("json_schema", "Order", True)
    elif vendor == "bedrock":
        structure = body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
        assert structure["name"] == "Order"
        assert json.loads(structure["schema"])["additionalProperties"] is False
    elif vendor == "vertex":
        assert body["generationConfig"]["responseJsonSchema"] == Order.model_json_schema()
    elif vendor == "vertex_anthropic":
        schema = body["output_config"]["format"]["schema"]
        assert schema["additionalProperties"] is False and schema["$defs"]["Item"]["additionalProperties"] is False
    else:
        spec = body["response_format"]["json_schema"]
        assert (spec["name"], spec["strict"]) == ("Order", True)
        assert spec["schema"]["$defs"]["Item"]["required"] == ["name", "tags"]


class Loose(BaseModel):
    labels: dict[str, int]


async def test_schema_outside_strict_and_anthropic_subsets(sim: ProviderSimulator) -> None:
    # A free-form map: OpenAI gets strict=false, Anthropic the schema by instruction (validated on arrival).
    sim.script(None, Reply(text='{"labels": {"a": 1}}'))
    manager = LLMManager(ConfigurationManager({"providers": {
        "openai": {"api_key": "sk-test-openai-123456789", "base_url": sim.openai_base_url, "model": "gpt-4o"},
        "anthropic": {"api_key": "sk-ant-test-123456789", "base_url": sim.anthropic_base_url,
                      "model": "claude-sonnet-4-5"},
    }}, env={}))
    try:
        assert (await manager.chat("x", provider="openai", response_format=Loose)).parsed == Loose(labels={"a": 1})
        assert (await manager.chat("x", provider="anthropic", response_format=Loose)).parsed == Loose(
            labels={"a": 1})
    finally:
        await manager.cleanup()
    assert sim.last_request("openai").body["response_format"]["json_schema"]["strict"] is False
    anthropic = sim.last_request("anthropic").body
    assert "output_config" not in anthropic
    assert "JSON schema" in json.dumps(anthropic["system"])


class Node(BaseModel):
    label: str
    children: list[Node] = []


async def test_recursive_schema_is_asked_by_instruction_on_anthropic(sim: ProviderSimulator) -> None:
    sim.script("anthropic", Reply(text='{"label": "root", "children": [{"label": "leaf", "children": []}]}'))
    manager = LLMManager(ConfigurationManager({"providers": {"anthropic": {
        "api_key": "sk-ant-test-123456789", "base_url": sim.anthropic_base_url, "model": "claude-sonnet-4-5"}}},
        env={}))
    try:
        response = await manager.chat("Tree?", response_format=Node)
    finally:
        await manager.cleanup()
    assert response.parsed == Node(label="root", children=[Node(label="leaf")])
    body = sim.last_request("anthropic").body
    assert "output_config" not in body and "#/$defs/Node" in json.dumps(body["system"])

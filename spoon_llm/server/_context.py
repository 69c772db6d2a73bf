"""What one gateway request carries through the routes, and the table of model names the gateway serves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config.manager import ConfigurationManager
from ..types import LLMResponseChunk
from .auth import Principal

__all__ = ["Call", "ClientGone", "ModelEntry", "Receive", "Scope", "Send", "model_table"]

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model name clients may ask for: what the manager is called with, and the backend family behind it."""

    name: str
    call_model: str
    family: str
    owner: str
    listed: bool = True
    #: The model of the first target (what a budget reservation is priced at).
    price_model: str | None = None


def model_table(config: ConfigurationManager) -> dict[str, ModelEntry]:
    """Every name the gateway serves: aliases, then each provider's configured models (plain and ``provider/m``)."""
    settings = config.config
    table: dict[str, ModelEntry] = {}
    configured = config.list_configured_providers()
    for alias, route in settings.models.items():
        target = route.targets[0] if route.targets else None
        first = target.provider if target is not None else ""
        section = settings.providers.get(first)
        model = (target.model if target is not None else None) or (section.model if section else None)
        table[alias] = ModelEntry(alias, alias, section.provider_type if section else first, "spoon-llm",
                                  price_model=model)
    for name in configured:
        section = settings.providers[name]
        models = [section.model, *section.models, *(k.model for k in section.api_keys), *(section.key_models or ())]
        for model in dict.fromkeys(m for m in models if m):
            qualified = f"{name}/{model}"
            table.setdefault(model, ModelEntry(model, qualified, section.provider_type, name, price_model=model))
            table.setdefault(qualified, ModelEntry(qualified, qualified, section.provider_type, name, listed=False,
                                                   price_model=model))
    return table


@dataclass(slots=True)
class Call:
    """One inference request as the handlers see it, and what the log and metrics learn about it."""

    scope: Scope
    receive: Receive
    send: Send
    route: str
    family: str
    request_id: str
    principal: Principal
    deadline: float | None
    body_size: int = 0
    disconnected: bool = False
    finished: bool = False
    stream_error: int | None = None
    status: int = 200
    model: str = ""
    provider: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    #: The attempt trace (``deployment:ok,deployment:429``), as sent in ``x-spoon-attempts``.
    attempts: str = ""
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: Streams: characters of text and reasoning sent, and the closing chunk once it arrived.
    delivered: int = 0
    streaming: bool = False  # the event stream's headers are out: no other answer can follow
    final: LLMResponseChunk | None = None
    #: The task that watches for the client's disconnect (held so it cannot be collected while it waits).
    watcher: Any = None


class ClientGone(Exception):
    """The client disconnected while its request body was being read."""

"""The ``vllm`` provider: a self-hosted vLLM server through its OpenAI-compatible API.

The endpoint comes from ``base_url`` or ``VLLM_ENDPOINT`` (``http://localhost:8000/v1`` by default; a bare
``host:port`` gets ``/v1``). No key is required (send one with ``api_key`` when the server was started with
``--api-key``). With no model configured, the first model the server lists is used. ``health_check`` asks
``GET /health``. Cost is compute time: with ``hourly_rate`` (or ``VLLM_HOURLY_RATE``) set, each answer costs
``hourly_rate * duration / 3600`` -- the wall-clock share of the server, an upper bound when requests overlap.
Set ``options.legacy_completions = true`` to send ``completion`` to ``/v1/completions``.
"""

from __future__ import annotations

import os
from typing import ClassVar
from urllib.parse import urlsplit

from ..errors import ConfigurationError, ResponseParsingError
from ..types import CostInfo, LLMResponse
from .openai._provider import OpenAICompatibleProvider, builtin_capabilities

__all__ = ["VLLMProvider"]


class VLLMProvider(OpenAICompatibleProvider):
    """vLLM."""

    provider_name = "vllm"
    capabilities = builtin_capabilities("vllm")
    default_base_url: ClassVar[str | None] = "http://localhost:8000/v1"
    default_model: ClassVar[str | None] = None
    requires_api_key: ClassVar[bool] = False

    def _resolve_base_url(self) -> str | None:
        url = self.config.base_url or os.environ.get("VLLM_ENDPOINT") or self.default_base_url
        if url and urlsplit(url).path in ("", "/"):
            url = url.rstrip("/") + "/v1"
        return url

    @property
    def root_url(self) -> str:
        """The server root (the base URL without its ``/v1``), where ``/health`` lives."""
        url = (self._resolve_base_url() or "").rstrip("/")
        return url[:-3] if url.endswith("/v1") else url

    def _hourly_rate(self) -> float | None:
        rate = self.config.hourly_rate
        if rate is None:
            raw = os.environ.get("VLLM_HOURLY_RATE")
            try:
                rate = float(raw) if raw else None
            except ValueError:
                raise ConfigurationError(f"VLLM_HOURLY_RATE={raw!r} is not a number", provider="vllm",
                                         key="providers.vllm.hourly_rate") from None
        return rate

    async def _setup(self) -> None:
        await super()._setup()
        self._rate = self._hourly_rate()

    def _finish(self, response: LLMResponse) -> LLMResponse:
        if self._rate is not None and response.cost is None:
            total = self._rate * response.duration / 3600.0
            response.cost = CostInfo(total_cost=total, output_cost=total, source="hourly rate")
        return response

    async def _discover_model(self) -> str:
        """The first model the server serves (vLLM usually serves exactly one)."""
        assert self._transport is not None
        data = self._decode(await self._transport.get("models", None, None), "")
        models = data.get("data") if isinstance(data, dict) else None
        if not models or not isinstance(models[0], dict) or not models[0].get("id"):
            raise ResponseParsingError("the vLLM server lists no model; set model in [providers.vllm]",
                                       provider=self._label)
        return str(models[0]["id"])

    async def health_check(self) -> bool:
        """True when ``GET {root}/health`` answers 200 (no tokens spent)."""
        transport = self._transport
        if not self._initialized or transport is None:
            return False
        try:
            status = await transport.probe(f"{self.root_url}/health", min(self.config.timeout, 10.0))
        except Exception as exc:
            self.last_health_error = exc
            return False
        if status is None:  # an injected SDK client: no bare HTTP client to probe with
            return await super().health_check()
        ok = status == 200
        self.last_health_error = None if ok else RuntimeError(f"/health answered {status}")
        return ok

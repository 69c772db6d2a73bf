"""Pydantic models for the whole configuration: providers, keys, model aliases, pricing, retries and budgets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..server._settings import ServerSettings
from ._older import older_provider_layout

__all__ = [
    "BudgetConfig",
    "Deployment",
    "KeyConfig",
    "ModelTarget",
    "PricingOverride",
    "ProviderConfig",
    "RateLimitConfig",
    "RetryConfig",
    "RouteConfig",
    "SpoonConfig",
    "StateConfig",
]


def _whole_number(value: Any) -> int | None:
    """``value`` as an int when it is one (an int, an integral float, a numeric string); booleans are not."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, float):
            return int(value) if value.is_integer() else None
        return int(value)
    except (TypeError, ValueError):
        return None


def _real_number(value: Any) -> float | None:
    """``value`` as a float when it is a number or a numeric string; booleans are not."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _number_check(parse: Callable[[Any], Any], accept: Callable[[Any], bool], code: str,
                  message: str) -> Callable[[Any], Any]:
    """A before-validator: ``None`` passes (unset), anything else must parse and be accepted."""

    def validate(value: Any) -> Any:
        if value is None:
            return None
        number = parse(value)
        if number is None or not accept(number):
            raise PydanticCustomError(code, message)
        return number

    return validate


_positive_int = _number_check(_whole_number, lambda n: n > 0, "positive_int", "expected a positive integer")
_non_negative_int = _number_check(_whole_number, lambda n: n >= 0, "non_negative_int",
                                  "expected a whole number >= 0")
_positive_number = _number_check(_real_number, lambda n: n > 0, "positive_number",
                                 "expected a positive number of seconds")
_temperature = _number_check(_real_number, lambda n: 0.0 <= n <= 2.0, "temperature", "expected a number from 0 to 2")


PositiveInt = Annotated[int, BeforeValidator(_positive_int)]
NonNegativeInt = Annotated[int, BeforeValidator(_non_negative_int)]
Seconds = Annotated[float, BeforeValidator(_positive_number)]
Temperature = Annotated[float, BeforeValidator(_temperature)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=False, defer_build=True)


class KeyConfig(_Strict):
    """One API key of a provider, with the model and limits that go with it. Each key is one deployment."""

    api_key: SecretStr
    alias: str | None = None
    model: str | None = None
    base_url: str | None = None
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    input_tpm: PositiveInt | None = None
    output_tpm: PositiveInt | None = None
    #: Share of traffic under weighted or random balancing (0: a standby, tried after the others).
    weight: float = Field(default=1.0, ge=0)


class Deployment(BaseModel):
    """One configured way to reach a model: provider + base URL + key + model + its own limits.

    ``key_alias`` names the key in logs and metrics; the key itself is a ``SecretStr`` and is never printed.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str
    provider: str
    provider_type: str
    model: str | None
    base_url: str | None
    api_key: SecretStr | None = Field(default=None, repr=False)
    key_alias: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    input_tpm: int | None = None
    output_tpm: int | None = None
    weight: float = 1.0


class ProviderConfig(_Strict):
    """Settings of one provider section (``[providers.<name>]``).

    ``type`` names the registered provider class; it defaults to the section name, so ``[providers.openai]``
    uses the ``openai`` provider while ``[providers.my-vllm] type = "openai_compatible"`` is a purely configured
    endpoint. Several keys (``api_keys``) make several deployments of one provider.
    """

    name: str = ""
    type: str | None = None
    enabled: bool = True
    api_key: SecretStr | None = None
    api_keys: list[KeyConfig] = Field(default_factory=list)
    key_models: list[str] | None = None
    key_rpm: list[PositiveInt] | None = None
    key_tpm: list[PositiveInt] | None = None
    base_url: str | None = None
    model: str | None = None
    models: list[str] = Field(default_factory=list)
    max_tokens: PositiveInt | None = None
    temperature: Temperature | None = None
    top_p: float | None = None
    timeout: Seconds = 60.0
    connect_timeout: Seconds | None = None
    #: Streams: seconds to wait for the first chunk, then between chunks (default: ``timeout``); a late first
    #: token is a retryable timeout that falls back while nothing has reached the caller.
    first_token_timeout: Seconds | None = None
    stream_idle_timeout: Seconds | None = None
    #: Whether a stream cut mid-answer may be resumed here from the delivered text as an assistant prefill
    #: (default: as the provider type declares; Anthropic does). Otherwise the answer restarts cleanly.
    assistant_prefill: bool | None = None
    #: Per-model overrides of ``assistant_prefill`` (names or fnmatch patterns such as ``"claude-3-*"``); a model
    #: may not be in both (see spoon_llm.routing.resume).
    prefill_models: list[str] = Field(default_factory=list)
    no_prefill_models: list[str] = Field(default_factory=list)
    max_retries: NonNegativeInt = 3
    max_connections: PositiveInt = 100
    max_keepalive_connections: PositiveInt = 20
    keepalive_expiry: Seconds = 5.0
    #: ``false`` closes every connection after its request (older setting; ``connection_pool_size`` is read as
    #: ``max_connections``).
    keep_alive: bool = True
    #: First backoff before retrying this provider (default: ``[retry] initial_backoff``); ``max_retries`` set
    #: here overrides ``[retry] max_retries`` for this provider.
    retry_delay: Seconds | None = None
    #: Most requests in flight to this provider at once; more wait for a free slot.
    max_concurrent_requests: PositiveInt | None = None
    #: Seconds a key the provider rejected (401/403) stays out of rotation before one probe request tries it again.
    auth_cooldown: float = Field(default=300.0, ge=0)
    #: How requests travel: ``native`` (our aiohttp client; the SDK when aiohttp is not installed), ``sdk`` (the
    #: vendor SDK on httpx2) or ``aiohttp`` (the OpenAI SDK on its aiohttp client). See ``spoon_llm.transport``.
    transport: Literal["sdk", "aiohttp", "native"] = "native"
    extra_headers: dict[str, str] = Field(default_factory=dict)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    #: Requests per hour, input tokens per minute, output tokens per minute (each deployment of this section).
    rph: PositiveInt | None = None
    input_tpm: PositiveInt | None = None
    output_tpm: PositiveInt | None = None
    #: Most requests (token-bucket strategy: also tokens, scaled) admitted at once; defaults to the limit itself.
    burst: PositiveInt | None = None
    #: Share of traffic under weighted or random balancing (0: a standby, tried after the others).
    weight: float = Field(default=1.0, ge=0)
    organization: str | None = None
    project: str | None = None
    api_version: str | None = None
    http_referer: str | None = None
    x_title: str | None = None
    hourly_rate: float | None = None
    context_window: PositiveInt | None = None
    # openai: which OpenAI API carries chat (``responses`` = the Responses API, as the openai_responses provider)
    api: Literal["chat", "responses"] = "chat"
    # response cache (older names kept): override ``[cache] enabled`` / ``ttl`` for this section.
    enable_caching: bool | None = None
    cache_ttl: float | None = Field(default=None, ge=0)
    # azure: model -> deployment names, Microsoft Entra ID auth (a static token, or azure-identity's chain)
    azure_deployments: dict[str, str] = Field(default_factory=dict)
    azure_ad_token: SecretStr | None = Field(default=None, repr=False)
    azure_entra_id: bool = False
    # vertex: Google Cloud region (``global``, ``us-central1``...; with ``project``) and a fixed OAuth bearer token
    # (else ``options.token_provider`` or Application Default Credentials); see providers/vertex
    vertex_location: str | None = None
    vertex_access_token: SecretStr | None = Field(default=None, repr=False)
    #: Largest single server-sent event accepted, in bytes (a bigger one ends the stream with a
    #: ``ResponseTooLargeError``); 32 MiB holds real multimodal answers (a base64 image of ~24 MB).
    max_event_bytes: PositiveInt = 32 * 1024 * 1024
    #: Largest streamed answer accepted, in bytes, all events together.
    max_stream_bytes: PositiveInt = 512 * 1024 * 1024
    # bedrock: region and AWS credentials (else the environment / botocore's chain), API flavour (see providers/bedrock)
    aws_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = Field(default=None, repr=False)
    aws_session_token: SecretStr | None = Field(default=None, repr=False)
    aws_profile: str | None = None
    bedrock_api: Literal["converse", "invoke"] = "converse"
    #: Settings for third-party providers that our schema does not know.
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _drop_unset_keys(cls, data: Any) -> Any:
        # Keys whose ${VAR} is unset (or that were placeholders) arrive as None: drop them together with their
        # entries in the per-key lists, as long as those lists line up (otherwise the check below reports it).
        data = older_provider_layout(data)
        if not isinstance(data, dict) or not isinstance(data.get("api_keys"), list):
            return data
        keys = data["api_keys"]
        if None not in keys:
            return data
        keep = [i for i, key in enumerate(keys) if key is not None]
        data = dict(data)
        for field in ("key_models", "key_rpm", "key_tpm"):
            values = data.get(field)
            if isinstance(values, list) and len(values) == len(keys):
                data[field] = [values[i] for i in keep] if keep else None
        data["api_keys"] = [keys[i] for i in keep]
        return data

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys_from_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"api_key": v} if isinstance(v, (str, SecretStr)) else v for v in value]
        return value

    @model_validator(mode="after")
    def _api_only_where_understood(self) -> ProviderConfig:
        if self.api == "responses" and (self.type or self.name) not in ("openai", "openai_responses", "azure"):
            raise PydanticCustomError(
                "api_choice",
                'api = "responses" is understood by the openai and azure providers only; for another endpoint that '
                'speaks the Responses API use type = "openai_responses" with its base_url',
            )
        return self

    @model_validator(mode="after")
    def _prefill_lists_agree(self) -> ProviderConfig:
        both = sorted(set(self.prefill_models) & set(self.no_prefill_models))
        if both:
            raise PydanticCustomError(
                "prefill_lists",
                "{models} is in both prefill_models and no_prefill_models; keep each model in one of them",
                {"models": ", ".join(repr(m) for m in both)},
            )
        return self

    @model_validator(mode="after")
    def _line_up_key_lists(self) -> ProviderConfig:
        count = len(self.api_keys)
        for field in ("key_models", "key_rpm", "key_tpm"):
            values = getattr(self, field)
            if values is None:
                continue
            if len(values) != count:
                raise PydanticCustomError(
                    "key_lists",
                    "api_keys has {keys} entries but {field} has {n}; give exactly one {what} per key "
                    "(or leave {field} out)",
                    {"keys": count, "field": field, "n": len(values), "what": field[4:].rstrip("s")},
                )
        return self

    @property
    def provider_type(self) -> str:
        """The registered provider this section uses."""
        return self.type or self.name

    def deployments(self) -> list[Deployment]:
        """One :class:`Deployment` per API key (or one for the provider when it has a single key or none)."""
        if not self.api_keys:
            return [
                Deployment(
                    name=self.name,
                    provider=self.name,
                    provider_type=self.provider_type,
                    model=self.model,
                    base_url=self.base_url,
                    api_key=self.api_key,
                    key_alias="default" if self.api_key else None,
                    rpm=self.rpm,
                    tpm=self.tpm,
                    input_tpm=self.input_tpm,
                    output_tpm=self.output_tpm,
                    weight=self.weight,
                )
            ]
        out = []
        for i, key in enumerate(self.api_keys):
            alias = key.alias or f"key{i + 1}"
            out.append(
                Deployment(
                    name=f"{self.name}#{alias}",
                    provider=self.name,
                    provider_type=self.provider_type,
                    model=key.model or (self.key_models[i] if self.key_models else None) or self.model,
                    base_url=key.base_url or self.base_url,
                    api_key=key.api_key,
                    key_alias=alias,
                    rpm=key.rpm or (self.key_rpm[i] if self.key_rpm else None) or self.rpm,
                    tpm=key.tpm or (self.key_tpm[i] if self.key_tpm else None) or self.tpm,
                    input_tpm=key.input_tpm or self.input_tpm,
                    output_tpm=key.output_tpm or self.output_tpm,
                    weight=key.weight,
                )
            )
        return out

    def primary_api_key(self) -> str | None:
        """The key a single-client provider should use: ``api_key``, else the first of ``api_keys``."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_keys:
            return self.api_keys[0].api_key.get_secret_value()
        return None

    def for_deployment(self, deployment: Deployment) -> ProviderConfig:
        """A copy of this section narrowed to one deployment's key, model and base URL."""
        return self.model_copy(
            update={
                "api_key": deployment.api_key,
                "api_keys": [],
                "key_models": None,
                "key_rpm": None,
                "key_tpm": None,
                "model": deployment.model,
                "base_url": deployment.base_url,
                "rpm": deployment.rpm,
                "tpm": deployment.tpm,
                "input_tpm": deployment.input_tpm,
                "output_tpm": deployment.output_tpm,
            }
        )

    # -- read as a mapping, as providers written for the older API do (``config["api_key"]``) --------------------

    def __getitem__(self, key: str) -> Any:
        """A setting by name; secrets come back as plain strings, unknown names are looked up in ``options``.

        An unset setting (``None``) is missing, as an absent key of the older API's dicts was: ``KeyError``.
        """
        if key in type(self).model_fields:
            value = getattr(self, key)
            if value is None:
                raise KeyError(key)
            return value.get_secret_value() if isinstance(value, SecretStr) else value
        if key in self.options:
            return self.options[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """``config[key]``, or ``default`` when it is missing or unset (``None``)."""
        try:
            value = self[key]
        except KeyError:
            return default
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def keys(self) -> list[str]:
        """The names of the settings that are set (fields, then ``options``)."""
        fields = type(self).model_fields
        return [*(k for k in fields if getattr(self, k) is not None), *(k for k in self.options if k not in fields)]

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` pairs as ``config[name]`` returns them."""
        return ((key, self[key]) for key in self.keys())

    def values(self) -> Iterator[Any]:
        """The values as ``config[name]`` returns them."""
        return (self[key] for key in self.keys())


class ModelTarget(_Strict):
    """A provider (section name) and, optionally, the model to ask it for."""

    provider: str
    model: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        # "anthropic/claude-sonnet-4-5" -> provider "anthropic", model "claude-sonnet-4-5";
        # the model part may itself contain slashes (OpenRouter ids).
        if isinstance(value, str):
            provider, _, model = value.partition("/")
            return {"provider": provider, "model": model or None}
        return value

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}" if self.model else self.provider


class RouteConfig(_Strict):
    """A model alias or tier (``sonnet``, ``fast``): targets to balance over, then what to fall back to.

    Written in TOML as a string (``fast = "openai/gpt-4.1-mini"``), a list of targets, or a table with
    ``targets``, ``fallback`` and ``context_fallback`` (the route to use when a prompt overflows the window).
    """

    targets: list[ModelTarget] = Field(min_length=1)
    fallback: list[str] = Field(default_factory=list)
    context_fallback: str | None = None
    strategy: Literal["round_robin", "weighted", "random", "least_inflight", "latency"] | None = None
    #: Caps in seconds for requests on this route, on top of the provider's and the call's (the tightest wins,
    #: see spoon_llm.routing.timeouts): ``timeout`` each attempt made for the route (its limiter wait and
    #: provider set-up included), ``first_token_timeout`` / ``stream_idle_timeout`` a stream's waits,
    #: ``request_timeout`` a whole request that starts on the route.
    timeout: Seconds | None = None
    first_token_timeout: Seconds | None = None
    stream_idle_timeout: Seconds | None = None
    request_timeout: Seconds | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, (str, list)):
            return {"targets": value if isinstance(value, list) else [value]}
        if isinstance(value, dict) and "provider" in value and "targets" not in value:
            return {"targets": [value]}
        return value


class PricingOverride(_Strict):
    """Prices for one model per million tokens; they take precedence over the built-in price source."""

    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)
    cached_input_per_1m: float | None = Field(default=None, ge=0)
    cache_write_per_1m: float | None = Field(default=None, ge=0)
    #: Price of reasoning tokens when it differs from ``output_per_1m`` (they are part of the output count).
    reasoning_per_1m: float | None = Field(default=None, ge=0)
    currency: str = "USD"


class RetryConfig(_Strict):
    """How the manager retries one deployment before falling back."""

    max_retries: NonNegativeInt = 3
    initial_backoff: Seconds = 0.5
    max_backoff: Seconds = 30.0
    max_retry_after: Seconds = 60.0
    jitter: bool = True


#: Settings only some built-in provider types read: set on another built-in type they would do nothing.
_VENDOR_FIELDS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("azure_deployments", "azure_ad_token", "azure_entra_id"), frozenset({"azure"})),
    **dict.fromkeys(("vertex_location", "vertex_access_token"), frozenset({"vertex", "vertex_anthropic"})),
    **dict.fromkeys(("aws_region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                     "aws_profile", "bedrock_api"), frozenset({"bedrock"})),
    **dict.fromkeys(("http_referer", "x_title"), frozenset({"openrouter"})),
}


def _refuse_foreign_fields(name: str, provider: ProviderConfig) -> None:
    from ..providers._builtin import BUILTIN_PROVIDERS

    kind = provider.type or name
    if kind not in BUILTIN_PROVIDERS:
        return  # a plugin's type may read any of them
    for field in sorted(provider.model_fields_set.intersection(_VENDOR_FIELDS)):
        readers = _VENDOR_FIELDS[field]
        if kind not in readers:
            raise ValueError(f"providers.{name}.{field} is read by type {' / '.join(sorted(readers))} only; a "
                             f"{kind!r} section would ignore it (remove it, or set the section's type)")


class BudgetConfig(_Strict):
    """A spending limit; alerts fire at the thresholds, requests are refused at 100%."""

    limit: float | None = Field(default=None, ge=0)
    period: Literal["total", "daily", "monthly"] = "total"
    #: Fractions of the limit (``0.75`` is 75 %), each above 0 and at most 1.
    alert_thresholds: list[Annotated[float, Field(gt=0, le=1)]] = Field(default_factory=lambda: [0.75, 0.9])
    #: Limits per provider section (each a configured section's name).
    per_provider: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    #: ``"team:research" = 10`` limits requests tagged ``team=research``; ``"user" = 1`` gives every user its own.
    per_tag: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    #: Most output tokens reserved for a call that sets no ``max_tokens`` (and whose provider section sets none):
    #: what the model's context window leaves after the prompt, capped by this.
    default_max_tokens: PositiveInt = 4096


class RateLimitConfig(_Strict):
    """How per-deployment limits (``rpm``, ``rph``, ``tpm``, ``input_tpm``, ``output_tpm``) are enforced."""

    #: ``sliding_window`` (exact counts over the last minute/hour) or ``token_bucket`` / ``leaky_bucket`` (GCRA).
    strategy: Literal["sliding_window", "token_bucket", "leaky_bucket"] = "sliding_window"
    #: On exhaustion: ``wait`` (async, at most ``max_wait`` seconds) or ``fail`` fast with ``RateLimitError``.
    on_limit: Literal["wait", "fail"] = "wait"
    max_wait: float = Field(default=10.0, ge=0)
    #: Slow a key down from the provider's own ``x-ratelimit-*`` / ``anthropic-ratelimit-*`` response headers.
    header_pacing: bool = True
    #: Cool-down after a provider 429 that names no Retry-After; and the longest cool-down honoured.
    default_cooldown: float = Field(default=1.0, ge=0)
    max_cooldown: float = Field(default=300.0, gt=0)


class StateConfig(_Strict):
    """Where counters, windows, cool-downs, budget spend and the usage ledger live.

    ``backend`` holds rate limits and cool-downs; ``ledger`` holds budget spend and the usage ledger (``auto``:
    the Redis store when ``backend`` is Redis, else SQLite when a budget is configured, else memory).
    """

    backend: Literal["memory", "sqlite", "redis"] = "memory"
    ledger: Literal["auto", "memory", "sqlite", "redis"] = "auto"
    #: Redis URL (``redis://127.0.0.1:6379/0``); env ``SPOON_LLM_REDIS_URL``.
    url: str | None = None
    #: SQLite file; env ``SPOON_LLM_STATE_PATH``; default ``$XDG_DATA_HOME/spoon_llm/usage.db``
    #: (``~/.local/share/spoon_llm/usage.db``).
    path: str | None = None
    #: When the store is unreachable: ``closed`` refuses requests, ``open`` lets them through unlimited (logged).
    fail_mode: Literal["closed", "open"] = "closed"
    key_prefix: str = "spoon_llm"
    #: Share circuit-breaker openings through ``backend`` so every process stays away from a failing deployment
    #: (default: on when ``backend`` is Redis, the store processes share).
    share_circuits: bool | None = None
    #: Seconds to wait for the Redis server before the store counts as unreachable.
    timeout: float = Field(default=1.0, gt=0)
    #: Connections in the Redis pool of each process; when all are busy a command waits for one (up to
    #: ``redis_pool_timeout`` seconds) instead of failing.
    redis_max_connections: int = Field(default=256, gt=0)
    redis_pool_timeout: float = Field(default=5.0, gt=0)


class CacheConfig(_Strict):
    """The response cache (``[cache]``): see :mod:`spoon_llm.cache`.

    ``enabled`` turns it on for every provider section; a section's ``enable_caching`` / ``cache_ttl`` override
    this for that section (and a section with ``enable_caching = true`` turns the cache on by itself).
    """

    enabled: bool = False
    backend: Literal["memory", "sqlite", "redis"] = "memory"
    #: Seconds an entry lives (``0``: until evicted).
    ttl: float = Field(default=3600.0, ge=0)
    #: Bounds of the memory backend (entries and bytes), and the most entries the SQLite file keeps.
    max_entries: PositiveInt = 10_000
    max_bytes: PositiveInt = 256 * 1024 * 1024
    #: Entries of other namespaces are never seen: give each application (or tenant) its own.
    namespace: str = "default"
    #: Tags whose values are part of the key (e.g. ``["user", "team"]``): tenants never share entries.
    key_tags: list[str] = Field(default_factory=list)
    #: SQLite file; env ``SPOON_LLM_CACHE_PATH``; default ``$XDG_CACHE_HOME/spoon_llm/responses.db``.
    path: str | None = None
    #: Redis URL; default ``[state] url``, env ``SPOON_LLM_REDIS_URL``, then ``redis://127.0.0.1:6379/0``.
    url: str | None = None


class SpoonConfig(_Strict):
    """The whole configuration, after every source has been merged."""

    default_provider: str | None = None
    fallback_chain: list[str] = Field(default_factory=list)
    #: Total time one request may take across every retry, backoff and fallback.
    request_timeout: Seconds | None = None
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, RouteConfig] = Field(default_factory=dict)
    pricing: dict[str, PricingOverride] = Field(default_factory=dict)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    load_balancing: Literal["round_robin", "weighted", "random", "least_inflight", "latency"] | None = None
    #: Managers feed the process-wide metrics collector (and the debug logger, once asked for) by default;
    #: ``false`` attaches nothing (see ``LLMManager(monitoring=...)``).
    monitoring: bool = True
    #: Whose budgets and usage ledger these are, in a store other applications may share (default: derived from
    #: the configuration file's location, else the working directory; see :mod:`spoon_llm.costs.namespace`).
    namespace: str | None = Field(default=None, min_length=1, max_length=200)
    #: A plain ``model=`` name must be an alias, a configured model or one the provider is known to serve
    #: (see :mod:`spoon_llm.routing.models`); ``false`` sends unknown names as they are.
    strict_models: bool = True
    #: The gateway (``spoon-llm serve``): listening address, master key, admission limits, CORS, body size.
    server: ServerSettings = Field(default_factory=ServerSettings)

    @model_validator(mode="after")
    def _name_providers(self) -> SpoonConfig:
        for name, provider in self.providers.items():
            if not provider.name:
                provider.name = name
        for name, provider in self.providers.items():
            _refuse_foreign_fields(name, provider)
        unknown = sorted(set(self.budget.per_provider) - set(self.providers))
        if unknown and self.providers:
            raise ValueError(f"budget.per_provider names {', '.join(map(repr, unknown))}, which is not a provider "
                             f"section (configured: {', '.join(sorted(self.providers))}); a limit there would "
                             "never apply")
        return self

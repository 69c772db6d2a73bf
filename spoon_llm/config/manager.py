"""``ConfigurationManager``: merges defaults, a file (or dict), the environment and explicit overrides.

Precedence, highest first: explicit overrides > environment variables > file or dict > defaults.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, SecretStr

from ..errors import ConfigurationError, register_secret
from ._older import OLDER_ERROR
from .models import (
    BudgetConfig,
    KeyConfig,
    PricingOverride,
    ProviderConfig,
    RetryConfig,
    RouteConfig,
    SpoonConfig,
)
from .sources import Layer, env_layer, file_layer, find_config_file, mapping_layer

__all__ = ["ConfigurationManager", "ConfigValue"]

_SECRET_FIELDS = ("api_key", "api_keys", "master_key")


class ConfigValue(BaseModel):
    """One setting as ``config show`` prints it: dotted key, display value (secrets masked) and its source."""

    model_config = ConfigDict(defer_build=True)

    key: str
    value: str
    source: str


class ConfigurationManager:
    """Loads and validates the configuration.

    ``source`` is a path to a TOML or JSON file, a dict, or ``None`` (the file named by ``SPOON_LLM_CONFIG``, else
    ``spoon_llm.toml`` / ``spoon_llm.json`` in the working directory, else environment variables alone).
    ``overrides`` are explicit settings that beat everything else.

    Example::

        config = ConfigurationManager("config.toml", overrides={"default_provider": "anthropic"})
        openai = config.load_provider_config("openai")
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        provider_names: Iterable[str] | None = None,
    ) -> None:
        self._source = source
        self._overrides = dict(overrides or {})
        self._env = env
        self._provider_names = list(provider_names) if provider_names is not None else None
        self._layers: list[Layer] = []
        self._config = self._load()

    # -- loading -------------------------------------------------------------------------------------------

    def _environment(self) -> Mapping[str, str]:
        return self._env if self._env is not None else os.environ

    def _known_provider_names(self, configured: Iterable[str]) -> set[str]:
        names = set(configured)
        if self._provider_names is not None:
            names.update(self._provider_names)
        else:
            from ..registry import get_global_registry

            names.update(get_global_registry().list_providers())
        return names

    def _load(self) -> SpoonConfig:
        # One seam: whatever a malformed source makes the steps below raise is a ConfigurationError naming it.
        try:
            return self._load_sources()
        except ConfigurationError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError, OverflowError) as exc:
            source = self._source if isinstance(self._source, (str, os.PathLike)) else None
            label = os.fspath(source) if source is not None else (
                "config dict" if isinstance(self._source, Mapping) else "configuration")
            text = str(exc) if len(str(exc)) <= 200 else str(exc)[:200] + "..."
            raise ConfigurationError(f"the settings have an unexpected shape ({type(exc).__name__}: {text}); "
                                     "check the types of its tables and values", source=str(label)) from None

    def _load_sources(self) -> SpoonConfig:
        env = self._environment()
        layers: list[Layer] = []
        source = self._source
        if isinstance(source, Mapping):
            layers.append(mapping_layer(source, "config dict", env))
        else:
            path = os.fspath(source) if source is not None else find_config_file(env)
            if path is not None:
                layers.append(file_layer(path, env))
        configured = set(layers[0].data.get("providers", {})) if layers else set()
        layers.append(env_layer(env, self._known_provider_names(configured)))
        if self._overrides:
            layers.append(mapping_layer(self._overrides, "explicit settings", env))
        merged: dict[str, Any] = {}
        for layer in layers:
            _deep_merge(merged, layer.data)
        _single_key_beats_lower_pools(merged, layers)
        _model_beats_lower_key_models(merged, layers)
        self._layers = layers
        try:
            config = SpoonConfig.model_validate(merged)
        except pydantic.ValidationError as exc:
            raise self._config_error(exc) from None
        self._check_references(config)
        for provider in config.providers.values():
            for deployment in provider.deployments():
                if deployment.api_key is not None:
                    register_secret(deployment.api_key.get_secret_value())
            for token in (provider.vertex_access_token, provider.azure_ad_token, provider.aws_secret_access_key,
                          provider.aws_session_token):
                if token is not None:
                    register_secret(token.get_secret_value())
        return config

    def _origin(self, path: tuple[str, ...]) -> str:
        """The source that set ``path`` (or its nearest parent), highest precedence first."""
        for layer in reversed(self._layers):
            for cut in range(len(path), 0, -1):
                if path[:cut] in layer.origins:
                    return layer.origins[path[:cut]]
            if any(key[: len(path)] == path for key in layer.origins):
                return layer.name
        return self._layers[0].name if self._layers else "defaults"

    def _config_error(self, exc: pydantic.ValidationError) -> ConfigurationError:
        lines = []
        first_source: str | None = None
        first_key: str | None = None
        for error in exc.errors():
            loc = tuple(str(p) for p in error["loc"])
            # Errors inside a discriminated/alias wrapper repeat a class name in the location; drop it.
            loc = tuple(p for p in loc if not p[:1].isupper())
            source = self._origin(loc)
            key = ".".join(loc) or "(top level)"
            lines.append(f"{source}: {key}: {_describe_error(error, loc)}")
            if first_source is None:
                first_source, first_key = source, key
        message = lines[0] if len(lines) == 1 else "invalid configuration:\n  " + "\n  ".join(lines)
        err = ConfigurationError(message)
        err.source, err.key = first_source, first_key
        return err

    def _check_references(self, config: SpoonConfig) -> None:
        from .validate import reference_problems

        found = reference_problems(config, self._origin)
        if found:  # URL schemes, fallback names: wrong now means a confusing failure at the first outage
            raise found[0]
        known = set(config.providers) | set(config.models)
        names = sorted(known)
        if config.default_provider and config.providers and config.default_provider not in known:
            raise ConfigurationError(
                f"unknown provider {config.default_provider!r}{_did_you_mean(config.default_provider, names)}; "
                f"configured: {', '.join(names) or 'none'}",
                source=self._origin(("default_provider",)),
                key="default_provider",
            )
        for alias, route in config.models.items():
            for target in route.targets:
                if config.providers and target.provider not in config.providers:
                    raise ConfigurationError(
                        f"route targets unknown provider {target.provider!r}"
                        f"{_did_you_mean(target.provider, sorted(config.providers))}; add a "
                        f"[providers.{target.provider}] section or fix the name",
                        source=self._origin(("models", alias)),
                        key=f"models.{alias}",
                    )

    def validate(self, registry: Any = None) -> None:
        """Check everything that can be checked without the network; raise one error listing every problem.

        Beyond the checks made when the configuration is loaded: provider types that are not registered,
        providers that need a key and have none, ``${VAR}`` references to unset variables, and an empty
        configuration. ``spoon-llm config validate`` runs this. See :mod:`spoon_llm.config.validate`.
        """
        from .validate import problems

        found = problems(self, registry)
        if not found:
            return
        if len(found) == 1:
            raise found[0]
        err = ConfigurationError(f"{len(found)} problems:\n  " + "\n  ".join(str(p) for p in found))
        err.source, err.key = found[0].source, found[0].key
        raise err

    def reload_config(self) -> SpoonConfig:
        """Read every source again (e.g. after the file or environment changed)."""
        self._config = self._load()
        return self._config

    # -- queries --------------------------------------------------------------------------------------------

    @property
    def config(self) -> SpoonConfig:
        """The validated configuration."""
        return self._config

    @property
    def source_name(self) -> str | None:
        """The file (or ``"config dict"``) this configuration was read from, if any."""
        return self._layers[0].name if self._layers and self._layers[0].name != "environment" else None

    def list_configured_providers(self) -> list[str]:
        """Providers with a section (from file, dict, env or overrides) that are enabled."""
        return [name for name, p in self._config.providers.items() if p.enabled]

    def load_provider_config(self, name: str, **overrides: Any) -> ProviderConfig:
        """The settings of provider ``name``, with per-call ``overrides`` on top.

        A registered provider with no section gets its defaults (so ``vllm`` or ``ollama`` work with no key);
        an unknown name is a :class:`ConfigurationError` with a did-you-mean, and so is a provider that needs an
        API key and has none anywhere ("Missing required field 'api_key'"). :meth:`provider_section` is the same
        without the key check.
        """
        section = self.provider_section(name, **overrides)
        if section.primary_api_key() is None and _requires_api_key(section.provider_type):
            env = re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_API_KEY"
            where = self.source_name or "the config file"
            raise ConfigurationError(
                f"Missing required field 'api_key' for provider {name!r}: set {env} or add api_key to "
                f"[providers.{name}] in {where}",
                key=f"providers.{name}.api_key", provider=name,
            )
        return section

    def provider_section(self, name: str, **overrides: Any) -> ProviderConfig:
        """The settings of provider ``name`` (defaults for a registered provider with no section), unchecked."""
        section = self._config.providers.get(name)
        if section is None:
            known = self._known_provider_names(self._config.providers)
            if name not in known:
                raise ConfigurationError(
                    f"unknown provider {name!r}{_did_you_mean(name, sorted(known))}; configured: "
                    f"{', '.join(sorted(self._config.providers)) or 'none'}",
                    key=f"providers.{name}",
                )
            section = ProviderConfig(name=name)
        if not overrides:
            return section
        # Python-mode dumps keep SecretStr objects, so secrets survive the round trip unprinted.
        data = {**section.model_dump(), **overrides}
        try:
            return ProviderConfig.model_validate(data)
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            loc = tuple(str(p) for p in error["loc"])
            raise ConfigurationError(
                _describe_error(error, loc), source="explicit settings",
                key=f"providers.{name}.{'.'.join(loc)}",
            ) from None

    def get_default_provider(self) -> str:
        """The default provider: ``default_provider``, else the first of the fallback chain, else the first section."""
        config = self._config
        if config.default_provider:
            return config.default_provider
        if config.fallback_chain:
            return config.fallback_chain[0]
        enabled = self.list_configured_providers()
        if enabled:
            return enabled[0]
        raise ConfigurationError(
            "no provider is configured; set an API key such as OPENAI_API_KEY, add a [providers.<name>] section "
            "to the config file, or set DEFAULT_LLM_PROVIDER",
            key="default_provider",
        )

    def get_fallback_chain(self) -> list[str]:
        """Providers (or aliases) to try in order after the default one fails."""
        return list(self._config.fallback_chain)

    def get_route(self, alias: str) -> RouteConfig | None:
        """The route a model alias (``sonnet``, ``fast``) resolves to, if configured."""
        return self._config.models.get(alias)

    def get_pricing(self, model: str) -> PricingOverride | None:
        """The configured price override for ``model``, if any."""
        return self._config.pricing.get(model)

    @property
    def retry(self) -> RetryConfig:
        """Retry settings."""
        return self._config.retry

    @property
    def budget(self) -> BudgetConfig:
        """Budget settings."""
        return self._config.budget

    def validate_model(self, provider: str, model: str) -> bool:
        """True when ``model`` is usable with ``provider``.

        With a ``models`` list in the section: listed there (or the section's ``model``). Without one: the
        section's ``model``, a ``[pricing]`` entry, a model the built-in price book knows for that provider, or
        one the provider class lists in its metadata; any name for local servers (vLLM, Ollama), which serve what
        they were started with. An unknown provider is False.
        """
        if not model or not model.strip():
            return False
        section = self._config.providers.get(provider)
        if section is None:
            if provider not in self._known_provider_names(self._config.providers):
                return False
            section = ProviderConfig(name=provider)
        if section.models:
            return model in section.models or model == section.model
        return model == section.model or _known_model(self._config, section, model)

    def describe(self) -> list[ConfigValue]:
        """Every set value with its source, secrets masked; what ``spoon-llm config show`` prints."""
        rows: list[ConfigValue] = []
        dumped = self._config.model_dump(exclude_defaults=False)
        for path, value in _leaves(dumped):
            if path[-1] == "name" and len(path) == 3 and path[0] == "providers":
                continue
            display = _display(path, value)
            rows.append(ConfigValue(key=".".join(path), value=display, source=self._origin(path)
                                    if self._was_set(path) else "default"))
        return rows

    def _was_set(self, path: tuple[str, ...]) -> bool:
        return any(
            any(key[: len(path)] == path or path[: len(key)] == key for key in layer.origins)
            for layer in self._layers
        )

    def __repr__(self) -> str:
        return (
            f"ConfigurationManager(source={self.source_name!r}, "
            f"providers={self.list_configured_providers()!r})"
        )


def _requires_api_key(provider_type: str) -> bool:
    """Whether the registered provider class says it needs a key (unknown or custom classes: no)."""
    from ..errors import LLMError
    from ..registry import get_global_registry

    try:
        cls = get_global_registry().get_provider_class(provider_type)
    except LLMError:
        return False
    return bool(getattr(cls, "requires_api_key", False))


def _known_model(config: SpoonConfig, section: ProviderConfig, model: str) -> bool:
    """Whether the price book or the provider's metadata knows ``model`` for ``section`` (see validate_model)."""
    from ..errors import LLMError
    from ..pricing.book import LOCAL_PROVIDER_TYPES, PriceBook
    from ..registry import get_global_registry

    if section.provider_type in LOCAL_PROVIDER_TYPES:
        return True
    book = PriceBook(config.pricing)
    if book.rates(model, section.provider_type, provider=section.name, base_url=section.base_url) is not None:
        return True
    try:
        cls = get_global_registry().get_provider_class(section.provider_type)
    except LLMError:
        return False
    known = getattr(cls, "known_models", None) or ()
    return model in known


def _top_layer(layers: list[Layer], name: str, field: str) -> int:
    """Index of the highest-precedence layer that sets ``providers.<name>.<field>`` (-1: none)."""
    for index in range(len(layers) - 1, -1, -1):
        section = layers[index].data.get("providers", {}).get(name)
        if isinstance(section, Mapping) and section.get(field) is not None:
            return index
    return -1


def _secret_text(value: Any) -> Any:
    if isinstance(value, Mapping):
        value = value.get("api_key")
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _single_key_beats_lower_pools(merged: dict[str, Any], layers: list[Layer]) -> None:
    """An ``api_key`` from a layer above the one that set ``api_keys`` replaces that pool (env beats file).

    Without this, ``OPENAI_API_KEY`` in the environment was ignored whenever the file listed ``api_keys``. A key
    that is already one of the pool's (``api_keys = ["${OPENAI_API_KEY}", ...]``) keeps the pool as it is.
    Both set by one source is refused (unless the key is one of the pool's): one of them would be ignored.
    """
    providers = merged.get("providers")
    if not isinstance(providers, dict):
        return
    for name, section in providers.items():
        if not isinstance(section, dict) or not section.get("api_keys") or section.get("api_key") is None:
            continue
        pool = section["api_keys"]
        if isinstance(pool, list) and _secret_text(section["api_key"]) in [_secret_text(k) for k in pool]:
            continue
        key_layer, pool_layer = _top_layer(layers, name, "api_key"), _top_layer(layers, name, "api_keys")
        if key_layer == pool_layer:
            raise ConfigurationError(
                "api_key and api_keys are both set, so one of them would be ignored; list every key in api_keys "
                "(a pool of keys) or keep api_key alone (one key)",
                source=layers[key_layer].name, key=f"providers.{name}", provider=name)
        if key_layer < pool_layer:
            continue
        for field in ("api_keys", "key_models", "key_rpm", "key_tpm"):
            section.pop(field, None)


def _model_beats_lower_key_models(merged: dict[str, Any], layers: list[Layer]) -> None:
    """A ``model`` from a layer above the one that gave the keys their own models replaces them (env beats file).

    Without this, ``OPENAI_MODEL`` in the environment was shown as the section's model while every key of the
    file's pool kept answering with its own.
    """
    providers = merged.get("providers")
    if not isinstance(providers, dict):
        return
    for name, section in providers.items():
        if not isinstance(section, dict) or section.get("model") is None:
            continue
        model_layer = _top_layer(layers, name, "model")
        if section.get("key_models") is not None and _top_layer(layers, name, "key_models") < model_layer:
            section.pop("key_models")
        keys = section.get("api_keys")
        if isinstance(keys, list) and _top_layer(layers, name, "api_keys") < model_layer:
            section["api_keys"] = [{k: v for k, v in key.items() if k != "model"} if isinstance(key, Mapping)
                                   else key for key in keys]


def _deep_merge(target: dict[str, Any], incoming: Mapping[str, Any]) -> None:
    for key, value in incoming.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        elif isinstance(value, Mapping):
            target[key] = {}
            _deep_merge(target[key], value)
        else:
            target[key] = value


def _leaves(data: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from _leaves(value, (*path, str(key)))
    elif path:
        yield path, data


def _secret_path(path: Iterable[Any]) -> bool:
    """Whether a setting's dotted path holds a credential (an API key, a token, a secret, a password...)."""
    from ..monitoring.redaction import is_secret_field

    return any(isinstance(p, str) and (p in _SECRET_FIELDS or is_secret_field(p)) for p in path)


#: The credentials part of a URL (``redis://:password@host``), wherever it sits in a text.
_USERINFO = re.compile(r"(://)[^/@\s'\"]*@")


def _without_userinfo(text: str) -> str:
    """``text`` with every URL's credentials masked."""
    return _USERINFO.sub(r"\1***@", text) if "@" in text else text


def _display(path: tuple[str, ...], value: Any) -> str:
    if _secret_path(path):
        if isinstance(value, list):
            return f"[{len(value)} keys, hidden]"
        return "(hidden)" if value else "(not set)"
    if isinstance(value, SecretStr):
        return "(hidden)"
    return _without_userinfo(repr(value) if isinstance(value, str) else str(value))


_FIELDS_BY_SECTION: dict[tuple[str, ...], type[BaseModel]] = {
    (): SpoonConfig,
    ("providers", "*"): ProviderConfig,
    ("providers", "*", "api_keys", "*"): KeyConfig,
    ("models", "*"): RouteConfig,
    ("pricing", "*"): PricingOverride,
    ("retry",): RetryConfig,
    ("budget",): BudgetConfig,
}


def _section_model(loc: tuple[str, ...]) -> type[BaseModel] | None:
    for pattern, model in _FIELDS_BY_SECTION.items():
        if len(pattern) == len(loc) and all(p in ("*", part) for p, part in zip(pattern, loc, strict=True)):
            return model
    return None


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


_FRIENDLY = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "missing": "is required but missing",
    "greater_than_equal": "expected a number >= 0",
}


def _describe_error(error: Any, loc: tuple[str, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _section_model(loc[:-1])
        hint = _did_you_mean(loc[-1], model.model_fields) if model else ""
        return f"unknown key{hint or '; remove it or check the spelling'}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"expected one of {expected}, got {_shown_input(loc, error.get('input'))}"
    message = str(_FRIENDLY.get(kind, error["msg"]))
    if kind == "missing":
        return message
    if kind in ("key_lists", OLDER_ERROR):
        return str(error["msg"])
    return f"{message}, got {_shown_input(loc, error.get('input'))}"


def _shown_input(loc: tuple[str, ...], value: Any) -> str:
    if _secret_path(loc):
        return "(hidden)"
    text = _without_userinfo(repr(value))
    return text if len(text) <= 80 else text[:77] + "..."

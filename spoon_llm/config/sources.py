"""Reading configuration sources (TOML, JSON, dicts, environment) into raw dicts, with provenance per key."""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ._older import lift_model_prices

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "CONFIG_FILE_ENV",
    "DEFAULT_CONFIG_LOCATIONS",
    "ConfigWarning",
    "Layer",
    "env_layer",
    "file_layer",
    "is_placeholder",
    "mapping_layer",
]

#: Environment variable naming the configuration file.
CONFIG_FILE_ENV = "SPOON_LLM_CONFIG"
#: Where a configuration file is looked for when none is named (first found wins).
DEFAULT_CONFIG_LOCATIONS = ("spoon_llm.toml", "spoon_llm.json", "~/.config/spoon_llm/config.toml")

# Per-provider variables: {P}_API_KEY, {P}_BASE_URL, ...; GOOGLE_API_KEY is Gemini's other spelling.
_PROVIDER_ENV_FIELDS = {
    "API_KEY": "api_key",
    "BASE_URL": "base_url",
    "MODEL": "model",
    "MAX_TOKENS": "max_tokens",
    "TEMPERATURE": "temperature",
    "TIMEOUT": "timeout",
}
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PLACEHOLDER = re.compile(
    r"^(?:your[-_ ].*|.*[-_]here|<.*>|x{3,}|changeme|replace[-_ ]?me|todo|sk-\.\.\.|\.\.\.|none|null|dummy)$",
    re.IGNORECASE,
)


class ConfigWarning(UserWarning):
    """A configuration value was ignored (for example a placeholder API key)."""


class Layer:
    """One source's raw settings plus, for each leaf key path, where it came from."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.data: dict[str, Any] = {}
        self.origins: dict[tuple[str, ...], str] = {}
        #: Keys left unset because a ``${VAR}`` in them names an unset variable: ``(path, variable)``.
        self.unresolved: list[tuple[tuple[str, ...], str]] = []

    def set(self, path: tuple[str, ...], value: Any, origin: str | None = None) -> None:
        """Set the value at ``path``, creating tables on the way."""
        node = self.data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
        self.origins[path] = origin or self.name


def is_placeholder(value: Any) -> bool:
    """True for values like ``your-api-key`` or ``<OPENAI_KEY>`` that were never filled in."""
    return isinstance(value, str) and bool(_PLACEHOLDER.match(value.strip()))


#: What the older layout's ``[llm_settings]`` table holds.
_LLM_SETTINGS = ("default_provider", "fallback_chain", "request_timeout", "load_balancing")
#: Its on/off switches: the setting each one became, or (a sentence) where that control lives now.
_OLDER_SWITCHES = {
    "enable_monitoring": "monitoring",
    "enable_caching": "cache",
    "enable_debug_logging": "debug logging is get_debug_logger() (or enable_monitoring(manager, debug=True))",
    "max_concurrent_requests": "set max_concurrent_requests in each [providers.NAME] section",
}


def _normalise(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Accept the older layout: ``llm_providers`` for ``providers`` and an ``llm_settings`` table."""
    data = dict(raw)
    if "llm_providers" in data:
        legacy = data.pop("llm_providers")
        if "providers" in data:
            raise ConfigurationError(
                "both 'providers' and the older 'llm_providers' are present; keep one of them",
                source=source,
                key="llm_providers",
            )
        data["providers"] = legacy
    settings = data.pop("llm_settings", None)
    if settings is not None and not isinstance(settings, Mapping):
        raise ConfigurationError(f"'llm_settings' must be a table, not {type(settings).__name__}", source=source,
                                 key="llm_settings")
    for key, value in (settings or {}).items():
        if key in _OLDER_SWITCHES:  # the older layout's switches: the setting each one became, or a pointer to it
            target = _OLDER_SWITCHES[key]
            if target == "monitoring":
                data.setdefault("monitoring", bool(value))
            elif target == "cache":
                cache = data.setdefault("cache", {})
                if isinstance(cache, dict):
                    cache.setdefault("enabled", bool(value))
            else:
                warnings.warn(f"{source}: llm_settings.{key} is not a setting here; {target}", ConfigWarning,
                              stacklevel=4)
            continue
        if key not in _LLM_SETTINGS:
            raise ConfigurationError(
                f"'llm_settings.{key}' is not a setting of the older layout (it takes "
                f"{', '.join(_LLM_SETTINGS)}); move other settings to the top level", source=source,
                key=f"llm_settings.{key}")
        if key in data and data[key] != value:
            raise ConfigurationError(
                f"'{key}' is set both at the top level and in 'llm_settings', to different values; keep one",
                source=source, key=f"llm_settings.{key}")
        data[key] = value
    providers = data.get("providers")
    if isinstance(providers, Mapping):
        fixed = {}
        for name, section in providers.items():
            if isinstance(section, Mapping) and "retry_attempts" in section and "max_retries" not in section:
                section = {**section, "max_retries": section["retry_attempts"]}
                section.pop("retry_attempts")
            fixed[name] = section
        data["providers"] = fixed
        data = lift_model_prices(data, source)
    return data


def _interpolate(value: Any, path: tuple[str, ...], source: str, env: Mapping[str, str],
                 unresolved: list[tuple[tuple[str, ...], str]] | None = None) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in strings; an unset variable with no default leaves the key unset.

    Each key left unset that way is added to ``unresolved`` as ``(path, variable)`` (``config validate`` reports
    them).
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            resolved = _interpolate(v, (*path, str(k)), source, env, unresolved)
            if resolved is not _UNSET:
                out[k] = resolved
        return out
    if isinstance(value, list):
        # An unset entry stays as None so per-key lists (key_models, key_rpm) keep lining up with api_keys.
        items = [_interpolate(v, (*path, str(i)), source, env, unresolved) for i, v in enumerate(value)]
        return [None if v is _UNSET else v for v in items]
    if not isinstance(value, str) or "${" not in value:
        return value
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        missing.append(name)
        return ""

    result = _INTERPOLATION.sub(substitute, value)
    if missing:
        if unresolved is not None:
            unresolved.extend((path, name) for name in missing)
        return _UNSET
    return result


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def _drop_placeholders(data: dict[str, Any], source: str, path: tuple[str, ...] = ()) -> None:
    """Treat placeholder secrets as unset, with a warning naming where they were."""
    for key in list(data):
        value = data[key]
        if isinstance(value, dict):
            _drop_placeholders(value, source, (*path, key))
        elif key == "api_key" and isinstance(value, str) and not value.strip():
            del data[key]  # empty (e.g. "${OPENAI_API_KEY:-}" with the variable unset): no key, not a key ""
        elif key == "api_key" and is_placeholder(value):
            warnings.warn(
                f"{source}: {'.'.join((*path, key))}: {value!r} looks like a placeholder, not a real API key; "
                "it is treated as unset",
                ConfigWarning,
                stacklevel=4,
            )
            del data[key]
        elif key == "api_keys" and isinstance(value, list):
            kept = [None if is_placeholder(v.get("api_key") if isinstance(v, dict) else v) else v for v in value]
            if kept != value:
                warnings.warn(
                    f"{source}: {'.'.join((*path, key))}: placeholder keys are treated as unset",
                    ConfigWarning,
                    stacklevel=4,
                )
                data[key] = kept


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when it names a key twice (the last would silently win)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _collect_origins(layer: Layer, data: Mapping[str, Any], path: tuple[str, ...] = ()) -> None:
    for key, value in data.items():
        sub = (*path, str(key))
        if isinstance(value, Mapping) and value:
            _collect_origins(layer, value, sub)
        else:
            layer.origins[sub] = layer.name
    if not data and path:
        layer.origins[path] = layer.name


def mapping_layer(raw: Mapping[str, Any], name: str, env: Mapping[str, str] | None = None) -> Layer:
    """A layer from a plain dict (already parsed), with interpolation and placeholder handling."""
    layer = Layer(name)
    data = _interpolate(_normalise(raw, name), (), name, env if env is not None else os.environ, layer.unresolved)
    _drop_placeholders(data, name)
    layer.data = data
    _collect_origins(layer, data)
    return layer


def file_layer(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Layer:
    """A layer from a TOML or JSON file; syntax errors name the file, line and column."""
    file = Path(path).expanduser()
    label = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            "file not found; check the path (or unset SPOON_LLM_CONFIG)", source=label
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"the file is not UTF-8 text (invalid byte at offset {exc.start}); save it as "
                                 "UTF-8", source=label) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the file: {exc.strerror}", source=label) from None
    raw: Any
    if file.suffix.lower() == ".json":
        try:
            raw = json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", source=label
            ) from None
        except (ValueError, RecursionError) as exc:  # an integer of thousands of digits, nesting too deep
            raise ConfigurationError(f"unreadable JSON: {_short(exc)}", source=label) from None
    else:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"invalid TOML: {exc}", source=label) from None
        except (ValueError, RecursionError) as exc:
            raise ConfigurationError(f"unreadable TOML: {_short(exc)}", source=label) from None
    if not isinstance(raw, dict):
        raise ConfigurationError("the top level must be a table/object of settings", source=label)
    return mapping_layer(raw, label, env)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def env_layer(env: Mapping[str, str], provider_names: Iterable[str]) -> Layer:
    """A layer from environment variables; per-provider variables apply to the given provider names."""
    layer = Layer("environment")
    for name in sorted(set(provider_names)):
        prefix = re.sub(r"[^A-Za-z0-9]", "_", name).upper()
        for suffix, field in _PROVIDER_ENV_FIELDS.items():
            var = f"{prefix}_{suffix}"
            value = env.get(var)
            if name == "gemini" and suffix == "API_KEY" and not value:
                var, value = "GOOGLE_API_KEY", env.get("GOOGLE_API_KEY")
            if not value:
                continue
            if suffix == "API_KEY" and is_placeholder(value):
                warnings.warn(
                    f"environment variable {var}: {value!r} looks like a placeholder, not a real API key; "
                    "it is treated as unset",
                    ConfigWarning,
                    stacklevel=3,
                )
                continue
            layer.set(("providers", name, field), value, f"environment variable {var}")
    extras = {
        "OPENROUTER_HTTP_REFERER": ("providers", "openrouter", "http_referer"),
        "OPENROUTER_X_TITLE": ("providers", "openrouter", "x_title"),
        "VLLM_ENDPOINT": ("providers", "vllm", "base_url"),
        "VLLM_HOURLY_RATE": ("providers", "vllm", "hourly_rate"),
        "BUDGET_LIMIT": ("budget", "limit"),
        "LLM_REQUEST_TIMEOUT": ("request_timeout",),
    }
    for var, path in extras.items():
        if env.get(var):
            layer.set(path, env[var], f"environment variable {var}")
    if env.get("AZURE_OPENAI_API_KEY") and not is_placeholder(env["AZURE_OPENAI_API_KEY"]):
        # Azure OpenAI's own variable names (its SDK's): a key enables the section, endpoint and version join it.
        for var, field in (("AZURE_OPENAI_API_KEY", "api_key"), ("AZURE_OPENAI_ENDPOINT", "base_url"),
                           ("OPENAI_API_VERSION", "api_version")):
            if env.get(var):
                layer.set(("providers", "azure", field), env[var], f"environment variable {var}")
    default = env.get("DEFAULT_LLM_PROVIDER") or env.get("LLM_PROVIDER")
    if default:
        var = "DEFAULT_LLM_PROVIDER" if env.get("DEFAULT_LLM_PROVIDER") else "LLM_PROVIDER"
        layer.set(("default_provider",), default.strip(), f"environment variable {var}")
    chain = env.get("LLM_FALLBACK_CHAIN")
    if chain:
        names = [p.strip() for p in chain.split(",") if p.strip()]
        layer.set(("fallback_chain",), names, "environment variable LLM_FALLBACK_CHAIN")
    return layer


def find_config_file(env: Mapping[str, str]) -> str | None:
    """The file named by ``SPOON_LLM_CONFIG``, else the first of :data:`DEFAULT_CONFIG_LOCATIONS` that exists."""
    named = env.get(CONFIG_FILE_ENV)
    if named:
        return named
    for candidate in DEFAULT_CONFIG_LOCATIONS:
        if Path(candidate).expanduser().is_file():
            return candidate
    return None

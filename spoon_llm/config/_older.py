"""Settings in the layouts of the APIs spoon-llm replaces, rewritten into today's names before validation.

* ``spoon_ai.llm`` provider settings: ``retry_attempts`` (= ``max_retries``), ``connection_pool_size``
  (= ``max_connections``), ``default_model`` (= ``model``).
* The pooled module's parallel lists: ``api_keys = [k1, k2]`` with ``models = [m1, m2]`` (each key its own model)
  and ``rate_limits = [{requests_per_minute, input_tokens_per_minute, output_tokens_per_minute}, ...]`` (one per
  key, or one table for every key).
* The older JSON layout's per-model tables, ``models = {"gpt-4o": {"cost_per_input_token": ..., ...}}``: the
  names become the model list, the per-token prices a ``[pricing]`` override (see :func:`lift_model_prices`).

Conflicting spellings of one setting are rejected, never silently resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import PydanticCustomError

from ..errors import ConfigurationError

__all__ = ["OLDER_ERROR", "lift_model_prices", "older_provider_layout"]

#: The pydantic error type of the messages below (printed as they are: they never contain a setting's value).
OLDER_ERROR = "older_setting"

_RENAMED = {"retry_attempts": "max_retries", "connection_pool_size": "max_connections", "default_model": "model"}
_LIMIT_NAMES = {
    "requests_per_minute": "rpm", "rpm": "rpm",
    "tokens_per_minute": "tpm", "tpm": "tpm",
    "input_tokens_per_minute": "input_tpm", "input_tpm": "input_tpm",
    "output_tokens_per_minute": "output_tpm", "output_tpm": "output_tpm",
}
_SECTION_ONLY_LIMITS = {"requests_per_hour": "rph", "rph": "rph"}
_PRICE_FIELDS = ("cost_per_input_token", "cost_per_output_token")
_MODEL_TABLE_FIELDS = {"model_type", "max_tokens", "temperature", *_PRICE_FIELDS}


def _fail(message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(OLDER_ERROR, message, context or None)


def older_provider_layout(data: Any) -> Any:
    """``data`` (a provider section as a dict) with the older spellings rewritten; anything else as given."""
    if not isinstance(data, Mapping) or not any(
        key in data for key in (*_RENAMED, "rate_limits", "models")
    ):
        return data
    data = dict(data)
    for old, new in _RENAMED.items():
        if old in data:
            value = data.pop(old)
            if new in data and data[new] != value:
                raise _fail("{old} and {new} are the same setting and disagree; keep only {new}", old=old, new=new)
            data[new] = value
    models = data.get("models")
    if isinstance(models, Mapping):
        _model_tables(data, models)
    keys = data.get("api_keys")
    models = data.get("models")
    if (isinstance(keys, list) and keys and isinstance(models, list) and len(models) == len(keys)
            and "key_models" not in data and data.get("model") is None and all(isinstance(m, str) for m in models)):
        # The pooled module's parallel lists: key i serves model i (the list stays the allowed models too). A
        # section that names its model (in the file or the environment) sends that one, whatever the lists' lengths.
        data["api_keys"] = [_with(key, "model", model) for key, model in zip(keys, models, strict=True)]
    if "rate_limits" in data:
        _rate_limits(data, data.pop("rate_limits"))
    return data


def _with(key: Any, field: str, value: Any) -> Any:
    """One ``api_keys`` entry with ``field`` set, unless the entry sets it itself (an unset key stays None)."""
    if key is None:
        return None
    entry = dict(key) if isinstance(key, Mapping) else {"api_key": key}
    entry.setdefault(field, value)
    return entry


def _limits(table: Any, where: str, *, per_key: bool) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise _fail("{where} must be a table of limits (requests_per_minute, tokens_per_minute, "
                    "input_tokens_per_minute, output_tokens_per_minute)", where=where)
    out: dict[str, Any] = {}
    names = dict(_LIMIT_NAMES) if per_key else {**_LIMIT_NAMES, **_SECTION_ONLY_LIMITS}
    for name, value in table.items():
        field = names.get(str(name))
        if field is None:
            raise _fail("{where}: unknown limit '{name}'; use requests_per_minute, tokens_per_minute, "
                        "input_tokens_per_minute or output_tokens_per_minute", where=where, name=str(name))
        out[field] = value
    return out


def _rate_limits(data: dict[str, Any], limits: Any) -> None:
    """``rate_limits``: one table for the section (every key), or a list with one table per key."""
    if isinstance(limits, Mapping):
        for field, value in _limits(limits, "rate_limits", per_key=False).items():
            if field in data and data[field] != value:
                raise _fail("rate_limits sets {field} and so does the section, differently; keep one",
                            field=field)
            data[field] = value
        return
    keys = data.get("api_keys")
    if not isinstance(limits, list):
        raise _fail("rate_limits must be a table, or a list with one table per entry of api_keys")
    if not isinstance(keys, list) or len(keys) != len(limits):
        raise _fail("rate_limits has {n} entries but api_keys has {keys}; give one table per key (or one table "
                    "for all)", n=len(limits), keys=len(keys) if isinstance(keys, list) else 0)
    entries = list(keys)
    for index, table in enumerate(limits):
        for field, value in _limits(table, f"rate_limits[{index}]", per_key=True).items():
            entries[index] = _with(entries[index], field, value)
    data["api_keys"] = entries


def _model_tables(data: dict[str, Any], models: Mapping[str, Any]) -> None:
    """Per-model tables: the names become the model list; ``max_tokens``/``temperature`` apply to the default."""
    names = [str(name) for name in models]
    default = data.get("model") or (names[0] if len(names) == 1 else None)
    for name, table in models.items():
        if not isinstance(table, Mapping):
            raise _fail("models.{name} must be a table of model settings", name=str(name))
        unknown = sorted(set(table) - _MODEL_TABLE_FIELDS)
        if unknown:
            raise _fail("models.{name}: unknown setting '{key}'; a model table accepts model_type, max_tokens, "
                        "temperature, cost_per_input_token and cost_per_output_token", name=str(name),
                        key=unknown[0])
        for field in ("max_tokens", "temperature"):
            if field not in table:
                continue
            if str(name) != default:
                raise _fail("models.{name}.{field}: per-model {field} applies to the provider's default model "
                            "only; set {field} on the section (or per call) instead", name=str(name), field=field)
            data.setdefault(field, table[field])
    data["models"] = names


def lift_model_prices(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Per-model ``cost_per_input_token`` / ``cost_per_output_token`` as ``[pricing]`` overrides (per 1M tokens).

    ``data`` is a whole configuration (its ``providers`` table) read from ``source``; an explicit ``[pricing]``
    entry wins. A price given alone, or not a number >= 0, is a :class:`ConfigurationError` naming the model.
    """
    providers = data.get("providers")
    if not isinstance(providers, Mapping):
        return data
    lifted: dict[str, Any] = {}
    for provider, section in providers.items():
        models = section.get("models") if isinstance(section, Mapping) else None
        if not isinstance(models, Mapping):
            continue
        for name, table in models.items():
            if not isinstance(table, Mapping) or not any(field in table for field in _PRICE_FIELDS):
                continue
            where = f"providers.{provider}.models.{name}"
            missing = [field for field in _PRICE_FIELDS if field not in table]
            if missing:
                raise ConfigurationError(f"{missing[0]} is missing; give both cost_per_input_token and "
                                         "cost_per_output_token (USD per token)", source=source, key=where)
            lifted[str(name)] = {"input_per_1m": _per_million(table["cost_per_input_token"], where, source),
                                 "output_per_1m": _per_million(table["cost_per_output_token"], where, source)}
    if not lifted:
        return data
    pricing = dict(data.get("pricing") or {})
    for name, prices in lifted.items():
        pricing.setdefault(name, prices)
    return {**data, "pricing": pricing}


def _per_million(value: Any, where: str, source: str) -> float:
    number: float | None = None
    if not isinstance(value, bool) and isinstance(value, (int, float, str)):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or number < 0 or number != number:
        raise ConfigurationError("a cost per token must be a number >= 0 (USD per token, e.g. 0.0000025)",
                                 source=source, key=where)
    return round(number * 1_000_000, 9)

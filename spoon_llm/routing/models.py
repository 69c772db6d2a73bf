"""Strict model resolution: a plain ``model=`` name must be one something is known to serve.

``model=`` resolves to an alias from ``[models]``, else ``provider/model`` or ``provider=`` with ``model=`` (always
accepted, sent as written), else a model configured on a provider section (``model``, ``models``, per-key models,
route targets), else a plain name the provider it goes to is known to serve: a ``[pricing]`` entry, the bundled
price catalogue (extra ``prices``) for vendors it covers, or the models the provider class declares
(``known_models``, its metadata). Providers nothing can judge by (local and self-hosted endpoints, custom types, or
a core install without the catalogue) accept any name, unless it is a near miss of an alias (``smrt`` for
``smart``). Anything else raises :class:`~spoon_llm.errors.ConfigurationError` with suggestions before a request
is sent. ``strict_models = false`` in the configuration lets unknown plain names through.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..config.validate import did_you_mean
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..config.models import SpoonConfig
    from ..pricing.book import PriceBook
    from .deployment import DeploymentState

__all__ = ["ModelChecker"]


def _configured_models(config: SpoonConfig) -> set[str]:
    names: set[str] = set()
    for section in config.providers.values():
        if section.model:
            names.add(section.model)
        names.update(section.models)
        names.update(m for m in section.key_models or () if m)
        names.update(key.model for key in section.api_keys if key.model)
    for route in config.models.values():
        names.update(t.model for t in route.targets if t.model)
    return names


def _catalogue_models(provider_type: str) -> list[str]:
    """Model ids the bundled price catalogue lists for a provider type (empty without the ``prices`` extra)."""
    from ..pricing._genai import GENAI_PROVIDER_IDS

    vendor = GENAI_PROVIDER_IDS.get(provider_type)
    if vendor is None or importlib.util.find_spec("genai_prices") is None:
        return []
    from genai_prices import data

    return [m.id for p in data.providers if p.id == vendor for m in p.models]


class ModelChecker:
    """Decides whether a plain model name may be sent (see the module docstring); built once per router."""

    def __init__(self, config: SpoonConfig, registry: Any = None) -> None:
        self.strict = bool(getattr(config, "strict_models", True))
        self.aliases = sorted(config.models)
        self.configured = _configured_models(config)
        self._registry = registry
        self._prices: PriceBook | None = None
        self._declared: dict[str, frozenset[str]] = {}
        self._config = config

    def _book(self) -> PriceBook:
        if self._prices is None:
            from ..pricing.book import PriceBook

            self._prices = PriceBook.from_config(self._config)
        return self._prices

    def declared(self, provider_type: str) -> frozenset[str]:
        """The models a provider class declares it serves (``known_models``; empty when it declares none)."""
        found = self._declared.get(provider_type)
        if found is None:
            names: tuple[str, ...] = ()
            if self._registry is not None:
                try:
                    names = tuple(getattr(self._registry.get_provider_class(provider_type), "known_models", ()))
                except Exception:  # noqa: BLE001 - an unimportable provider is reported when it is built
                    names = ()
            found = self._declared[provider_type] = frozenset(str(n) for n in names)
        return found

    def _judged_by_catalogue(self, provider_type: str) -> bool:
        from ..pricing._genai import GENAI_PROVIDER_IDS

        return provider_type in GENAI_PROVIDER_IDS and importlib.util.find_spec("genai_prices") is not None

    def check(self, model: str, targets: Sequence[DeploymentState], route: str) -> None:
        """Raise :class:`ConfigurationError` when ``model`` is not known to be served by ``targets``."""
        if not self.strict or model in self.configured or not targets:
            return
        near_alias = did_you_mean(model, self.aliases)
        book = self._book()
        for state in targets:
            if model in self.declared(state.provider_type):
                return
            rates = book.rates(model, state.provider_type, provider=state.provider_name,
                               base_url=state.deployment.base_url)
            if rates is not None and not (near_alias and rates.free):
                return  # priced: a [pricing] entry or the catalogue knows it (a local server prices any name)
            if not near_alias and not self._judged_by_catalogue(state.provider_type):
                return  # nothing to judge by: let the provider answer
        known = {*self.configured}
        for kind in {state.provider_type for state in targets}:
            known.update(self.declared(kind))
            known.update(_catalogue_models(kind))
        suggestions = did_you_mean(model, [*self.aliases, *sorted(known)])
        raise ConfigurationError(
            f"unknown model {model!r}: not a [models] alias, not configured on any provider, and provider "
            f"{route!r} is not known to serve it{suggestions} (fix: use an alias or a configured model, write "
            f"'{route}/{model}' to send the name as it is, or set strict_models = false)",
            source="call", key="model")

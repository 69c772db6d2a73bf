"""Configuration: pydantic models plus loaders for TOML, JSON, dicts and environment variables."""

from __future__ import annotations

from .manager import ConfigurationManager, ConfigValue
from .models import (
    BudgetConfig,
    Deployment,
    KeyConfig,
    ModelTarget,
    PricingOverride,
    ProviderConfig,
    RetryConfig,
    RouteConfig,
    SpoonConfig,
)
from .sources import CONFIG_FILE_ENV, ConfigWarning


def validate_model(provider: str, model: str, config: ConfigurationManager | None = None) -> bool:
    """True when ``model`` is usable with ``provider`` (see :meth:`ConfigurationManager.validate_model`).

    ``config`` defaults to the configuration found the usual way (file, then environment).
    """
    return (config if config is not None else ConfigurationManager()).validate_model(provider, model)


__all__ = [
    "CONFIG_FILE_ENV",
    "BudgetConfig",
    "ConfigValue",
    "ConfigWarning",
    "ConfigurationManager",
    "Deployment",
    "KeyConfig",
    "ModelTarget",
    "PricingOverride",
    "ProviderConfig",
    "RetryConfig",
    "RouteConfig",
    "SpoonConfig",
    "validate_model",
]

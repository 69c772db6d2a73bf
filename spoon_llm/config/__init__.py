"""Configuration: pydantic models plus loaders for TOML, JSON, dicts and environment variables."""

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
]

"""Where a Bedrock deployment's credentials and region come from, decided once when it is initialised.

In order (the first that applies wins):

1. a Bedrock API key -- ``api_key`` in the section, else ``AWS_BEARER_TOKEN_BEDROCK`` -- sent as
   ``Authorization: Bearer`` (no signing);
2. ``aws_access_key_id`` + ``aws_secret_access_key`` (+ ``aws_session_token``) in the section;
3. ``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``) in the environment, unless the
   section names an ``aws_profile``;
4. botocore's credential chain (shared config and credentials files with ``aws_profile``/``AWS_PROFILE``, SSO,
   assumed roles, web identity, container and instance metadata), refreshed by botocore when temporary. This
   needs the ``bedrock`` extra (botocore); the first three need nothing beyond the standard library.

Region: ``aws_region``, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else the profile's region (botocore).
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Mapping
from typing import Any

from ...errors import AuthenticationError, ConfigurationError, register_secret
from ._sigv4 import AwsCredentials

__all__ = ["BEDROCK_EXTRA", "CredentialSource", "resolve_auth"]

BEDROCK_EXTRA = 'pip install "spoon-llm[bedrock]"'
_PROVIDER = "bedrock"


class CredentialSource:
    """Hands out current credentials: fixed ones, or botocore's (refreshed in a worker thread when due)."""

    __slots__ = ("_botocore", "_fixed", "label")

    def __init__(self, fixed: AwsCredentials | None = None, botocore_credentials: Any = None, *,
                 label: str = "") -> None:
        self._fixed = fixed
        self._botocore = botocore_credentials
        #: Where the credentials came from (``config``, ``environment``, ``botocore:<method>``), for diagnostics.
        self.label = label

    async def get(self) -> AwsCredentials:
        """The credentials to sign the next request with."""
        if self._fixed is not None:
            return self._fixed
        creds = self._botocore
        try:
            # Refreshing temporary credentials may call STS or the metadata service: never on the event loop.
            refresh_needed = getattr(creds, "refresh_needed", None)
            if callable(refresh_needed) and refresh_needed():
                frozen = await asyncio.to_thread(creds.get_frozen_credentials)
            else:
                frozen = creds.get_frozen_credentials()
        except Exception as exc:  # botocore's own errors (STS, SSO, a credential process): none is ours
            raise AuthenticationError(f"AWS credentials ({self.label}) could not be refreshed: "
                                      f"{type(exc).__name__}: {exc}", provider=_PROVIDER) from exc
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        return AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token)


def _fixed(key_id: str, secret: str, token: str | None, label: str) -> CredentialSource:
    register_secret(secret)
    register_secret(token)
    return CredentialSource(AwsCredentials(key_id, secret, token or None), label=label)


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if callable(getter) else str(value)


def resolve_auth(config: Any, env: Mapping[str, str] | None = None
                 ) -> tuple[str | None, CredentialSource | None, str | None]:
    """``(bearer token, credential source, region)`` for a provider section; runs in a worker thread.

    Exactly one of the first two is set. Raises :class:`ConfigurationError` naming what to set when nothing
    usable is found, or the extra to install when only botocore could find credentials.
    """
    env = os.environ if env is None else env
    name = config.name or _PROVIDER
    region = config.aws_region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    bearer = config.primary_api_key() or env.get("AWS_BEARER_TOKEN_BEDROCK") or None
    if bearer:
        register_secret(bearer)
        return bearer, None, region
    key_id = config.aws_access_key_id
    secret = _secret(config.aws_secret_access_key)
    if key_id or secret:
        if not (key_id and secret):
            raise ConfigurationError(
                "aws_access_key_id and aws_secret_access_key go together: set both or neither",
                provider=_PROVIDER, key=f"providers.{name}.aws_secret_access_key" if key_id else
                f"providers.{name}.aws_access_key_id")
        return None, _fixed(key_id, secret, _secret(config.aws_session_token), "config"), region
    if config.aws_session_token is not None:
        raise ConfigurationError("aws_session_token needs aws_access_key_id and aws_secret_access_key",
                                 provider=_PROVIDER, key=f"providers.{name}.aws_session_token")
    if not config.aws_profile and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return None, _fixed(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN"),
                            "environment"), region
    return _from_botocore(config, name, region)


def _from_botocore(config: Any, name: str, region: str | None
                   ) -> tuple[str | None, CredentialSource | None, str | None]:
    try:
        # Imported by name: botocore ships no type information, and it is an optional extra.
        session_module = importlib.import_module("botocore.session")
        boto_error: type[Exception] = importlib.import_module("botocore.exceptions").BotoCoreError
    except ImportError as exc:
        raise ConfigurationError(
            f"no AWS credentials for provider {name!r}: set api_key (a Bedrock API key), aws_access_key_id and "
            f"aws_secret_access_key, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; profiles, SSO and roles need "
            f"botocore: {BEDROCK_EXTRA}",
            provider=_PROVIDER, key=f"providers.{name}.aws_access_key_id") from exc
    try:
        session = session_module.Session(profile=config.aws_profile or None)
        credentials = session.get_credentials()
        region = region or session.get_config_variable("region")
    except boto_error as exc:
        raise ConfigurationError(f"AWS credentials could not be loaded: {exc}", provider=_PROVIDER,
                                 key=f"providers.{name}.aws_profile") from exc
    if credentials is None:
        raise ConfigurationError(
            f"no AWS credentials found for provider {name!r} (profile {config.aws_profile or 'default'!r}): set "
            "api_key, aws_access_key_id/aws_secret_access_key, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or "
            "configure the profile in ~/.aws", provider=_PROVIDER, key=f"providers.{name}.aws_profile")
    return None, CredentialSource(botocore_credentials=credentials, label=f"botocore:{credentials.method}"), region

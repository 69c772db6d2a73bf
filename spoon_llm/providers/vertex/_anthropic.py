"""``VertexAnthropicProvider``: Anthropic's Claude models on Google Cloud Vertex AI.

Vertex AI serves Claude with Anthropic's own Messages format, so this class is the Anthropic provider with
Vertex's URLs and credentials; requests, answers, streams and errors go through the same mapping
(:mod:`spoon_llm.providers.anthropic`), on the same two transports:

* URLs: ``{base}/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:rawPredict``
  (``:streamRawPredict`` for streams; Anthropic's event stream comes back) and
  ``.../publishers/anthropic/models/count-tokens:rawPredict``. The model moves from the body into the URL and the
  body names the API version (``anthropic_version = "vertex-2023-10-16"``), as Anthropic's Vertex client sends it.
* Auth: an OAuth bearer token per request (:mod:`._credentials`: a fixed ``vertex_access_token``, a token
  provider, google-auth credentials or Application Default Credentials), refreshed before it expires and dropped
  after a 401. There is no API-key mode for Claude on Vertex AI.
* ``transport = "sdk"``: ``anthropic.AsyncAnthropicVertex``, with our current token in each request's headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from ...errors import LLMError
from .._common import CallOptions
from ..anthropic import AnthropicProvider
from ._auth import TokenProvider
from ._credentials import VertexCredentials

if TYPE_CHECKING:
    import httpx2

    from ...types import MessageInput

__all__ = ["VertexAnthropicProvider"]

PROVIDER = "vertex_anthropic"
#: The API version Claude on Vertex AI takes, in the request body (Anthropic's Vertex client sends the same).
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
_MESSAGES = "/v1/messages"
_COUNT_TOKENS = "/v1/messages/count_tokens"


class VertexAnthropicProvider(VertexCredentials, AnthropicProvider):
    """Claude models on Vertex AI (``{location}-aiplatform.googleapis.com``, or ``global``).

    Configuration: what :class:`~spoon_llm.providers.anthropic.AnthropicProvider` takes (but no ``api_key``), plus
    ``project`` (else ``GOOGLE_CLOUD_PROJECT`` or the credentials' project), ``vertex_location`` (else
    ``GOOGLE_CLOUD_LOCATION``, else ``global``) and one way to authenticate: ``vertex_access_token``,
    ``options.token_provider = "package.module:function"`` (or ``token_provider=``), ``credentials=`` (google-auth
    credentials), or, when none is given, Application Default Credentials (``pip install "spoon-llm[vertex]"``).

    Example::

        provider = VertexAnthropicProvider()
        await provider.initialize({"project": "my-project", "vertex_location": "us-east5",
                                   "model": "claude-sonnet-4-5@20250929"})   # Application Default Credentials
        response = await provider.chat([{"role": "user", "content": "Hello"}], max_tokens=256)
    """

    provider_name = PROVIDER
    supports_express: ClassVar[bool] = False
    default_model: ClassVar[str | None] = "claude-sonnet-4-5@20250929"
    default_base_url: ClassVar[str | None] = None  # from the location
    requires_api_key: ClassVar[bool] = False  # OAuth tokens only
    api_key_env: ClassVar[str | None] = None

    def __init__(self, client: Any = None, http_client: httpx2.AsyncClient | None = None, *,
                 token_provider: TokenProvider | None = None, credentials: Any = None) -> None:
        """Create the provider; ``initialize`` builds the client.

        ``token_provider`` returns a bearer token (``str`` or an ``AccessToken``, sync or async); ``credentials``
        is a google-auth credentials object. ``client`` (a ready-made ``AsyncAnthropicVertex``, which then
        authenticates itself) and ``http_client`` are as for the Anthropic provider.
        """
        super().__init__(client, http_client)
        self._init_credentials(token_provider, credentials)
        self._root = ""

    # -- set-up ---------------------------------------------------------------------------------------------

    async def _setup(self) -> None:
        await self._resolve_auth()
        await super()._setup()

    def _native_headers(self) -> dict[str, str]:
        headers = super()._native_headers()
        headers.pop("anthropic-version", None)  # Vertex AI reads the version from the body
        headers.pop("Authorization", None)  # a bearer token per request instead
        return headers

    def _configure(self) -> None:
        super()._configure()
        base = (self.base_url or "").rstrip("/")
        self._root = f"{base}/v1/projects/{self._project}/locations/{self._location}/publishers/anthropic/models/"

    def _build_sdk(self) -> Any:
        sdk = self._sdk_module()
        if self._injected is not None:
            return self._injected
        timeout, http_client = self._sdk_http(sdk)
        base = (self.base_url or "").rstrip("/") + "/v1"
        # access_token is a placeholder the client never sends: each request carries our current token.
        return sdk.AsyncAnthropicVertex(region=self._location, project_id=self._project, access_token="unused",
                                        base_url=base, timeout=timeout, max_retries=0, http_client=http_client,
                                        default_headers=dict(self.config.extra_headers) or None)

    # -- requests -------------------------------------------------------------------------------------------

    def _target(self, path: str, body: Mapping[str, Any] | None, model: str,
                stream: bool = False) -> tuple[Any, Mapping[str, Any] | None]:
        wire = dict(body or {})
        wire.setdefault("anthropic_version", VERTEX_ANTHROPIC_VERSION)
        if path == _COUNT_TOKENS:
            return self._root + "count-tokens:rawPredict", wire
        model = str(wire.pop("model", None) or model)
        return f"{self._root}{quote(model, safe='@.-_')}:{'streamRawPredict' if stream else 'rawPredict'}", wire

    async def _authorised(self, call: CallOptions) -> CallOptions:
        if self._tokens is None:  # an injected SDK client authenticates itself
            return call
        headers = dict(call.headers or {})
        headers["Authorization"] = f"Bearer {await self._tokens.token()}"
        return CallOptions(call.model, call.timeout, headers)

    async def _exchange(self, method: str, path: str, body: Mapping[str, Any] | None,
                        call: CallOptions) -> tuple[Any, Mapping[str, str]]:
        if body is not None:  # on both transports (the SDK would otherwise name its own default version)
            body = {**body, "anthropic_version": VERTEX_ANTHROPIC_VERSION}
        try:
            return await super()._exchange(method, path, body, await self._authorised(call))
        except LLMError as error:
            self._forget_refused_token(error)
            raise

    async def _open_stream(self, body: Mapping[str, Any], call: CallOptions) -> Any:
        body = {**body, "anthropic_version": VERTEX_ANTHROPIC_VERSION}
        try:
            return await super()._open_stream(body, await self._authorised(call))
        except LLMError as error:
            self._forget_refused_token(error)
            raise

    # -- what Vertex AI does not offer for Claude ------------------------------------------------------------

    async def list_models(self) -> list[str]:
        """The configured model: Vertex AI has no model listing for publisher models in a project."""
        self._ensure_ready()
        return [self.model] if self.model else []

    async def health_check(self) -> bool:
        """True when Vertex AI counts the tokens of a one-word request for the model (free: nothing is generated)."""
        if not self._initialized:
            return False
        probe: list[MessageInput] = [{"role": "user", "content": "ping"}]
        try:
            await self.count_tokens(probe)
        except LLMError:
            return False
        return True


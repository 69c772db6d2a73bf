"""``VertexProvider``: Gemini models on Google Cloud Vertex AI, sharing the Gemini provider's wire mapping.

Vertex AI speaks the Gemini REST format under its own resource paths, so this class is the Gemini provider with
Vertex's URLs, credentials and embedding methods; requests, responses, streams and errors go through the same
pure mapping (:mod:`spoon_llm.providers.gemini`), on the same two transports:

* URLs: ``{base}/{api_version}/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}``
  (``generateContent``, ``streamGenerateContent?alt=sse``, ``countTokens``, ``embedContent``, ``predict``); in
  express mode (an API key, no project) ``{base}/{api_version}/publishers/google/models/{model}:{method}``.
  The base URL follows the location (``https://{location}-aiplatform.googleapis.com/``, or
  ``https://aiplatform.googleapis.com/`` for ``global`` and express mode) unless ``base_url`` is configured.
* Auth: an API key (express mode, ``x-goog-api-key``) or an OAuth bearer token per request from
  :mod:`._auth` (fixed token, token provider, or Application Default Credentials), refreshed before it expires
  and dropped after a 401.
* ``transport = "sdk"``: ``google.genai.Client(vertexai=True, ...)`` through its request layer, with our token
  handed to it through a google-auth credentials object whose token we keep current.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import DECODE_FAULTS, ConfigurationError, LLMError, ResponseParsingError, ValidationError, malformed
from ...types import EmbeddingResponse, MessageInput, TokenUsage
from .._stream import StreamAccumulator
from ..base import require_sdk
from ..gemini import GeminiProvider
from ..gemini._decode import decode_embeddings, usage_from
from ..gemini._transport import GeminiTransport, RawSdkTransport, Translate
from ._auth import TokenProvider, TokenSource
from ._credentials import VertexCredentials

if TYPE_CHECKING:
    import httpx2

__all__ = ["VertexProvider"]

PROVIDER = "vertex"
DEFAULT_API_VERSION = "v1beta1"  # what google-genai uses for Vertex AI
DEFAULT_EMBEDDING_MODEL = "gemini-embedding-001"
#: ``predict`` takes up to 250 texts per call for the text-embedding models, one for gemini-embedding-001.
PREDICT_BATCH_SIZE = 250
_OPTIONS = frozenset({"schema_mode", "embedding_model", "token_provider", "gemini_sdk_api"})


def _predict_model(model: str) -> bool:
    """Whether ``model`` embeds through ``predict`` (the others, multimodal Gemini embedders, ``embedContent``)."""
    name = model.rsplit("/", 1)[-1]
    return "gemini" not in name or name.startswith(("gemini-embedding-001", "gemini-embedding-exp"))


class _SdkTransport(RawSdkTransport):
    """google-genai's request layer with our current bearer token put in the client's credentials first."""

    def __init__(self, client: Any, translate: Translate, tokens: TokenSource | None, credentials: Any) -> None:
        super().__init__(client, translate)
        self._tokens = tokens
        self._credentials = credentials

    async def _authorise(self) -> None:
        if self._tokens is not None:
            self._credentials.token = await self._tokens.token()

    async def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                   timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        """``POST {path}``."""
        await self._authorise()
        return await super().post(path, body, model, headers, timeout)

    async def get(self, path: str, timeout: float | None, model: str | None) -> bytes:
        """``GET {path}``."""
        await self._authorise()
        return await super().get(path, timeout, model)

    async def events(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                     timeout: float | None) -> AsyncGenerator[dict[str, Any], None]:
        """``streamGenerateContent?alt=sse``."""
        await self._authorise()
        chunks = super().events(path, body, model, headers, timeout)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()


def _bearer_credentials(quota_project: str | None) -> Any:
    """A google-auth credentials object carrying the token we set on it (google-genai adds the header)."""
    base: Any = require_sdk("google.auth.credentials", "vertex").Credentials

    class BearerCredentials(base):  # type: ignore[misc]
        """Never refreshes itself: the provider sets ``token`` before every call, ahead of expiry."""

        @property
        def quota_project_id(self) -> str | None:
            """Sent by google-genai as ``x-goog-user-project`` (the ADC's quota project, if any)."""
            return quota_project

        def refresh(self, request: Any) -> None:
            return None

    return BearerCredentials()


class VertexProvider(VertexCredentials, GeminiProvider):
    """Gemini models on Vertex AI (``{location}-aiplatform.googleapis.com``).

    Configuration: everything :class:`~spoon_llm.providers.gemini.GeminiProvider` takes, plus ``project`` (else
    ``GOOGLE_CLOUD_PROJECT`` or the project of the Application Default Credentials), ``vertex_location`` (else
    ``GOOGLE_CLOUD_LOCATION``, else ``global``), ``api_version`` (default ``v1beta1``), and one way to
    authenticate: ``api_key`` (express mode: no project or location), ``vertex_access_token`` (a fixed OAuth
    token), ``options.token_provider = "package.module:function"`` (or ``token_provider=`` to the constructor),
    ``credentials=`` (google-auth credentials, to the constructor), or, when none is given, Application Default
    Credentials (``pip install "spoon-llm[vertex]"``).

    Per-call keyword arguments are the Gemini provider's. ``embed`` uses ``embedContent`` for multimodal Gemini
    embedding models (``gemini-embedding-2``...) and ``predict`` for the others (default ``gemini-embedding-001``).

    Example::

        provider = VertexProvider()
        await provider.initialize({"project": "my-project", "vertex_location": "us-central1",
                                   "model": "gemini-2.5-flash"})          # Application Default Credentials
        response = await provider.chat([{"role": "user", "content": "Hello"}])
    """

    provider_name = PROVIDER
    default_model: ClassVar[str | None] = "gemini-2.5-flash"
    default_base_url: ClassVar[str | None] = None  # from the location
    requires_api_key: ClassVar[bool] = False  # OAuth tokens are the usual way in
    api_key_env: ClassVar[str | None] = "VERTEX_API_KEY"

    def __init__(self, client: Any = None, http_client: httpx2.AsyncClient | None = None, *,
                 token_provider: TokenProvider | None = None, credentials: Any = None) -> None:
        """Create the provider; ``initialize`` builds the client.

        ``token_provider`` returns a bearer token (``str`` or :class:`AccessToken`, sync or async);
        ``credentials`` is a google-auth credentials object (a service account's, say). ``client`` and
        ``http_client`` are as for the Gemini provider (an injected ``google.genai.Client`` brings its own auth).
        """
        super().__init__(client, http_client)
        self._init_credentials(token_provider, credentials)
        self._sdk_credentials: Any = None

    # -- configuration --------------------------------------------------------------------------------------

    @property
    def api_version(self) -> str:
        """The API version in every URL (``v1beta1`` unless configured)."""
        return self.config.api_version or DEFAULT_API_VERSION

    def _check_options(self) -> None:
        name = self.config.name or PROVIDER
        unknown = sorted(set(self.config.options) - _OPTIONS)
        if unknown:
            raise ConfigurationError(f"unknown option(s) {unknown} for the vertex provider; known: {sorted(_OPTIONS)}",
                                     provider=PROVIDER, key=f"providers.{name}.options")
        if self.config.options.get("gemini_sdk_api", "raw") != "raw":
            raise ConfigurationError("options.gemini_sdk_api: only 'raw' (google-genai's request layer) serves Vertex "
                                     "AI here", provider=PROVIDER, key=f"providers.{name}.options.gemini_sdk_api")

    async def _setup(self) -> None:
        self._check_options()
        await self._resolve_auth()
        await super()._setup()

    # -- transports -----------------------------------------------------------------------------------------

    def _native_auth(self) -> Callable[[], Awaitable[Mapping[str, str]]] | None:
        return self._tokens.headers if self._tokens is not None else None  # express mode: the key header

    def _new_transport(self) -> GeminiTransport:
        if self._native is not None:
            return super()._new_transport()  # the Gemini native transport, with _native_auth's bearer tokens
        if not RawSdkTransport.available(self._client):
            raise ConfigurationError("this google-genai version has no request layer for Vertex AI; use "
                                     "transport = \"native\"", provider=PROVIDER)
        return _SdkTransport(self._client, self._translate_sdk, self._tokens, self._sdk_credentials)

    def _new_sdk_client(self, genai: Any, http_options: Any) -> Any:
        """``google.genai.Client(vertexai=True)``: the key (express mode), or our bearer token via credentials."""
        if self.express:
            return genai.Client(vertexai=True, api_key=self.api_key, http_options=http_options)
        self._sdk_credentials = _bearer_credentials(self._quota_project)
        return genai.Client(vertexai=True, project=self._project, location=self._location,
                            credentials=self._sdk_credentials, http_options=http_options)

    def _model_path(self, model: str) -> str:
        """``projects/{p}/locations/{l}/publishers/google/models/{m}`` (express: from ``publishers/``).

        Full resource names (``projects/...``, ``publishers/...``) are kept as given.
        """
        if model.startswith(("projects/", "publishers/")):
            return model
        if model.startswith("models/"):
            model = model[7:]
        if self._project is None:
            return f"publishers/google/models/{model}"
        return f"projects/{self._project}/locations/{self._location}/publishers/google/models/{model}"

    # -- failures: a refused token is dropped so that the next attempt fetches a new one -------------------------

    def _translate_sdk(self, exc: BaseException, model: str | None) -> LLMError | None:
        mapped = None if isinstance(exc, LLMError) else super()._translate_sdk(exc, model)
        self._forget_refused_token(mapped if mapped is not None else exc)
        return mapped

    def _stream_failure(self, exc: BaseException, acc: StreamAccumulator, model: str) -> LLMError:
        error = super()._stream_failure(exc, acc, model)
        self._forget_refused_token(error)
        return error

    # -- operations Vertex spells differently --------------------------------------------------------------------

    async def count_tokens(self, messages: Sequence[MessageInput], **kwargs: Any) -> int:
        """Tokens of the request's contents, system instruction, tools and config (``countTokens``; free)."""
        body, call = self._prepare(messages, kwargs)
        request: dict[str, Any] = {k: body[k] for k in ("contents", "systemInstruction", "tools", "generationConfig")
                                   if k in body}
        async with self._sdk_errors(call.model):
            data = (await self._post_json(f"{self._model_path(call.model)}:countTokens", request, call.model))[0]
        return self._token_count(data, call.model)

    async def embed(self, inputs: str | Sequence[str], **kwargs: Any) -> EmbeddingResponse:
        """Embed texts, vectors in input order.

        Multimodal Gemini embedding models use ``embedContent`` (one text per request, sent concurrently); the
        others ``predict`` (up to 250 texts per request; one for gemini-embedding-001). Keyword arguments:
        ``model`` (default ``options.embedding_model`` or ``gemini-embedding-001``), ``task_type``,
        ``dimensions``, ``title``.
        """
        self._ensure_ready()
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if not texts:
            raise ValidationError("embed needs at least one input", provider=PROVIDER)
        model = str(kwargs.get("model") or self.config.options.get("embedding_model") or DEFAULT_EMBEDDING_MODEL)
        started = time.perf_counter()
        async with self._sdk_errors(model):
            if _predict_model(model):
                vectors, usage = await self._predict(model, texts, kwargs)
            else:
                vectors, usage = await self._embed_content(model, texts, kwargs)
        if len(vectors) != len(texts):
            raise ResponseParsingError(f"asked for {len(texts)} embeddings, got {len(vectors)}", provider=PROVIDER,
                                       model=model)
        try:
            return EmbeddingResponse(embeddings=vectors, provider=PROVIDER, model=model, usage=usage,
                                     duration=time.perf_counter() - started)
        except DECODE_FAULTS as exc:  # a vector holding something other than numbers
            raise malformed("the embeddings", vectors, exc, provider=PROVIDER, model=model) from exc

    async def _embed_content(self, model: str, texts: list[str], kwargs: Mapping[str, Any]
                             ) -> tuple[list[list[float]], TokenUsage | None]:
        config: dict[str, Any] = {}
        if kwargs.get("task_type"):
            config["taskType"] = str(kwargs["task_type"]).upper()
        dimensions = kwargs.get("dimensions", kwargs.get("output_dimensionality"))
        if dimensions:
            config["outputDimensionality"] = int(dimensions)
        if kwargs.get("title"):
            config["title"] = kwargs["title"]
        target = f"{self._model_path(model)}:embedContent"

        async def one(text: str) -> dict[str, Any]:
            body: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
            if config:
                body["embedContentConfig"] = config
            return (await self._post_json(target, body, model))[0]

        tasks = [asyncio.ensure_future(one(text)) for text in texts]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:  # the first failure (or a cancellation) stops the rest
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        vectors: list[list[float]] = []
        usage: TokenUsage | None = None
        for data in results:
            try:
                vectors.extend(decode_embeddings(data))
                piece = usage_from(data.get("usageMetadata"))
            except DECODE_FAULTS as exc:
                raise malformed("the embeddings", data, exc, provider=PROVIDER, model=model) from exc
            if piece is not None:
                usage = piece if usage is None else usage + piece
        return vectors, usage

    async def _predict(self, model: str, texts: list[str], kwargs: Mapping[str, Any]
                       ) -> tuple[list[list[float]], TokenUsage | None]:
        extra: dict[str, Any] = {}
        if kwargs.get("task_type"):
            extra["task_type"] = str(kwargs["task_type"]).upper()
        if kwargs.get("title"):
            extra["title"] = kwargs["title"]
        parameters: dict[str, Any] = {}
        dimensions = kwargs.get("dimensions", kwargs.get("output_dimensionality"))
        if dimensions:
            parameters["outputDimensionality"] = int(dimensions)
        size = 1 if "gemini" in model else PREDICT_BATCH_SIZE
        target = f"{self._model_path(model)}:predict"
        vectors: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), size):
            body: dict[str, Any] = {"instances": [{"content": text, **extra} for text in texts[start:start + size]]}
            if parameters:
                body["parameters"] = parameters
            data = (await self._post_json(target, body, model))[0]
            try:
                for prediction in data.get("predictions") or ():
                    embedding = prediction.get("embeddings") or {}
                    vectors.append(list(embedding.get("values") or ()))
                    tokens += int((embedding.get("statistics") or {}).get("token_count") or 0)
            except DECODE_FAULTS as exc:
                raise malformed("the embeddings", data, exc, provider=PROVIDER, model=model) from exc
        usage = TokenUsage(input_tokens=tokens, output_tokens=0, total_tokens=tokens) if tokens else None
        return vectors, usage

    async def health_check(self) -> bool:
        """True when Vertex AI describes the configured model (``GET publishers/google/models/{m}``: free)."""
        if not self._initialized:
            return False
        assert self._transport is not None
        try:
            async with self._sdk_errors(self.model):
                data = await self._get_json(f"publishers/google/models/{self.model}", self.model)
        except LLMError:
            return False
        return bool(data.get("name"))

"""``BedrockProvider``: AWS Bedrock Runtime over our native aiohttp client, SigV4-signed by :mod:`._sigv4`.

Two APIs, chosen per deployment (``bedrock_api``) or per call (``api=``):

* ``converse`` (default): ``POST /model/{id}/converse`` and ``/converse-stream`` -- one request shape for every
  model on Bedrock (:mod:`._convert`, :mod:`._decode`);
* ``invoke``: ``POST /model/{id}/invoke`` and ``/invoke-with-response-stream`` with Anthropic Messages bodies,
  mapped by the Anthropic provider's own :mod:`..anthropic._convert` / :mod:`..anthropic._decode`.

Streams are ``application/vnd.amazon.eventstream`` frames (:mod:`._eventstream`); an exception frame inside a 200
stream raises the mapped error (:func:`._errors.stream_exception`). There is no SDK transport: boto3 is
synchronous (running it in threads would be fake async) and aiobotocore pulls in a pinned botocore and its own
HTTP stack for what is one signed POST; botocore is only used, optionally, for its credential chain
(:mod:`._auth`). Neither path retries: the manager owns retries.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from ...errors import (
    DECODE_FAULTS,
    ConfigurationError,
    LLMError,
    NetworkError,
    ProviderError,
    ResponseParsingError,
    ResponseTooLargeError,
    ValidationError,
    malformed,
)
from ...transport import NATIVE_EXTRA, NativeSettings, dumps, load_native, loads, merge_headers, user_agent
from ...transport._config import native_available
from ...types import LLMResponse, LLMResponseChunk, Message, MessageInput, to_messages
from .._builtin import builtin_capabilities
from .._common import CallOptions, decoded_answer, stream_failure
from .._stream import StreamAccumulator
from ..anthropic._decode import StreamDecoder as AnthropicStreamDecoder
from ..anthropic._decode import decode_message as decode_anthropic
from ..base import BaseProvider
from ._auth import CredentialSource, resolve_auth
from ._convert import RequestDefaults, build_converse, build_invoke
from ._decode import ConverseStreamDecoder, decode_converse
from ._errors import error_from_response, stream_exception
from ._eventstream import EventStreamDecoder, EventStreamError, Frame
from ._sigv4 import SigV4Signer, amz_date

if TYPE_CHECKING:
    from ...transport._native import NativeClient

__all__ = ["BedrockProvider"]

PROVIDER = "bedrock"
_SIGNED_CONTENT_TYPE = {"content-type": "application/json"}
_OPERATIONS = {("converse", False): "converse", ("converse", True): "converse-stream",
               ("invoke", False): "invoke", ("invoke", True): "invoke-with-response-stream"}


def endpoint_for(region: str) -> str:
    """The public Bedrock Runtime endpoint of a region."""
    return f"https://bedrock-runtime.{region}.amazonaws.com"


class BedrockProvider(BaseProvider):
    """Models on AWS Bedrock through the Bedrock Runtime API (Converse, or InvokeModel for Anthropic bodies).

    Configuration: ``model`` (a model id or inference profile, e.g. ``us.anthropic.claude-sonnet-4-5-20250929-v1:0``),
    ``aws_region`` (else ``AWS_REGION``/``AWS_DEFAULT_REGION`` or the profile's region), credentials
    (``api_key`` for a Bedrock API key, else ``aws_access_key_id``/``aws_secret_access_key``/``aws_session_token``,
    else the environment, else botocore's chain with ``aws_profile``; see :mod:`._auth`), ``base_url`` (a VPC
    endpoint or a test server; default ``https://bedrock-runtime.{region}.amazonaws.com``), ``bedrock_api``
    (``converse`` or ``invoke``), ``timeout``/``connect_timeout``, ``max_connections``, ``keepalive_expiry``,
    ``max_tokens``, ``temperature``, ``top_p``, ``extra_headers``, ``extra_body``.

    Per-call keyword arguments (Converse): ``model``, ``max_tokens``, ``temperature``, ``top_p``, ``stop``,
    ``tools``, ``tool_choice``, ``response_format``/``json_schema``, ``thinking``, ``guardrail`` (a
    ``guardrailConfig`` dict), ``api``, ``extra_headers``, ``extra_body``, ``timeout``. With ``api="invoke"``
    the Anthropic provider's arguments apply.

    Example::

        provider = BedrockProvider()
        await provider.initialize({"aws_region": "us-east-1", "model": "amazon.nova-lite-v1:0"})
        response = await provider.chat([{"role": "user", "content": "Hello"}])
    """

    provider_name = PROVIDER
    capabilities = builtin_capabilities(PROVIDER)
    default_model: ClassVar[str | None] = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    requires_api_key: ClassVar[bool] = False
    api_key_env: ClassVar[str | None] = "AWS_BEARER_TOKEN_BEDROCK"

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        """Create the provider; ``initialize`` resolves credentials and opens the connection pool.

        ``clock`` replaces the current time in signatures (tests pin it to check a known signature).
        """
        super().__init__()
        self._clock = clock
        self._native: NativeClient | None = None
        self._signer: SigV4Signer | None = None
        self._credentials: CredentialSource | None = None
        self._bearer = False
        self._host = ""
        self._prefix = ""
        self._root = ""
        self._urls: dict[tuple[str, str], tuple[Any, str]] = {}
        self._url_type: Any = None
        self._defaults = RequestDefaults(model="")
        self.region = ""
        #: Always ``native``: Bedrock has no SDK transport here (see the module docstring).
        self.transport_name = "native"

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str | None:
        """The configured endpoint, else the region's public one."""
        return self.config.base_url or (endpoint_for(self.region) if self.region else None)

    async def _setup(self) -> None:
        cfg = self.config
        if "transport" in cfg.model_fields_set and cfg.transport != "native":
            raise ConfigurationError(
                f'the bedrock provider has only the native transport, not {cfg.transport!r}: remove transport or '
                'set transport = "native"', provider=PROVIDER, key=f"providers.{cfg.name}.transport")
        if not native_available():
            raise ConfigurationError(f"the bedrock provider needs aiohttp: {NATIVE_EXTRA}", provider=PROVIDER)
        # botocore (when the credential chain needs it) imports and reads files: keep it off the event loop.
        bearer, credentials, region = await asyncio.to_thread(resolve_auth, cfg)
        if not region:
            raise ConfigurationError(
                f"no AWS region for provider {cfg.name or PROVIDER!r}: set aws_region or AWS_REGION",
                provider=PROVIDER, key=f"providers.{cfg.name or PROVIDER}.aws_region")
        self.region = region
        self._urls = {}
        self._defaults = RequestDefaults(model=self.model, max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                                         top_p=cfg.top_p, extra_body=dict(cfg.extra_body))
        base = (self.base_url or "").rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"base_url must be an http(s) URL, not {base!r}", provider=PROVIDER,
                                     key=f"providers.{cfg.name or PROVIDER}.base_url")
        # The signed host is what aiohttp sends: the port only when it is not the scheme's default.
        default_port = 443 if parts.scheme == "https" else 80
        self._host = parts.hostname if parts.port in (None, default_port) else f"{parts.hostname}:{parts.port}"
        self._prefix = parts.path.rstrip("/")
        self._root = f"{parts.scheme}://{parts.netloc}"
        # No Accept header, as botocore sends none: InvokeModel's one names the model's answer type (added there).
        headers = {"User-Agent": user_agent()}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        self._bearer = bearer is not None
        self._credentials = credentials
        self._signer = SigV4Signer(region, "bedrock")
        module = await asyncio.to_thread(load_native)  # aiohttp costs ~150 ms to import: not on the loop
        self._url_type = module.URL
        native: NativeClient = module.NativeClient(NativeSettings.from_config(cfg),
                                                   merge_headers(headers, dict(cfg.extra_headers)),
                                                   provider=PROVIDER, base_url=base)
        native.open()  # last: nothing after it can fail and leave the pool open
        self._native = native

    async def _close(self) -> None:
        native, self._native = self._native, None
        if native is not None:
            await native.close()

    # -- plumbing -------------------------------------------------------------------------------------------

    def _target(self, model: str, operation: str) -> tuple[Any, str]:
        """The URL (parsed once, sent exactly as encoded) and the path to sign, per model and operation."""
        key = (model, operation)
        found = self._urls.get(key)
        if found is None:
            path = f"{self._prefix}/model/{quote(model, safe='')}/{operation}"
            found = self._urls[key] = (self._url_type(self._root + path, encoded=True), path)
        return found

    async def _auth_headers(self, path: str, body: bytes, call: CallOptions) -> dict[str, str] | None:
        """The call's own headers plus the SigV4 signature (none needed with a Bedrock API key)."""
        if self._bearer:
            return call.headers
        assert self._credentials is not None and self._signer is not None
        credentials = await self._credentials.get()
        stamp = amz_date(self._clock()) if self._clock is not None else None
        signed = self._signer.sign("POST", self._host, path, "", _SIGNED_CONTENT_TYPE, body, credentials,
                                   timestamp=stamp)
        return {**call.headers, **signed} if call.headers else signed

    def _api(self, kwargs: Mapping[str, Any]) -> str:
        namespaced = kwargs.get("bedrock")
        api = ((namespaced.get("api") if isinstance(namespaced, Mapping) else None) or kwargs.get("api")
               or self.config.bedrock_api)
        if api not in ("converse", "invoke"):
            raise ValidationError(f"api must be 'converse' or 'invoke', not {api!r}", provider=PROVIDER)
        return str(api)

    def _prepare(self, messages: Sequence[MessageInput], kwargs: Mapping[str, Any]
                 ) -> tuple[str, dict[str, Any], CallOptions]:
        self._ensure_ready()
        api = self._api(kwargs)
        build = build_converse if api == "converse" else build_invoke
        body, call = build(to_messages(messages), kwargs, self._defaults)
        return api, body, call

    async def _post(self, model: str, operation: str, body: Mapping[str, Any], call: CallOptions
                    ) -> tuple[Any, Mapping[str, str]]:
        """One signed POST; the decoded 2xx JSON and the response headers."""
        native = self._native
        assert native is not None
        url, path = self._target(model, operation)
        payload = dumps(body)
        headers = await self._auth_headers(path, payload, call)
        if operation == "invoke":
            headers = {**(headers or {}), "Accept": "application/json"}
        reply = await native.request("POST", url, body=payload, headers=headers, timeout=call.timeout, model=model)
        if not 200 <= reply.status < 300:
            raise error_from_response(reply.status, reply.content, reply.headers, model=model)
        try:
            return loads(reply.content), reply.headers
        except ValueError as exc:
            raise ResponseParsingError(f"the response is not valid JSON: {exc}", provider=PROVIDER,
                                       model=model) from exc

    # -- operations -----------------------------------------------------------------------------------------

    async def chat(self, messages: Sequence[MessageInput], **kwargs: Any) -> LLMResponse:
        """Send the conversation and return the whole answer."""
        started = time.perf_counter()
        api, body, call = self._prepare(messages, kwargs)
        data, headers = await self._post(call.model, _OPERATIONS[api, False], body, call)
        decode = decode_converse if api == "converse" else decode_anthropic
        answer = decoded_answer(decode, data, request_id=headers.get("x-amzn-requestid"), provider=PROVIDER,
                                model=call.model, started=started)
        answer.provider = PROVIDER
        if api == "invoke":
            answer.model = call.model  # the Anthropic body names the model Bedrock ran, if at all
        return answer

    async def _stream(self, messages: list[Message], **kwargs: Any) -> AsyncIterator[LLMResponseChunk]:
        api, body, call = self._prepare(messages, kwargs)
        model = call.model
        native = self._native
        assert native is not None
        url, path = self._target(model, _OPERATIONS[api, True])
        payload = dumps(body)
        headers = await self._auth_headers(path, payload, call)
        response = await native.stream("POST", url, body=payload, headers=headers, timeout=call.timeout,
                                       model=model)
        acc = StreamAccumulator(PROVIDER, model)
        try:
            if not 200 <= response.status_code < 300:
                raise error_from_response(response.status_code, await response.aread(), response.headers,
                                          model=model)
            acc.request_id = response.headers.get("x-amzn-requestid")
            converse = ConverseStreamDecoder(acc) if api == "converse" else None
            invoke = AnthropicStreamDecoder(acc) if converse is None else None
            frames = EventStreamDecoder()
            chunks = response.aiter_bytes()
            max_event, max_stream = self.config.max_event_bytes, self.config.max_stream_bytes
            received = 0
            while True:
                try:
                    raw = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except LLMError as exc:
                    raise self._failure(exc, acc, model) from exc
                received += len(raw)
                if received > max_stream:
                    raise _too_large("the streamed answer", max_stream, "max_stream_bytes", model)
                try:
                    decoded = frames.feed(raw)
                except EventStreamError as exc:
                    raise self._failure(ResponseParsingError(str(exc), provider=PROVIDER, model=model),
                                        acc, model) from exc
                # A message still arriving counts too, so that a huge one is refused before it is buffered whole.
                if frames.pending > max_event or any(len(frame.payload) > max_event for frame in decoded):
                    raise _too_large("one streamed event", max_event, "max_event_bytes", model)
                for frame in decoded:
                    chunk = self._apply(frame, converse, invoke, model)
                    if chunk is not None:
                        yield chunk
            try:
                frames.close()
            except EventStreamError as exc:
                raise self._failure(NetworkError(str(exc), provider=PROVIDER, model=model), acc, model) from exc
        finally:
            await response.aclose()
        done = converse.done if converse is not None else invoke is not None and invoke.done
        if not done:
            raise self._failure(NetworkError("the stream ended before the message stopped", provider=PROVIDER,
                                             model=model), acc, model)
        try:
            if converse is not None:
                converse.finish()
            elif invoke is not None:
                invoke.finish()
            final = acc.final_chunk()
        except DECODE_FAULTS as exc:  # usage or tool calls of the wrong type surface only now
            raise self._failure(malformed("the stream's closing state", str(exc), exc, provider=PROVIDER,
                                          model=model), acc, model) from exc
        yield final

    def _apply(self, frame: Frame, converse: ConverseStreamDecoder | None, invoke: AnthropicStreamDecoder | None,
               model: str) -> LLMResponseChunk | None:
        """Decode one event stream message and feed it to the API's decoder."""
        kind = frame.message_type
        if kind == "exception":
            raise stream_exception(frame.event_type, frame.payload, model=model)
        if kind == "error":
            message = str(frame.headers.get(":error-message") or "event stream error")
            raise ProviderError(message, provider=PROVIDER, model=model, error_type=frame.event_type)
        try:
            event = loads(frame.payload)
            if converse is not None:
                return converse.feed(frame.event_type, event)
            if frame.event_type != "chunk" or invoke is None:
                return None
            inner = loads(base64.b64decode(event["bytes"]))
            if inner.get("type") == "message_start":
                # The answer is reported under the Bedrock model id (what prices and routes know), as chat() does,
                # not the Anthropic model name inside the event.
                inner["message"].pop("model", None)
            return invoke.feed(inner)
        except LLMError:
            raise
        except DECODE_FAULTS as exc:
            preview = frame.payload[:200].decode("utf-8", errors="replace")
            raise ResponseParsingError(f"unexpected stream event {frame.event_type!r}: {preview!r}",
                                       provider=PROVIDER, model=model) from exc

    @staticmethod
    def _failure(error: LLMError, acc: StreamAccumulator, model: str) -> LLMError:
        if not isinstance(error, ProviderError):
            return error
        return stream_failure(error, acc, PROVIDER, model)

    async def count_tokens(self, messages: Sequence[MessageInput], **kwargs: Any) -> int:
        """Input tokens of a Converse request (messages, system, tools) from Bedrock's free CountTokens API."""
        _, body, call = self._prepare(messages, {**kwargs, "api": "converse"})
        converse = {key: body[key] for key in ("messages", "system", "toolConfig") if key in body}
        data, _ = await self._post(call.model, "count-tokens", {"input": {"converse": converse}}, call)
        try:
            return int(data["inputTokens"])
        except DECODE_FAULTS as exc:
            raise malformed("the token count", data, exc, provider=PROVIDER, model=call.model) from exc

    async def health_check(self) -> bool:
        """True when Bedrock accepts our credentials for the model (a free CountTokens call).

        A ``ValidationException`` still means healthy: Bedrock checked the signature and the model first, and
        some models simply do not offer token counting.
        """
        if not self._initialized:
            return False
        try:
            await self.count_tokens([Message.user("ping")])
        except ProviderError as exc:
            return exc.error_type == "ValidationException" and "model identifier" not in exc.message
        except LLMError:
            return False
        return True


def _too_large(what: str, limit: int, setting: str, model: str) -> ResponseTooLargeError:
    """The error an SSE stream over the same cap raises (:class:`~spoon_llm.transport.SSEParser`), for Bedrock's."""
    return ResponseTooLargeError(f"{what} exceeds {limit} bytes; raise the provider's {setting} if such answers are "
                                 "expected", provider=PROVIDER, model=model, retryable=False)

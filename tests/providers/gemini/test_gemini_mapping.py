"""Pure wire mapping of the Gemini provider: requests, JSON schemas, responses, stream chunks, errors."""

from __future__ import annotations

from typing import Any

import pytest

from spoon_llm.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderUnavailableError,
    RateLimitError,
    ServiceUnavailableError,
    TimeoutError,
    TokenLimitError,
    ValidationError,
)
from spoon_llm.providers._stream import StreamAccumulator
from spoon_llm.providers.gemini._convert import (
    SYNTHETIC_PREFIX,
    RequestDefaults,
    build_embed_request,
    build_request,
    convert_tool_choice,
    model_path,
)
from spoon_llm.providers.gemini._decode import (
    StreamDecoder,
    decode_embeddings,
    decode_response,
    map_finish_reason,
    usage_from,
)
from spoon_llm.providers.gemini._errors import error_from_body
from spoon_llm.providers.gemini._schema import SchemaConversionError, to_gemini_schema
from spoon_llm.types import DocumentPart, ImagePart, Message, TextPart, ToolCall, to_messages

DEFAULTS = RequestDefaults(model="gemini-test")


def body_of(messages: Any, **kwargs: Any) -> dict[str, Any]:
    body, _ = build_request(to_messages(messages), kwargs, DEFAULTS)
    return body


# -- requests ---------------------------------------------------------------------------------------------


def test_whole_history_with_tool_calls_and_results() -> None:
    messages = [
        Message.system("Be terse."),
        Message.user("Weather in Paris and Rome?"),
        Message.assistant("Checking.", tool_calls=[
            ToolCall(id="gemini-call-1", function={"name": "weather", "arguments": '{"city": "Paris"}'},  # type: ignore[arg-type]
                     provider_data={"gemini": {"thoughtSignature": "c2ln"}}),
            ToolCall.create("weather", {"city": "Rome"}, id="call_real_2"),
        ]),
        Message.tool("gemini-call-1", {"temp": 21}),
        Message.tool("call_real_2", "18C"),
        Message.user("Thanks"),
    ]
    body = body_of(messages)
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
        {"role": "model", "parts": [
            {"text": "Checking."},
            {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
            {"functionCall": {"name": "weather", "args": {"city": "Rome"}, "id": "call_real_2"}},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "weather", "response": {"result": "18C"}, "id": "call_real_2"}},
            {"text": "Thanks"},
        ]},
    ]


def test_tool_result_without_a_matching_call_needs_a_name() -> None:
    with pytest.raises(ValidationError, match="function name"):
        body_of([Message.tool("unknown", "x")])
    body = body_of([Message.tool("unknown", "x", name="lookup")])
    assert body["contents"][0]["parts"][0]["functionResponse"]["name"] == "lookup"


def test_images_documents_inline_and_by_uri() -> None:
    parts = [TextPart(text="see"), ImagePart(data="aGk=", media_type="image/jpeg"),
             ImagePart(url="data:image/webp;base64,AAAA"), ImagePart(url="gs://bucket/cat.png"),
             DocumentPart(data="JVBERi0="), DocumentPart(url="https://x/doc.pdf")]
    assert body_of([Message.user(parts)])["contents"][0]["parts"] == [
        {"text": "see"},
        {"inlineData": {"mimeType": "image/jpeg", "data": "aGk="}},
        {"inlineData": {"mimeType": "image/webp", "data": "AAAA"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/cat.png"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x/doc.pdf"}},
    ]


def test_preserved_parts_go_back_verbatim() -> None:
    parts = [{"text": "thinking...", "thought": True}, {"text": "Answer", "thoughtSignature": "QUJD"},
             {"executableCode": {"code": "print(1)", "language": "PYTHON"}}]
    turn = Message(role="assistant", content="Answer", provider_data={"gemini": {"parts": parts}})
    assert body_of([Message.user("q"), turn])["contents"][1]["parts"] == parts
    edited = Message(role="assistant", content="Edited", provider_data={"gemini": {"parts": parts}})
    assert body_of([Message.user("q"), edited])["contents"][1]["parts"] == [{"text": "Edited"}]


def test_generation_config_and_options() -> None:
    body = body_of("hi", temperature=0.1, top_p=0.8, top_k=3, max_tokens=50, stop=["X"], seed=7,
                   presence_penalty=0.5, candidate_count=2, thinking=512, reasoning_effort="low",
                   safety_settings=[{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
                   cached_content="cachedContents/abc", extra_body={"generationConfig": {"responseLogprobs": True}})
    assert body["generationConfig"] == {
        "temperature": 0.1, "topP": 0.8, "topK": 3, "maxOutputTokens": 50, "stopSequences": ["X"], "seed": 7,
        "presencePenalty": 0.5, "candidateCount": 2,
        "thinkingConfig": {"thinkingBudget": 512, "includeThoughts": True, "thinkingLevel": "low"},
        "responseLogprobs": True,
    }
    assert body["safetySettings"][0]["threshold"] == "BLOCK_NONE"
    assert body["cachedContent"] == "cachedContents/abc"


def test_json_mode_and_response_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    config = body_of("hi", response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
                     )["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseSchema": {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}
    config = body_of("hi", json_schema=schema, schema_mode="json_schema")["generationConfig"]
    assert config["responseJsonSchema"] == schema
    assert body_of("hi", json=True)["generationConfig"] == {"responseMimeType": "application/json"}


def test_tools_and_tool_choice() -> None:
    tools = [
        {"name": "search", "description": "Search", "parameters": {"type": "object", "properties": {
            "q": {"type": ["string", "null"]}}}},
        {"googleSearch": {}},
    ]
    body = body_of("hi", tools=tools, tool_choice="search")
    assert body["tools"] == [
        {"functionDeclarations": [{"name": "search", "description": "Search", "parameters": {
            "type": "object", "properties": {"q": {"type": "string", "nullable": True}}}}]},
        {"googleSearch": {}},
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["search"]}}
    assert convert_tool_choice("auto") == {"functionCallingConfig": {"mode": "AUTO"}}
    assert convert_tool_choice("none") == {"functionCallingConfig": {"mode": "NONE"}}
    assert convert_tool_choice("required") == {"functionCallingConfig": {"mode": "ANY"}}
    assert convert_tool_choice({"type": "function", "function": {"name": "f"}}) == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}
    native = {"functionCallingConfig": {"mode": "VALIDATED"}}
    assert convert_tool_choice(native) == native
    json_mode = body_of("hi", tools=tools[:1], schema_mode="json_schema")["tools"][0]["functionDeclarations"][0]
    assert json_mode["parametersJsonSchema"] == tools[0]["parameters"]


def test_unknown_kwargs_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown argument 'topk'"):
        body_of("hi", topk=1)
    assert body_of("hi", parallel_tool_calls=False, user="u") == {"contents": [{"role": "user",
                                                                              "parts": [{"text": "hi"}]}]}


def test_embed_request_and_model_paths() -> None:
    assert model_path("gemini-2.5-flash") == "models/gemini-2.5-flash"
    assert model_path("tunedModels/mine") == "tunedModels/mine"
    assert build_embed_request("gemini-embedding-001", ["a", "b"], {"task_type": "retrieval_query",
                                                                    "dimensions": 8}) == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "taskType": "RETRIEVAL_QUERY",
         "outputDimensionality": 8},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}, "taskType": "RETRIEVAL_QUERY",
         "outputDimensionality": 8},
    ]}


# -- JSON schema conversion -------------------------------------------------------------------------------


def test_schema_refs_anyof_nullable_const_and_dropped_keywords() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "Address": {"type": "object", "properties": {"city": {"type": "string", "format": "uri"}},
                        "required": ["city", "ghost"], "additionalProperties": False},
            "Kind": {"enum": ["a", "b"]},
        },
        "properties": {
            "home": {"$ref": "#/$defs/Address", "description": "Where they live"},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
            "either": {"oneOf": [{"type": "string"}, {"type": "number"}]},
            "kind": {"$ref": "#/$defs/Kind"},
            "fixed": {"const": "yes"},
            "level": {"type": "integer", "enum": [1, 2, 3], "description": "Level."},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
            "when": {"type": "string", "format": "date-time", "examples": ["2024-01-01T00:00:00Z"]},
            "merged": {"allOf": [{"$ref": "#/$defs/Address"}, {"properties": {"zip": {"type": "string"}}}]},
        },
        "required": ["home"],
    }
    assert to_gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "home": {"type": "object", "description": "Where they live", "properties": {"city": {"type": "string"}},
                     "required": ["city"]},
            "maybe": {"type": "integer", "default": None, "nullable": True},
            "either": {"anyOf": [{"type": "string"}, {"type": "number"}]},
            "kind": {"enum": ["a", "b"], "type": "string"},
            "fixed": {"enum": ["yes"], "type": "string"},
            "level": {"type": "integer", "description": "Level. Allowed values: 1, 2, 3."},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "when": {"type": "string", "format": "date-time", "example": "2024-01-01T00:00:00Z"},
            "merged": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                       "required": ["city"]},
        },
        "required": ["home"],
    }


def test_schema_multi_type_and_recursive_refs() -> None:
    assert to_gemini_schema({"type": ["string", "integer", "null"]}) == {
        "anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True}
    recursive = {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}},
                 "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}}}
    with pytest.raises(SchemaConversionError, match="recursive \\$ref '#/\\$defs/Node'.*schema_mode='json_schema'"):
        to_gemini_schema(recursive, where="tool 'tree'")
    with pytest.raises(SchemaConversionError, match="recursive"):
        to_gemini_schema({"type": "object", "properties": {"self": {"$ref": "#"}}})
    with pytest.raises(SchemaConversionError, match="only local"):
        to_gemini_schema({"$ref": "https://example.com/schema.json"})
    with pytest.raises(ValidationError, match="tool 'tree'"):
        body_of("hi", tools=[{"name": "tree", "parameters": recursive}])


# -- responses --------------------------------------------------------------------------------------------


def test_decode_response_with_thoughts_calls_and_usage() -> None:
    data = {
        "candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
            {"text": "Let me think", "thought": True},
            {"text": "```json\n{\"a\": 1}\n```"},
            {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "U0lH"},
            {"functionCall": {"id": "fc_2", "name": "g"}},
        ]}, "safetyRatings": [{"category": "X", "probability": "NEGLIGIBLE"}]}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 7,
                          "cachedContentTokenCount": 4, "totalTokenCount": 22},
        "modelVersion": "gemini-2.5-flash-001", "responseId": "r1",
    }
    response = decode_response(data)
    assert response.content == "```json\n{\"a\": 1}\n```"  # returned unaltered: no fence stripping
    assert response.reasoning == "Let me think"
    first, second = response.tool_calls
    assert first.id is not None and first.id.startswith(SYNTHETIC_PREFIX)
    assert (first.name, first.arguments) == ("f", {"x": 1})
    assert first.provider_data == {"gemini": {"thoughtSignature": "U0lH"}}
    assert (second.id, second.name, second.arguments) == ("fc_2", "g", {})
    assert (response.finish_reason, response.native_finish_reason) == ("tool_calls", "STOP")
    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens, usage.cached_input_tokens,
            usage.total_tokens) == (10, 12, 7, 4, 22)
    assert response.model == "gemini-2.5-flash-001"
    assert response.metadata["safety_ratings"] == [{"category": "X", "probability": "NEGLIGIBLE"}]
    # The parts (signatures included) travel back with the next turn.
    turn = response.to_message()
    assert turn.provider_data == {"gemini": {"parts": data["candidates"][0]["content"]["parts"]}}
    history = [Message.user("q"), turn, Message.tool(first.id, "1"), Message.tool("fc_2", "2")]
    body = body_of(history)
    assert body["contents"][1]["parts"] == data["candidates"][0]["content"]["parts"]
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"result": 1}}},
        {"functionResponse": {"name": "g", "response": {"result": 2}, "id": "fc_2"}},
    ]


@pytest.mark.parametrize(("native", "ours"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
    ("BLOCKLIST", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "error"), ("LANGUAGE", "other"), ("OTHER", "other"), ("NEW_REASON", "other"),
    (None, None),
])
def test_finish_reason_mapping(native: str | None, ours: str | None) -> None:
    assert map_finish_reason(native) == ours


def test_blocked_prompt_is_a_content_filter_finish() -> None:
    response = decode_response({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
                                "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}})
    assert response.content == ""
    assert (response.finish_reason, response.native_finish_reason) == ("content_filter", None)
    assert response.metadata["block_reason"] == "SAFETY"


def test_usage_absent() -> None:
    assert usage_from(None) is None


def test_stream_chunks_merge_text_and_keep_signatures() -> None:
    acc = StreamAccumulator("gemini", "m")
    decoder = StreamDecoder(acc)
    chunks = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hmm", "thought": True}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "lo", "thoughtSignature": "U0lH"}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
                         "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 3, "thoughtsTokenCount": 1,
                           "totalTokenCount": 6}, "modelVersion": "gemini-x", "responseId": "r"},
    ]
    pieces = [piece for chunk in chunks for piece in decoder.feed(chunk)]
    assert decoder.complete
    decoder.finish()
    assert "".join(p.delta for p in pieces if p.kind == "text") == "Hello"
    assert acc.reasoning_text == "Hmm"
    assert [(c.name, c.arguments) for c in acc.tool_calls] == [("f", {"a": 1})]
    assert (acc.finish_reason, acc.native_finish_reason, acc.model) == ("tool_calls", "STOP", "gemini-x")
    assert acc.usage is not None and (acc.usage.output_tokens, acc.usage.total_tokens) == (4, 6)
    assert acc.metadata["provider_data"]["gemini"]["parts"] == [
        {"text": "Hmm", "thought": True}, {"text": "Hello", "thoughtSignature": "U0lH"},
        {"functionCall": {"name": "f", "args": {"a": 1}}}]


def test_decode_embeddings() -> None:
    assert decode_embeddings({"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]}) == [[0.1, 0.2],
                                                                                               [0.3, 0.4]]
    assert decode_embeddings({"embedding": {"values": [1.0]}}) == [[1.0]]


# -- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "rpc", "message", "details", "cls"), [
    (400, "INVALID_ARGUMENT", "Invalid JSON payload", None, InvalidRequestError),
    (400, "INVALID_ARGUMENT", "The input token count (2000000) exceeds the maximum number of tokens allowed "
     "(1048576).", None, TokenLimitError),
    (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
     [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}], AuthenticationError),
    (401, "UNAUTHENTICATED", "no creds", None, AuthenticationError),
    (403, "PERMISSION_DENIED", "denied", None, PermissionDeniedError),
    (404, "NOT_FOUND", "models/x is not found", None, ModelNotFoundError),
    (429, "RESOURCE_EXHAUSTED", "quota", [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                           "retryDelay": "37s"}], RateLimitError),
    (500, "INTERNAL", "oops", None, ProviderUnavailableError),
    (503, "UNAVAILABLE", "overloaded", None, ServiceUnavailableError),
    (504, "DEADLINE_EXCEEDED", "deadline", None, TimeoutError),
])
def test_error_from_body(status: int, rpc: str, message: str, details: Any, cls: type) -> None:
    error_body: dict[str, Any] = {"code": status, "message": message, "status": rpc}
    if details:
        error_body["details"] = details
    error = error_from_body(status, {"error": error_body}, {"x-request-id": "r-1"}, model="gemini-x")
    assert type(error) is cls
    assert (error.status_code, error.error_type, error.error_code, error.message) == (status, rpc, str(status),
                                                                                      message)
    assert (error.provider, error.model, error.request_id) == ("gemini", "gemini-x", "r-1")
    if status == 429:
        assert error.retry_after == 37.0 and error.retryable


def test_error_body_variants() -> None:
    listed = error_from_body(None, [{"error": {"code": 404, "message": "gone", "status": "NOT_FOUND"}}])
    assert isinstance(listed, ModelNotFoundError) and listed.status_code == 404
    plain = error_from_body(502, "upstream", None)
    assert isinstance(plain, ProviderUnavailableError) and plain.message == "upstream"

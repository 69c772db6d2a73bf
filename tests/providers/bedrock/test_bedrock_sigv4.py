"""SigV4: published test vectors, botocore's signer as a reference, and what the provider puts on the wire.

* :class:`SigV4Signer` reproduces the AWS SigV4 test suite's ``get-vanilla`` / ``post-vanilla`` signatures and a
  Bedrock Converse request's signature (fixed credentials, fixed clock -> a known value, checked once against
  botocore and pinned here);
* where botocore is installed it is the reference for more shapes (session tokens, ARNs in the path);
* end to end, a provider with a pinned clock sends exactly the signature botocore computes for the request a
  plain socket server received (host with port, path, body bytes), and the simulator refuses requests that are not
  SigV4-shaped;
* a Bedrock API key travels as a bearer token instead, and credentials come from the section or the environment.
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pytest
from _bedrock_helpers import ACCESS_KEY, REGION, SECRET_KEY

from spoon_llm.errors import AuthenticationError, ConfigurationError
from spoon_llm.providers.bedrock import BedrockProvider
from spoon_llm.providers.bedrock._sigv4 import AwsCredentials, SigV4Signer
from spoon_llm.testing import Fault, ProviderSimulator

CREDENTIALS = AwsCredentials(ACCESS_KEY, SECRET_KEY)
PINNED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
CONVERSE_PATH = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
HELLO = b'{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}'


def test_aws_test_suite_vectors() -> None:
    signer = SigV4Signer("us-east-1", "service")
    get = signer.sign("GET", "example.amazonaws.com", "/", "", {}, b"", CREDENTIALS, timestamp="20150830T123600Z")
    assert get["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    post = signer.sign("POST", "example.amazonaws.com", "/", "", {}, b"", CREDENTIALS, timestamp="20150830T123600Z")
    assert post["Authorization"].endswith("Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
    assert get["x-amz-date"] == "20150830T123600Z"


def test_known_bedrock_signature_with_fixed_credentials_and_clock() -> None:
    signer = SigV4Signer(REGION)
    headers = signer.sign("POST", "bedrock-runtime.us-east-1.amazonaws.com", CONVERSE_PATH, "",
                          {"content-type": "application/json"}, HELLO, CREDENTIALS, timestamp="20260102T030405Z")
    assert headers == {
        "x-amz-date": "20260102T030405Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/bedrock/aws4_request, "
                         "SignedHeaders=content-type;host;x-amz-date, "
                         "Signature=a11c91f6c34762fc25714faa65f78558bf9da09b5c8ef7cfc0da81c9afa9e802",
    }
    temporary = AwsCredentials(ACCESS_KEY, SECRET_KEY, "FwoGZXIvYXdzEXAMPLETOKEN")
    with_token = signer.sign("POST", "bedrock-runtime.us-east-1.amazonaws.com", CONVERSE_PATH, "",
                             {"content-type": "application/json"}, HELLO, temporary, timestamp="20260102T030405Z")
    assert with_token["x-amz-security-token"] == "FwoGZXIvYXdzEXAMPLETOKEN"
    assert with_token["Authorization"].endswith(
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
        "Signature=540b14280e381cd190d97f404d3901b3cd5708665f8b386346ec64e486af45ef")
    # Another day derives another signing key (the cached one must not be reused).
    later = signer.sign("POST", "bedrock-runtime.us-east-1.amazonaws.com", CONVERSE_PATH, "",
                        {"content-type": "application/json"}, HELLO, CREDENTIALS, timestamp="20260103T030405Z")
    assert later["Authorization"].split("Signature=")[1] != headers["Authorization"].split("Signature=")[1]


def botocore_authorization(method: str, url: str, headers: dict[str, str], body: bytes,
                           credentials: AwsCredentials, when: datetime, region: str = REGION) -> str:
    """What botocore's ``SigV4Auth`` puts in ``Authorization`` for this request at ``when``."""
    from unittest import mock

    auth = pytest.importorskip("botocore.auth")
    awsrequest = pytest.importorskip("botocore.awsrequest")
    botocreds = pytest.importorskip("botocore.credentials")
    request = awsrequest.AWSRequest(method=method, url=url, data=body, headers=headers)
    naive = when.astimezone(timezone.utc).replace(tzinfo=None)
    with mock.patch.object(auth, "get_current_datetime", return_value=naive):  # botocore's clock, not ours
        auth.SigV4Auth(botocreds.Credentials(credentials.access_key_id, credentials.secret_access_key,
                                             credentials.session_token), "bedrock", region).add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize("model", ["anthropic.claude-3-haiku-20240307-v1:0", "us.amazon.nova-lite-v1:0",
                                   "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2"])
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLETOKEN"])
def test_signer_agrees_with_botocore(model: str, token: str | None) -> None:
    credentials = AwsCredentials(ACCESS_KEY, SECRET_KEY, token)
    path = f"/model/{quote(model, safe='')}/converse-stream"
    expected = botocore_authorization("POST", f"https://bedrock-runtime.us-east-1.amazonaws.com{path}",
                                      {"Content-Type": "application/json"}, HELLO, credentials, PINNED)
    ours = SigV4Signer(REGION).sign("POST", "bedrock-runtime.us-east-1.amazonaws.com", path, "",
                                    {"content-type": "application/json"}, HELLO, credentials,
                                    timestamp="20260102T030405Z")
    assert ours["Authorization"] == expected


class CaptureServer:
    """A plain HTTP/1.1 server on 127.0.0.1 that keeps each request and answers with a fixed Converse body."""

    ANSWER = json.dumps({"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
                         "stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 1,
                                                             "totalTokens": 2}}).encode()

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((method, target, headers, body))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(self.ANSWER), self.ANSWER))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> CaptureServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def capture() -> AsyncIterator[CaptureServer]:
    async with CaptureServer() as server:
        yield server


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLETOKEN"])
async def test_provider_sends_the_reference_signature_for_a_pinned_clock(capture: CaptureServer,
                                                                         token: str | None) -> None:
    provider = BedrockProvider(clock=lambda: PINNED)
    config: dict[str, Any] = {"base_url": f"http://127.0.0.1:{capture.port}", "aws_region": REGION,
                              "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY,
                              "model": "anthropic.claude-3-haiku-20240307-v1:0"}
    if token:
        config["aws_session_token"] = token
    await provider.initialize(config)
    try:
        answer = await provider.chat("Hello")
    finally:
        await provider.cleanup()
    assert answer.content == "ok"
    method, target, headers, body = capture.requests[0]
    assert target == CONVERSE_PATH
    assert headers["x-amz-date"] == "20260102T030405Z"
    assert headers.get("x-amz-security-token") == token
    expected = botocore_authorization(method, f"http://127.0.0.1:{capture.port}{target}",
                                      {"Content-Type": headers["content-type"]}, body,
                                      AwsCredentials(ACCESS_KEY, SECRET_KEY, token), PINNED)
    assert headers["authorization"] == expected


def _post(url: str, headers: dict[str, str]) -> tuple[int, str | None, dict[str, Any]]:
    request = urllib.request.Request(url, data=HELLO, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, None, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("x-amzn-errortype"), json.loads(exc.read())


@pytest.mark.parametrize(("headers", "error_type"), [
    ({}, "MissingAuthenticationTokenException"),
    ({"Authorization": "AWS4-HMAC-SHA256 garbage", "X-Amz-Date": "20260102T030405Z"},
     "IncompleteSignatureException"),
    ({"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/bedrock/aws4_request, "
                       "SignedHeaders=content-type;host, Signature=" + "0" * 64, "X-Amz-Date": "20260102T030405Z"},
     "IncompleteSignatureException"),
    ({"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/s3/aws4_request, "
                       "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64, "X-Amz-Date": "20260102T030405Z"},
     "IncompleteSignatureException"),
    ({"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/bedrock/aws4_request, "
                       "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64}, "IncompleteSignatureException"),
    ({"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/bedrock/aws4_request, "
                       "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64, "X-Amz-Date": "20260102T030405Z"},
     None),
    ({"Authorization": "Bearer ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl"}, None),
])
async def test_the_simulator_checks_sigv4_shaped_headers(sim: ProviderSimulator, headers: dict[str, str],
                                                         error_type: str | None) -> None:
    url = f"{sim.base_url}{CONVERSE_PATH}"
    status, got_type, body = await asyncio.to_thread(_post, url, headers)
    if error_type is None:
        assert status == 200 and body["stopReason"] == "end_turn"
    else:
        assert (status, got_type and got_type.split(":")[0]) == (403, error_type)
        assert body["message"]


async def test_signed_requests_pass_the_simulator_and_a_refusal_is_an_authentication_error(
        sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    assert (await provider.chat("hi")).content == "Simulated reply to: hi"
    request = sim.last_request("bedrock")
    assert request.header("x-amz-date") is not None
    assert request.header("authorization") is not None  # masked in the records; its shape was checked
    sim.fault("bedrock", Fault.error(403, "The security token included in the request is invalid.",
                                     error_type="UnrecognizedClientException"))
    with pytest.raises(AuthenticationError) as info:
        await provider.chat("hi")
    assert (info.value.status_code, info.value.error_type) == (403, "UnrecognizedClientException")
    assert not info.value.retryable


async def test_a_bedrock_api_key_is_a_bearer_token(sim: ProviderSimulator, capture: CaptureServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    provider = BedrockProvider()
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl")
    await provider.initialize({"base_url": f"http://127.0.0.1:{capture.port}", "aws_region": REGION})
    try:
        await provider.chat("Hello")
        assert "ABSK" not in repr(provider)
    finally:
        await provider.cleanup()
    _, _, headers, _ = capture.requests[0]
    assert headers["authorization"] == "Bearer ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl"
    assert "x-amz-date" not in headers


async def test_credentials_from_the_environment(capture: CaptureServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    provider = BedrockProvider()
    await provider.initialize({"base_url": f"http://127.0.0.1:{capture.port}"})
    try:
        await provider.chat("Hello")
    finally:
        await provider.cleanup()
    authorization = capture.requests[0][2]["authorization"]
    assert "Credential=AKIDENVIRONMENT/" in authorization and "/eu-west-3/bedrock/aws4_request" in authorization


@pytest.mark.parametrize(("config", "key"), [
    ({"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}, "aws_region"),
    ({"aws_region": REGION, "aws_access_key_id": ACCESS_KEY}, "aws_secret_access_key"),
    ({"aws_region": REGION, "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY,
      "transport": "sdk"}, "transport"),
])
async def test_configuration_errors_name_the_key(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        await BedrockProvider().initialize(config)
    assert key in str(info.value.key)
    assert SECRET_KEY not in str(info.value)


async def test_no_credentials_at_all_is_a_clear_error(sim: ProviderSimulator) -> None:
    # The environment is empty and the AWS config files do not exist (conftest), so botocore finds nothing.
    pytest.importorskip("botocore")
    with pytest.raises(ConfigurationError) as info:
        await BedrockProvider().initialize({"aws_region": REGION, "base_url": sim.base_url})
    assert "no AWS credentials" in str(info.value)


async def test_credentials_and_region_from_a_profile_through_botocore(capture: CaptureServer, tmp_path: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("botocore")
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[dev]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = {SECRET_KEY}\n")
    config = tmp_path / "config"
    config.write_text("[profile dev]\nregion = ap-south-2\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDIGNORED")  # a named profile wins over the environment
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    provider = BedrockProvider()
    await provider.initialize({"base_url": f"http://127.0.0.1:{capture.port}", "aws_profile": "dev"})
    try:
        await provider.chat("Hello")
    finally:
        await provider.cleanup()
    authorization = capture.requests[0][2]["authorization"]
    assert "Credential=AKIDPROFILE/" in authorization and "/ap-south-2/bedrock/aws4_request" in authorization


async def test_temporary_credentials_from_a_credential_process(capture: CaptureServer, tmp_path: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore runs the process (a real subprocess) and refreshes what it returns before it expires.
    pytest.importorskip("botocore")
    script = tmp_path / "creds.py"
    script.write_text(
        "import datetime, json\n"
        "expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)\n"
        f"print(json.dumps({{'Version': 1, 'AccessKeyId': 'ASIATEMPORARY', 'SecretAccessKey': '{SECRET_KEY}', "
        "'SessionToken': 'FwoGZXIvYXdzTEMPORARY', 'Expiration': expires.isoformat()}))\n")
    config = tmp_path / "config"
    config.write_text(f"[profile tools]\ncredential_process = {sys.executable} {script}\nregion = us-west-2\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "tools")
    provider = BedrockProvider()
    await provider.initialize({"base_url": f"http://127.0.0.1:{capture.port}"})
    try:
        await provider.chat("Hello")
        await provider.chat("Again")
    finally:
        await provider.cleanup()
    for _, _, headers, _ in capture.requests:
        assert headers["x-amz-security-token"] == "FwoGZXIvYXdzTEMPORARY"
        assert "Credential=ASIATEMPORARY/" in headers["authorization"]
        assert "/us-west-2/bedrock/" in headers["authorization"]


async def test_a_failed_credential_refresh_is_an_authentication_error(capture: CaptureServer, tmp_path: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The process answers once (botocore's first load), then fails; its credentials expire within botocore's
    # mandatory refresh window, so the first request must refresh them.
    pytest.importorskip("botocore")
    script = tmp_path / "creds.py"
    counter = tmp_path / "calls"
    script.write_text(
        "import datetime, json, pathlib, sys\n"
        f"counter = pathlib.Path({str(counter)!r})\n"
        "calls = int(counter.read_text()) if counter.exists() else 0\n"
        "counter.write_text(str(calls + 1))\n"
        "if calls:\n"
        "    sys.exit('the identity provider is down')\n"
        "expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2)\n"
        f"print(json.dumps({{'Version': 1, 'AccessKeyId': 'ASIATEMPORARY', 'SecretAccessKey': '{SECRET_KEY}', "
        "'SessionToken': 'FwoGZXIvYXdzTEMPORARY', 'Expiration': expires.isoformat()}))\n")
    config = tmp_path / "config"
    config.write_text(f"[profile tools]\ncredential_process = {sys.executable} {script}\nregion = us-west-2\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    provider = BedrockProvider()
    await provider.initialize({"base_url": f"http://127.0.0.1:{capture.port}", "aws_profile": "tools"})
    try:
        with pytest.raises(AuthenticationError, match="could not be refreshed") as info:
            await provider.chat("Hello")
    finally:
        await provider.cleanup()
    assert SECRET_KEY not in str(info.value)
    assert capture.requests == []
    assert counter.read_text() == "2"

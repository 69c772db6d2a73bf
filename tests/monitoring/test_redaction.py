"""The redaction rules: key shapes, registered secrets, credential headers, secret-named fields, truncation."""

from pydantic import BaseModel, SecretStr

from spoon_llm.errors import AuthenticationError, register_secret
from spoon_llm.monitoring import Redactor, redact
from spoon_llm.monitoring.redaction import MASK, is_secret_field, truncate


def test_vendor_key_shapes_and_bearer_tokens_are_masked_in_text():
    text = "sk-proj-abcdefghijklmnop and AIzaSyA1234567890abcdefghijkl and Bearer abc.def-ghijklmnop"
    cleaned = redact(text)
    assert "abcdefghijklmnop" not in cleaned and "AIzaSy" not in cleaned and "ghijklmnop" not in cleaned


def test_registered_secrets_are_masked_whatever_their_shape():
    secret = "plain-looking-value-7f3a9"
    register_secret(secret)
    assert secret not in redact({"note": f"value {secret} inside"})["note"]


def test_credential_headers_and_secret_fields_are_masked_by_name():
    headers = {"Authorization": "whatever", "X-Api-Key": "k", "x-goog-api-key": "g", "Accept": "json"}
    assert redact(headers) == {"Authorization": MASK, "X-Api-Key": MASK, "x-goog-api-key": MASK, "Accept": "json"}
    nested = {"config": {"api_key": "x", "client_secret": "y", "password": "z", "access_token": "t", "token": "u",
                         "private_key": "p"}}
    assert set(redact(nested)["config"].values()) == {MASK}


def test_token_counts_are_not_secrets():
    usage = {"max_tokens": 100, "input_tokens": 3, "total_tokens": 9, "token_count": 4}
    assert redact(usage) == usage
    assert is_secret_field("refresh_token") and not is_secret_field("max_completion_tokens")


def test_configured_extra_fields():
    redactor = Redactor(extra_fields={"X-Gateway-Auth"})
    assert redactor({"x-gateway-auth": "v", "other": "v"}) == {"x-gateway-auth": MASK, "other": "v"}
    redactor.add_fields("session")
    assert redactor({"session": "v"}) == {"session": MASK}


def test_models_secrets_errors_bytes_and_sequences():
    class Settings(BaseModel):
        api_key: SecretStr
        name: str

    assert redact(Settings(api_key=SecretStr("s3cr3t-value"), name="n")) == {"api_key": MASK, "name": "n"}
    assert redact(SecretStr("x")) == MASK
    error = AuthenticationError("bad key sk-abcdefghijklmnopqrstu", provider="openai")
    assert "abcdefghijklmnop" not in redact(error) and redact(error).startswith("AuthenticationError")
    assert redact([b"Bearer abcdefghijklmnop", ("sk-abcdefghijklmnop",)]) == ["Bearer ***", ["***"]]


def test_truncation_says_what_was_dropped():
    assert truncate("abcdef", 4) == "abcd... [2 more chars]"
    assert truncate("abc", None) == "abc"
    assert redact({"text": "x" * 50}, limit=10)["text"].startswith("x" * 10 + "...")


def test_deep_structures_are_cut_not_recursed_forever():
    deep: dict = {}
    node = deep
    for _ in range(50):
        node["next"] = {}
        node = node["next"]
    assert "..." in repr(redact(deep))

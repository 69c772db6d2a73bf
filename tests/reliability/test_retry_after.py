"""``Retry-After`` parsing never raises: seconds, ``retry-after-ms``, HTTP dates, garbage, absurd values."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spoon_llm._headers import MAX_RETRY_AFTER, parse_retry_after

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after": "7"}, 7.0),
    ({"Retry-After": "1.5"}, 1.5),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
    ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
    ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, None),  # already past
    ({"retry-after": "Fri, 31 Dec 99999 23:59:59 GMT"}, MAX_RETRY_AFTER),  # a 5-digit year
    ({"retry-after": email.utils.formatdate(NOW + 10 * 365 * 86400, usegmt=True)}, MAX_RETRY_AFTER),
    ({"retry-after": "1e400"}, MAX_RETRY_AFTER),
    ({"retry-after": "inf"}, MAX_RETRY_AFTER),
    ({"retry-after": "9" * 5000}, MAX_RETRY_AFTER),
    ({"retry-after": "nan"}, None),
    ({"retry-after": "-3"}, None),
    ({"retry-after": "soon, promise"}, None),
    ({"retry-after": "Mon, 99 Foo 2020 99:99:99 +9999"}, None),
    ({}, None),
])
def test_retry_after_values(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=60), ms=st.one_of(st.none(), st.text(max_size=20)))
def test_retry_after_never_raises(value: str, ms: str | None) -> None:
    headers = {"retry-after": value, **({"retry-after-ms": ms} if ms is not None else {})}
    wait = parse_retry_after(headers, now=NOW)
    assert wait is None or 0.0 <= wait <= MAX_RETRY_AFTER

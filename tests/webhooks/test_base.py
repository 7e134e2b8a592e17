from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhooks import (
    ADAPTERS,
    Malformed,
    PermanentError,
    PlatformAdapter,
    TransientError,
    get_adapter,
)
from webhooks.base import parse_json, split_text, utc_from_millis, utc_from_seconds, utf16_len


def test_registry_has_every_platform() -> None:
    assert set(ADAPTERS) == {"vk", "telegram", "ok", "max", "generic"}
    for name, adapter in ADAPTERS.items():
        assert adapter.name == name
        assert isinstance(adapter, PlatformAdapter)
        assert get_adapter(name) is adapter
    with pytest.raises(KeyError):
        get_adapter("facebook")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xd0", "UTF-8"),
        (b"", "not valid JSON"),
        (b'{"a": }', "not valid JSON"),
        (b'"text"', "JSON object, got str"),
        (b"null", "JSON object, got NoneType"),
    ],
)
def test_parse_json_errors_are_clear(body: bytes, message: str) -> None:
    with pytest.raises(Malformed, match=message):
        parse_json(body)


def test_parse_json_returns_the_object() -> None:
    assert parse_json('{"текст": 1}'.encode()) == {"текст": 1}


def test_errors_carry_their_details() -> None:
    transient = TransientError("VK error 6", 1.5)
    assert (str(transient), transient.retry_after) == ("VK error 6", 1.5)
    assert TransientError("x").retry_after is None
    permanent = PermanentError("privacy", "Настройки приватности")
    assert (permanent.code, permanent.message_ru) == ("privacy", "Настройки приватности")


def test_timestamps_are_utc_aware() -> None:
    seconds = utc_from_seconds(1760422353)
    millis = utc_from_millis("1760422353123")
    assert seconds is not None
    assert millis is not None
    assert seconds.utcoffset() is not None
    assert millis.microsecond == 123000
    assert utc_from_seconds(None) is None
    assert utc_from_seconds(True) is None


@given(
    st.text(alphabet=st.sampled_from("аб 🙂\nx"), max_size=400),
    st.integers(min_value=2, max_value=60),
)
def test_split_text_keeps_every_word_within_the_limit(text: str, limit: int) -> None:
    parts = split_text(text, limit, utf16_len)
    assert parts
    assert all(utf16_len(part) <= limit for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_split_text_prefers_paragraphs_then_words() -> None:
    assert split_text("один два\n\nтри четыре", 12) == ["один два", "три четыре"]
    assert split_text("один два три", 9) == ["один два", "три"]
    assert split_text("короткий", 100) == ["короткий"]
    assert split_text("", 10) == [""]

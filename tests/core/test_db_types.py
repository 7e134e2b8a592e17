"""The UTC time type's SQLite text: what SQLAlchemy's own SQLite DATETIME writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.base import DATETIME

from app.core.db import UTCDateTime

_TIMES = [
    datetime(2026, 12, 7, 18, 14, 21, 700444, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=UTC),  # no fraction: still six digits
    datetime(2026, 3, 4, 5, 6, 7, 8, tzinfo=timezone(timedelta(hours=5))),  # another offset
    datetime(999, 1, 1, tzinfo=UTC),  # a year of three digits
]


@pytest.mark.parametrize("at", _TIMES)
def test_sqlite_text_is_sqlalchemys_and_reads_back_as_the_same_instant(at: datetime) -> None:
    dialect = sqlite.dialect()
    utc = UTCDateTime()
    text = utc.bind_processor(dialect)(at)
    # SQLAlchemy's two steps: the type's normalisation, then SQLite DATETIME's format.
    expected = DATETIME().bind_processor(dialect)(utc.process_bind_param(at, dialect))
    assert text == expected
    back = utc.result_processor(dialect, None)(text)
    assert back == at and back.tzinfo is UTC


def test_sqlite_text_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().bind_processor(sqlite.dialect())(datetime(2026, 1, 1))

"""Database outage: webhooks answer 503 with Retry-After and never `ok`, /readyz is 503,
pages say so in Russian; when the database is back everything resumes without a restart
and nothing acknowledged is lost.

The application runs as in `otklik serve`'s web process with processing beside it (its
processor thread); the database fails underneath it:

- PostgreSQL unreachable: the app talks to PostgreSQL through a TCP proxy this test
  starts; the outage closes the proxy (refused connections, established ones cut), the
  return listens again on the same port.
- SQLite read-only, and SQLite full: SQLite's own `query_only` and `max_page_count` set on
  every connection of the app, so SQLite itself refuses the writes (SQLITE_READONLY,
  SQLITE_FULL), and lifted again.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth import tokens as auth_tokens
from app.auth.models import Role
from app.core.config import Settings
from app.core.db import make_engine
from app.demo import deliveries as d
from app.directory import service as directory_service
from app.directory.models import Platform
from tests.answering.web import csrf
from tests.conftest import SECRET
from tests.factories.auth import make_user
from tests.factories.directory import cipher, make_page
from tests.reliability.harness import TcpProxy
from webhooks import PageSecrets


class Fault(Protocol):
    engine: sa.Engine

    def down(self) -> None: ...

    def up(self) -> None: ...


@dataclass
class PostgresUnreachable:
    proxy: TcpProxy
    engine: sa.Engine

    def down(self) -> None:
        self.proxy.down()

    def up(self) -> None:
        self.proxy.up()


@dataclass
class SqlitePragmaFault:
    """A SQLite state applied to every connection the app has or will open."""

    engine: sa.Engine
    on: str  # the PRAGMA that brings the fault
    off: str
    connections: list[Any] = field(default_factory=list)
    active: bool = False

    def __post_init__(self) -> None:
        sa.event.listen(self.engine, "connect", self._connected)

    def _connected(self, dbapi_connection: Any, _record: Any) -> None:
        self.connections.append(dbapi_connection)
        if self.active:
            dbapi_connection.execute(self.on)

    def _apply(self, sql: str) -> None:
        for connection in self.connections:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed since
                connection.execute(sql)

    fill: Path | None = None  # the file to fill up, for a full disk

    def down(self) -> None:
        self.active = True
        self._apply(self.on)
        if self.fill is not None:
            # Pages freed earlier would still take writes: use them up, as a full disk would.
            with contextlib.closing(sqlite3.connect(self.fill, isolation_level=None)) as db:
                # The filler's own table first: with no free page left, creating it
                # under the limit would fail instead of filling.
                db.execute("CREATE TABLE IF NOT EXISTS _filler (x BLOB)")
                db.execute(self.on)
                with contextlib.suppress(sqlite3.OperationalError):
                    for _ in range(100_000):
                        db.execute("INSERT INTO _filler VALUES (randomblob(512))")

    def up(self) -> None:
        self.active = False
        self._apply(self.off)
        if self.fill is not None:
            with contextlib.closing(sqlite3.connect(self.fill, isolation_level=None)) as db:
                db.execute(self.off)
                db.execute("DROP TABLE IF EXISTS _filler")


def _copy_sqlite(source: sa.Engine, target: Path) -> str:
    """A migrated, empty SQLite file of the app's own (the session's engine stays intact)."""
    raw = source.raw_connection()
    try:
        destination = sqlite3.connect(target)
        raw.driver_connection.backup(destination)  # type: ignore[union-attr]
        destination.execute("VACUUM")  # no free pages: "full" means full
        destination.close()
    finally:
        raw.close()
    return f"sqlite:///{target}"


@pytest.fixture(
    params=[
        pytest.param("postgres_unreachable", marks=pytest.mark.postgres),
        pytest.param("sqlite_read_only", marks=pytest.mark.sqlite),
        pytest.param("sqlite_full", marks=pytest.mark.sqlite),
    ]
)
def fault(
    request: pytest.FixtureRequest, live_engine: sa.Engine, tmp_path: Path
) -> Iterator[Fault]:
    kind: str = request.param
    if kind == "postgres_unreachable":
        url = live_engine.url
        proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
        proxy.up()
        engine = make_engine(
            url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        )
        try:
            yield PostgresUnreachable(proxy, engine)
        finally:
            proxy.down()
            engine.dispose()
        return
    path = tmp_path / "outage.db"
    engine = make_engine(_copy_sqlite(live_engine, path))
    if kind == "sqlite_read_only":
        fault: Fault = SqlitePragmaFault(engine, "PRAGMA query_only=1", "PRAGMA query_only=0")
    else:
        # max_page_count cannot go below the file's size: the file is full as it is.
        fault = SqlitePragmaFault(
            engine, "PRAGMA max_page_count=1", "PRAGMA max_page_count=1073741823", fill=path
        )
    try:
        yield fault
    finally:
        fault.up()
        engine.dispose()


def _comment(page: PageSecrets, n: int) -> tuple[str, bytes, dict[str, str]]:
    body = d.vk_comment(
        page,
        str(410_000_000 + n),
        post=700 + n,
        comment_id=20_000 + n,
        # Longer than a page of the file: storing it needs new pages ("full" bites).
        text=f"Обращение {n}: " + "во дворе не убран снег, " * 300,
        at=datetime.now(UTC),
    )
    delivery = d.signed(page, body, datetime.now(UTC))
    return f"/webhooks/vk/{page.key}", delivery.body, delivery.headers


def _stored(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, count(*) FROM inbound_event GROUP BY status"))
        return {str(s): int(n) for s, n in rows}


def _messages(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM message WHERE source = 'citizen'")
            ).scalar_one()
        )


def test_a_database_outage_answers_503_and_everything_resumes_after_it(
    fault: Fault, tmp_path: Path
) -> None:
    from app.main import create_app

    engine = fault.engine
    with Session(engine) as session:
        page_row = make_page(session, platform=Platform.vk)
        admin = make_user(session, Role.admin, name="Администратор")
        _, api_token = auth_tokens.create_token(session, admin, "outage")
        session.commit()
        page = directory_service.page_secrets(page_row, cipher())
        login = admin.login
    settings = Settings(
        database_url=str(engine.url),
        secret_key=SECRET,  # type: ignore[arg-type]
        base_url="https://otklik.example.ru",
        run_worker=False,
        var_dir=tmp_path / "var",
    )
    app = create_app(
        settings,
        engine=engine,
        http=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(599))),
        run_worker=False,
        process_events=True,
    )
    bearer = {"Authorization": f"Bearer {api_token}"}
    with TestClient(app, base_url="https://otklik.example.ru") as client:
        token = csrf(client.get("/login").text)
        signed_in = client.post(
            "/login",
            data={"login": login, "password": "correct horse battery", "csrf_token": token},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        before = _comment(page, 1)
        assert client.post(before[0], content=before[1], headers=before[2]).text == "ok"
        question_id = _first_question(engine)
        form_token = csrf(client.get(f"/questions/{question_id}").text)
        note = {"note_text": "Проверить в понедельник", "csrf_token": form_token}

        fault.down()
        during = _comment(page, 2)
        for _ in range(3):  # the platform retries; the answer stays 503 while it lasts
            answer = client.post(during[0], content=during[1], headers=during[2])
            assert answer.status_code == 503, answer.text
            assert answer.text != "ok"
            assert int(answer.headers["retry-after"]) > 0
        ready = client.get("/readyz")
        page_answer = client.get("/inbox")
        api_answer = client.get("/api/v1/questions", headers=bearer)
        note_answer = client.post(
            f"/questions/{question_id}/notes", data=note, follow_redirects=False
        )

        fault.up()
        # VK delivers again what was not answered `ok`; then new traffic flows.
        again = client.post(during[0], content=during[1], headers=during[2])
        after = _comment(page, 3)
        later = client.post(after[0], content=after[1], headers=after[2])
        inbox_after = client.get("/inbox")
        deadline = time.monotonic() + 30
        while _stored(engine) != {"processed": 3} and time.monotonic() < deadline:
            time.sleep(0.1)

    # An unreachable database cannot even be read; a read-only or full one can.
    unreadable = isinstance(fault, PostgresUnreachable)
    # A full file still takes a write that fits in its pages (a short note may).
    may_fit = isinstance(fault, SqlitePragmaFault) and fault.fill is not None
    if not may_fit:
        # Unreachable, or refusing writes: readiness says so.
        assert ready.status_code == 503, ready.text
        assert ready.headers.get("retry-after")
        code = "database_unreachable" if unreadable else "database_read_only"
        assert ready.json()["error"]["code"] == code
    refused = [page_answer] if unreadable else []
    if not may_fit or note_answer.status_code == 503:
        refused.append(note_answer)
    for answer in refused:
        assert answer.status_code == 503, answer.text
        assert "Сервис временно недоступен" in answer.text
        assert "База данных временно недоступна" in answer.text
        assert "Traceback" not in answer.text and "sqlalchemy" not in answer.text.lower()
        assert int(answer.headers["retry-after"]) > 0
    if unreadable:
        assert api_answer.status_code == 503
        assert api_answer.json()["error"]["code"] == "unavailable"
        assert api_answer.headers["retry-after"]
    else:
        assert (page_answer.status_code, api_answer.status_code) == (200, 200)
    assert (again.status_code, again.text) == (200, "ok")
    assert (later.status_code, later.text) == (200, "ok")
    assert inbox_after.status_code == 200
    assert _stored(engine) == {"processed": 3}, "processing did not resume"
    assert _messages(engine) == 3
    with Session(engine) as session:
        notes = session.exec(
            sa.text("SELECT count(*) FROM timeline_entry WHERE kind = 'note'")  # type: ignore[call-overload]
        ).one()
    assert notes[0] == (0 if note_answer in refused else 1)


def _first_question(engine: sa.Engine) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT min(id) FROM question")).scalar_one()
        if found is not None:
            return int(found)
        time.sleep(0.05)
    raise AssertionError("the first delivery was never processed")


@pytest.mark.postgres
def test_a_database_that_accepts_and_never_answers_gives_503_in_bounded_time(
    live_engine: sa.Engine, tmp_path: Path
) -> None:
    """PostgreSQL up but silent (overloaded, or packets dropped): requests answer 503
    within the connect timeout instead of hanging, and work resumes when it answers."""
    from app.core.db import CONNECT_TIMEOUT
    from app.main import create_app

    url = live_engine.url
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.up()
    engine = make_engine(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    )
    try:
        with Session(engine) as session:
            rows = [make_page(session, platform=Platform.vk) for _ in range(2)]
            session.commit()
            cached, fresh = (directory_service.page_secrets(r, cipher()) for r in rows)
        settings = Settings(
            database_url=str(engine.url),
            secret_key=SECRET,  # type: ignore[arg-type]
            run_worker=False,
            var_dir=tmp_path / "var",
        )
        app = create_app(settings, engine=engine, run_worker=False, process_events=True)
        with TestClient(app) as client:
            first = _comment(cached, 1)
            assert client.post(first[0], content=first[1], headers=first[2]).text == "ok"
            proxy.stall()
            answers: list[tuple[int, float]] = []

            def post(delivery: tuple[str, bytes, dict[str, str]]) -> None:
                started = time.monotonic()
                answer = client.post(delivery[0], content=delivery[1], headers=delivery[2])
                answers.append((answer.status_code, time.monotonic() - started))

            # A page not yet known to the process (its lookup), and one it knows (the write).
            for delivery in (_comment(fresh, 2), _comment(cached, 3)):
                worker = threading.Thread(target=post, args=(delivery,), daemon=True)
                worker.start()
                worker.join(CONNECT_TIMEOUT * 3)
                assert not worker.is_alive(), "the request hangs on a silent database"
            assert [status for status, _ in answers] == [503, 503]
            assert max(seconds for _, seconds in answers) < CONNECT_TIMEOUT * 2

            proxy.up()
            # The platforms resend until `ok` (attempts in flight when it came back fail).
            deadline = time.monotonic() + 60
            for delivery in (_comment(fresh, 2), _comment(cached, 3)):
                while (
                    client.post(delivery[0], content=delivery[1], headers=delivery[2]).text != "ok"
                ):
                    assert time.monotonic() < deadline, "not stored after the database returned"
                    time.sleep(0.2)
            deadline = time.monotonic() + 60
            while _stored(engine) != {"processed": 3}:
                assert time.monotonic() < deadline, _stored(engine)
                time.sleep(0.1)
    finally:
        proxy.down()
        engine.dispose()

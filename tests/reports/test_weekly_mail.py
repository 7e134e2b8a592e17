"""The weekly report goes out by e-mail on Monday morning in the supervisor's zone,
once per week however many workers run, through a real SMTP conversation with a tiny
local server; a failed send is tried again by a later run."""

from __future__ import annotations

import email
import io
import socket
import socketserver
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlmodel import Session, select

from app.auth.models import Notification, Role
from app.core.config import Settings
from app.core.crypto import Cipher
from app.jobs.context import JobContext
from app.reports import weekly_mail
from tests.conftest import SECRET, FrozenClock
from tests.factories.auth import make_user
from tests.reports import world


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO, MAIL, RCPT, DATA, QUIT."""

    def handle(self) -> None:
        self.wfile.write(b"220 fake ESMTP\r\n")
        lines: list[bytes] | None = None
        while line := self.rfile.readline():
            if lines is not None:
                if line.rstrip(b"\r\n") == b".":
                    self.server.messages.append(b"".join(lines))  # type: ignore[attr-defined]
                    lines = None
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-fake\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                lines = []
                self.wfile.write(b"354 end with .\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp() -> Iterator[Any]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _context(
    connection: sa.Connection, settings: Settings, clock: FrozenClock, port: int
) -> JobContext:
    def sessions() -> Session:
        return Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    return JobContext(
        engine=connection.engine,
        settings=settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_starttls": False,
                "base_url": "https://otklik.example.ru",
            }
        ),
        clock=clock,
        http=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500))),
        cipher=Cipher(SECRET),
        session_factory=sessions,
    )


def test_the_weekly_report_is_mailed_on_monday_morning_once(
    connection: sa.Connection,
    session: Session,
    settings: Settings,
    clock: FrozenClock,
    smtp: Any,
) -> None:
    w = world.build(session, settings)
    boss = make_user(session, Role.supervisor, territory_id=w["region"].id, email="cur@example.ru")
    make_user(session, Role.supervisor, territory_id=w["town_a"].id)  # no e-mail: none
    session.commit()
    clock.now = world.local(16, 7)  # Monday 07:00 in Yekaterinburg: too early
    assert weekly_mail.send_weekly_reports(_context(connection, settings, clock, 0)) == 0

    # The first attempt fails (nothing listens): the claim is given back.
    clock.now = world.local(16, 8)
    assert weekly_mail.send_weekly_reports(_context(connection, settings, clock, _free_port())) == 0
    assert session.exec(select(Notification).where(Notification.user_id == boss.id)).all() == []

    ctx = _context(connection, settings, clock, smtp.server_address[1])
    assert weekly_mail.send_weekly_reports(ctx) == 1
    clock.advance(hours=3)
    assert weekly_mail.send_weekly_reports(ctx) == 0  # once per week
    (raw,) = smtp.messages
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "cur@example.ru"
    assert message["Subject"] == "Отклик: отчёт за неделю 09.03.2026 – 15.03.2026 (МСК+2)"
    text = message.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert "Получено: 7\u00a0вопросов" in content
    assert "Первый ответ в срок: 60 % (3 из 5)" in content
    assert "https://otklik.example.ru/dashboard?period=last_week" in content
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "otchet-2026-W11.xlsx"
    book = load_workbook(io.BytesIO(attachment.get_content()))
    summary = {row[0]: row[1] for row in book["Итоги"].iter_rows(min_row=4, values_only=True)}
    assert summary["Получено вопросов"] == 7
    # The supervisor's list says the report went out; the bell stays quiet.
    (note,) = session.exec(select(Notification).where(Notification.user_id == boss.id)).all()
    assert note.read_at is not None and note.delivered_at is not None
    assert "cur@example.ru" in note.text

    # Next Monday brings the next week's report.
    clock.advance(days=7)
    assert weekly_mail.send_weekly_reports(ctx) == 1
    assert len(smtp.messages) == 2


def test_nothing_is_mailed_without_smtp(
    connection: sa.Connection, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    w = world.build(session, settings)
    make_user(session, Role.supervisor, territory_id=w["region"].id, email="cur@example.ru")
    clock.now = world.local(16, 9)
    ctx = _context(connection, settings, clock, 25)
    ctx.settings = ctx.settings.model_copy(update={"smtp_host": None})
    assert weekly_mail.send_weekly_reports(ctx) == 0

"""Every alert leads to its question: the Telegram and e-mail texts end with the
question page's absolute address (from BASE_URL), a digest with the notifications
list's, and times are in the recipient's zone (the one chosen in the profile first)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import ClassVar

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import Session, col, select

from app.auth.models import Notification, Role
from app.core.config import Settings
from app.jobs.context import JobContext
from app.sla import notify, watcher
from tests.factories.auth import make_user
from tests.factories.directory import make_institution, make_page, make_territory
from tests.factories.questions import make_question

T0 = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)  # Tuesday 10:00 in Yekaterinburg
WARN = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)  # 16:00 there: the warning is due


class _SMTP:
    outbox: ClassVar[list[EmailMessage]] = []

    def __init__(self, host: str, port: int, timeout: float) -> None: ...
    def __enter__(self) -> _SMTP:
        return self

    def __exit__(self, *exc: object) -> None: ...
    def starttls(self) -> None: ...
    def login(self, user: str, password: str) -> None: ...
    def send_message(self, message: EmailMessage) -> None:
        self.outbox.append(message)


def test_alerts_link_to_the_question_page_in_the_recipients_zone(
    committed: Session,
    job_context: Callable[..., JobContext],
    sent: list[httpx.Request],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    town = make_territory(committed, timezone="Asia/Yekaterinburg")
    institution = make_institution(committed, territory_id=town.id)
    page = make_page(committed, institution_id=institution.id)
    operator = make_user(committed, Role.operator, institution_ids=[institution.id])
    operator.telegram_chat_id = "4242"
    operator.email = "school@example.ru"
    operator.timezone = "Europe/Moscow"  # chosen in the profile
    committed.add(operator)
    questions = [make_question(committed, page_id=page.id, created_at=T0) for _ in range(2)]
    committed.commit()
    monkeypatch.setattr(_SMTP, "outbox", [])
    monkeypatch.setattr(notify.smtplib, "SMTP", _SMTP)
    ctx = job_context(
        base_url="https://otklik.chelreg.ru/",
        telegram_alert_bot_token=SecretStr("123:alert"),
        smtp_host="smtp.example",
    )
    ctx.clock = lambda: WARN + timedelta(seconds=5)  # type: ignore[method-assign]
    assert watcher.sla_sweep(ctx) == 2
    alerts = committed.exec(
        select(Notification)
        .where(Notification.user_id == operator.id)
        .order_by(col(Notification.question_id))
    ).all()
    assert [a.question_id for a in alerts] == [q.id for q in questions]
    for alert, question in zip(alerts, questions, strict=True):
        assert alert.text.endswith(f" https://otklik.chelreg.ru/questions/{question.id}")
        # Due at 18:00 in Yekaterinburg, read in Moscow: 16:00.
        assert "до 10.03 16:00" in alert.text
    ids = [q.id for q in questions]
    committed.rollback()  # SQLite: the delivering job needs the write lock

    assert notify.deliver_notifications(ctx) == 2
    (telegram,) = sent
    body = json.loads(telegram.read())
    assert body["chat_id"] == 4242
    for question_id in ids:
        assert f"https://otklik.chelreg.ru/questions/{question_id}" in body["text"]
    assert body["text"].endswith("Все уведомления: https://otklik.chelreg.ru/notifications")
    (mail,) = _SMTP.outbox
    assert mail["Subject"] == "Отклик: 2 уведомления о сроках ответов"
    assert f"https://otklik.chelreg.ru/questions/{ids[0]}" in mail.get_content()


def test_a_single_alert_is_its_own_message(settings: Settings) -> None:
    item = Notification(
        user_id=1,
        kind="sla.breached",
        text="Срок ответа нарушен. Вопрос №7: «…» https://otklik.example.ru/questions/7",
        dedupe_key="k",
    )
    subject, body = notify._compose([item], settings)
    assert body == item.text
    assert "notifications" not in body
    assert subject.startswith("Срок ответа нарушен")

"""Shared by the outbox tests: a fake platform server, questions per platform, a job context."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.core.crypto import Cipher
from app.directory.models import Platform
from app.jobs.runner import JobContext
from app.outbox import sender as outbox
from app.questions.models import Message, MessageSource, OutboxItem, Question
from tests.conftest import SECRET, FrozenClock
from tests.factories.directory import make_page
from tests.factories.questions import make_question

VK_GROUP = "218734591"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    json: Any
    headers: httpx.Headers


@dataclass
class FakePlatform:
    """Records every call and answers from a queue (the last answer repeats)."""

    answers: list[Answer] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        content_type = request.headers.get("content-type", "")
        form = (
            {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if content_type.startswith("application/x-www-form-urlencoded")
            else {}
        )
        data = json.loads(body) if content_type.startswith("application/json") and body else None
        self.calls.append(
            Call(
                method=request.method,
                path=request.url.path,
                query=dict(request.url.params.items()),
                form=form,
                json=data,
                headers=request.headers,
            )
        )
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


def job_context(
    connection: sa.Connection, settings: Settings, clock: FrozenClock, fake: FakePlatform
) -> tuple[JobContext, Callable[[], Session]]:
    """A job context whose sessions join the test's transaction (everything rolls back)."""
    ctx = JobContext(
        engine=connection.engine,
        settings=settings,
        clock=clock,
        http=httpx.Client(transport=httpx.MockTransport(fake)),
        cipher=Cipher(SECRET),
    )

    def factory() -> Session:
        return Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    return ctx, factory


def run(
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    fake: FakePlatform,
    **kwargs: Any,
) -> int:
    ctx, factory = job_context(connection, settings, clock, fake)
    kwargs.setdefault("jitter", lambda: 0.0)
    kwargs.setdefault("sleep", lambda seconds: clock.advance(seconds=seconds))
    return outbox.send_outbox(ctx, session_factory=factory, **kwargs)


def question_on(
    session: Session,
    platform: Platform,
    ref: dict[str, str],
    *,
    external_id: str,
    thread_key: str,
    page_external_id: str | None = None,
    created_at: datetime | None = None,
    **page_overrides: Any,
) -> Question:
    """A question on a page of `platform` whose citizen message has this reply_ref."""
    page_data: dict[str, Any] = {"platform": platform, **page_overrides}
    if page_external_id is not None:
        page_data["external_id"] = page_external_id
    page = make_page(session, **page_data)
    extra: dict[str, Any] = {"created_at": created_at} if created_at else {}
    question = make_question(
        session,
        page_id=page.id,
        institution_id=page.institution_id,
        platform=str(platform),
        kind="comment" if ref.get("method") not in (None, "messages") else "message",
        thread_key=thread_key,
        **extra,
    )
    message = citizen_message(session, question)
    message.reply_ref = ref
    message.external_id = external_id
    session.add(message)
    session.flush()
    return question


def citizen_message(session: Session, question: Question) -> Message:
    message = session.exec(
        select(Message).where(
            Message.question_id == question.id, Message.source == MessageSource.citizen
        )
    ).first()
    assert message is not None
    return message


def items_of(session: Session, question: Question) -> list[OutboxItem]:
    session.expire_all()
    return list(
        session.exec(
            select(OutboxItem)
            .where(OutboxItem.question_id == question.id)
            .order_by(col(OutboxItem.id))
        ).all()
    )


def vk_ok(response: Any) -> httpx.Response:
    return httpx.Response(200, json={"response": response})


def vk_error(code: int, text: str = "error") -> httpx.Response:
    return httpx.Response(200, json={"error": {"error_code": code, "error_msg": text}})

"""Shared by the outbox tests: a fake platform server, questions per platform, replies to
them, a job context."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.answering import service as replies
from app.auth.models import User
from app.core.config import Settings
from app.core.crypto import Cipher
from app.directory.models import Platform
from app.jobs.context import JobContext
from app.outbox import sender as outbox
from app.questions.models import Message, MessageSource, OutboxItem, Question, TimelineEntry
from tests.conftest import SECRET, FrozenClock
from tests.factories.directory import make_page
from tests.factories.questions import make_question

VK_GROUP = "218734591"
CIPHER = Cipher(SECRET)

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
) -> JobContext:
    """A job context whose sessions join the test's transaction (everything rolls back)."""

    def sessions() -> Session:
        return Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    return JobContext(
        engine=connection.engine,
        settings=settings,
        clock=clock,
        http=httpx.Client(transport=httpx.MockTransport(fake)),
        cipher=CIPHER,
        session_factory=sessions,
    )


def run(
    connection: sa.Connection,
    settings: Settings,
    clock: FrozenClock,
    fake: FakePlatform,
    **kwargs: Any,
) -> int:
    """One run of the outbox job: no randomness, and sleeping advances the frozen clock."""
    kwargs.setdefault("jitter", lambda: 0.0)
    kwargs.setdefault("sleep", lambda seconds: clock.advance(seconds=seconds))
    return outbox.send_outbox(job_context(connection, settings, clock, fake), **kwargs)


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
    return make_question(
        session,
        page_id=page.id,
        platform=str(platform),
        kind="comment" if ref.get("method") not in (None, "messages") else "message",
        thread_key=thread_key,
        source_key=external_id,
        reply_ref=ref,
        **extra,
    )


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


def vk_wall(session: Session, clock: FrozenClock) -> Question:
    """A question under a VK wall post, asked an hour ago, its SLA clocks running."""
    return question_on(
        session,
        Platform.vk,
        {"method": "wall", "owner_id": f"-{VK_GROUP}", "post_id": "1542", "comment_id": "9187"},
        external_id=f"wall:-{VK_GROUP}_1542:9187",
        thread_key=f"wall:-{VK_GROUP}_1542",
        page_external_id=VK_GROUP,
        created_at=clock() - timedelta(hours=1),
    )


def reply(
    session: Session, question: Question, user: User, clock: FrozenClock, **kw: object
) -> OutboxItem:
    """An operator's reply to `question`, committed (queued in the outbox)."""
    args: dict[str, object] = {
        "text": "Ирина, здравствуйте! Ремонт в плане на май.",
        "interim": False,
    }
    args.update(kw)
    item = replies.reply(
        session,
        question,
        text=str(args["text"]),
        interim=bool(args["interim"]),
        expected_at=args.get("expected_at"),  # type: ignore[arg-type]
        by=user,
        now=clock(),
        cipher=CIPHER,
    )
    session.commit()
    return item


def timeline_of(session: Session, question: Question, kind: str) -> list[TimelineEntry]:
    return list(
        session.exec(
            select(TimelineEntry).where(
                TimelineEntry.question_id == question.id, TimelineEntry.kind == kind
            )
        ).all()
    )

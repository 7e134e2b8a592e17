"""What happens in the demo's past, each through the path production takes.

A citizen's (or the page's own) platform event is delivered as a webhook: verified by
the receiver's own check, stored by the writer, processed at its receipt time. An
operator's act goes through the answering and routing services, as the API's and the
pages' do; a reply is then published by one run of the outbox job against the demo's
platforms; warnings and breaches come from the SLA watcher job, VK names from the
citizen-names job. Every act takes its moment as "now".
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.answering import service as answering
from app.answering.models import StatusChange
from app.auth import service as auth_service
from app.auth.models import Role, User, UserCreate, UserInstitution
from app.core.config import Settings
from app.core.crypto import Cipher
from app.core.errors import DomainError
from app.demo.deliveries import Citizen, signed
from app.demo.phrases import STAFF
from app.demo.platforms import DemoPlatforms, Outcome
from app.intake.receive import KnownPage, check
from app.intake.writer import DeliveryWriter
from app.jobs.context import JobContext
from app.outbox import sender as outbox_sender
from app.processing import new_question as processing
from app.processing.processor import process_pending
from app.questions import citizens
from app.questions.models import Question, QuestionStatus
from app.routing import service as routing
from app.sla import watcher
from webhooks import EventKind, PageSecrets, get_adapter

_REPLYABLE = (
    QuestionStatus.new,
    QuestionStatus.in_progress,
    QuestionStatus.waiting_citizen,
    QuestionStatus.answered,
)


@dataclass(frozen=True, slots=True)
class PageRef:
    id: int
    secrets: PageSecrets
    institution_id: int
    territory_id: int
    kind: str  # what kind of institution owns it: a key of phrases.TOPICS

    @property
    def platform(self) -> str:
        return self.secrets.platform


@dataclass
class Thread:
    """A citizen's question as the history follows it."""

    page: PageRef
    citizen: Citizen
    private: bool
    post: int  # the VK post or Telegram channel post commented; 0 in private
    object_id: int  # the citizen's first message
    institution_id: int  # whose queue it is in (changes with a transfer)
    question_id: int | None = None


class Acts:
    def __init__(
        self, settings: Settings, engine: sa.Engine, cipher: Cipher, rng: random.Random
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.cipher = cipher
        self.rng = rng
        self.platforms = DemoPlatforms()
        self.http = self.platforms.client()
        self.writer = DeliveryWriter(engine)
        self.counts: Counter[str] = Counter()
        self.deliveries = 0
        self._ids = itertools.count(3000)
        self._staff: dict[int, int] = {}

    def next_id(self) -> int:
        return next(self._ids)

    # --- the platforms' side ----------------------------------------------------------------

    def deliver(self, page: PageRef, body: dict[str, Any], at: datetime) -> list[str]:
        """Deliver one platform event as a webhook and process it at its receipt time.

        Returns the keys of the citizens' messages in it."""
        delivery = signed(page.secrets, body, at)
        received = at + timedelta(seconds=self.rng.uniform(0.3, 2.5))
        known = KnownPage(id=page.id, platform=page.platform, secrets=page.secrets, active=True)
        headers = {k.lower(): v for k, v in delivery.headers.items()}
        checked = check(known, headers, delivery.body, received)
        if not isinstance(checked, tuple):
            raise RuntimeError(f"demo delivery refused: {checked.status_code}")
        self.writer.write_now([checked[0]])
        process_pending(self.engine, self.cipher, _fixed(received))
        self.deliveries += 1
        events = get_adapter(page.platform).parse(page.secrets, delivery.body, received)
        return [e.source_key for e in events if e.kind == EventKind.citizen_message]

    def citizen_writes(self, thread: Thread, body: dict[str, Any], at: datetime) -> None:
        """A citizen's message; the thread learns its question (a new one or joined)."""
        if thread.citizen.id.isdigit() and thread.page.platform == "vk":
            self.platforms.people[thread.citizen.id] = thread.citizen
        keys = self.deliver(thread.page, body, at)
        with Session(self.engine) as session:
            found = processing.question_of_key(session, thread.page.id, keys[0]) if keys else None
        if found is not None:
            thread.question_id = found

    # --- the operators' side ----------------------------------------------------------------

    @contextmanager
    def _question(self, thread: Thread) -> Iterator[tuple[Session, Question] | None]:
        with Session(self.engine, expire_on_commit=False) as session:
            question = session.get(Question, thread.question_id) if thread.question_id else None
            yield (session, question) if question is not None else None

    def staff(self, session: Session, institution_id: int) -> User:
        """The institution's page administrator: a demo operator, else a colleague made
        here without a password (nobody signs in as them; they only answered in the past)."""
        user_id = self._staff.get(institution_id)
        if user_id is None:
            user_id = session.exec(
                select(User.id)
                .join(UserInstitution, col(UserInstitution.user_id) == col(User.id))
                .where(
                    col(User.role) == Role.operator,
                    col(UserInstitution.institution_id) == institution_id,
                )
                .order_by(col(User.id))
            ).first()
        if user_id is None:
            n = len(self._staff)
            created = auth_service.create_user(
                session,
                UserCreate(
                    login=f"staff.{institution_id}",
                    name=STAFF[n % len(STAFF)],
                    role=Role.operator,
                    institution_ids=[institution_id],
                ),
            )
            session.commit()
            user_id = created.id
        assert user_id is not None
        self._staff[institution_id] = user_id
        user = session.get(User, user_id)
        assert user is not None
        return user

    def reply(
        self,
        thread: Thread,
        at: datetime,
        text: str,
        *,
        outcome: Outcome = Outcome.published,
        claim: bool = False,
        interim_until: datetime | None = None,
    ) -> bool:
        """An operator answers through Otklik; the outbox publishes it (or meets `outcome`)."""
        with self._question(thread) as found:
            if found is None or found[1].status not in _REPLYABLE:
                return False
            session, question = found
            user = self.staff(session, question.institution_id)
            try:
                if claim and question.assignee_id is None:
                    answering.claim(session, question, by=user, now=at)
                answering.reply(
                    session,
                    question,
                    text=text,
                    interim=interim_until is not None,
                    expected_at=interim_until,
                    by=user,
                    now=at,
                    cipher=self.cipher,
                )
            except DomainError:
                return False
            session.commit()
        self.platforms.outcome = outcome
        try:
            outbox_sender.send_outbox(
                self.job(at + timedelta(seconds=20)), sleep=lambda _: None, jitter=lambda: 0.0
            )
        finally:
            self.platforms.outcome = Outcome.published
        self.counts[f"reply_{outcome}"] += 1
        return True

    def act(self, thread: Thread, at: datetime, name: str, **kwargs: Any) -> bool:
        """One operator's act on the question through its service: status, dismiss,
        transfer, note. False when the question is past it (closed, gone)."""
        with self._question(thread) as found:
            if found is None:
                return False
            session, question = found
            user = self.staff(session, question.institution_id)
            try:
                if name == "status":
                    answering.set_status(session, question, kwargs["change"], by=user, now=at)
                elif name == "dismiss":
                    routing.dismiss(session, question, by=user, now=at, **kwargs)
                elif name == "transfer":
                    routing.transfer(session, question, by=user, now=at, **kwargs)
                    thread.institution_id = kwargs["institution_id"]
                elif name == "note":
                    answering.add_note(session, question, by=user, now=at, **kwargs)
            except DomainError:
                return False
            session.commit()
        self.counts[str(kwargs.get("change", name))] += 1
        return True

    def close(self, thread: Thread, at: datetime) -> None:
        self.act(thread, at, "status", change=StatusChange.closed)

    # --- the background jobs ------------------------------------------------------------------

    def job(self, at: datetime) -> JobContext:
        return JobContext(
            engine=self.engine,
            settings=self.settings,
            clock=_fixed(at),
            http=self.http,
            cipher=self.cipher,
        )

    def sweep(self, at: datetime) -> None:
        """The SLA watcher's run at `at`: warnings, breaches, escalations then due."""
        watcher.sla_sweep(self.job(at))

    def names(self, at: datetime) -> None:
        """The citizen-names job, until every VK citizen is named."""
        for _ in range(20):
            if citizens.resolve_citizen_names(self.job(at)) == 0:
                break


def _fixed(at: datetime) -> Callable[[], datetime]:
    return lambda: at

"""The demo region's last N days, lived in: `otklik demo --history-days N`.

Citizens write to every institution about what that institution does (a hospital gets
appointments and medicines, a school meals and enrolment: :mod:`app.demo.phrases`), and
the pages answer like a real region: most in time, natively on the platform or through
Otklik, some late, a few forgotten and breaching now; some wait for the citizen, some
are dismissed or transferred, threads get follow-ups, edits and deletions, replies are
published or refused by the platform. Nothing is written directly: every delivery goes
through the receiver's check, the writer and processing; every operator's action
through the answering and routing services; every publication through the outbox job
against the demo's platforms (:mod:`app.demo.platforms`); warnings and breaches
through the SLA watcher, names of VK citizens through the citizen-names job. Each
event runs at its own moment of the past, in time order.

What each question lives through is drawn in :mod:`app.demo.story`; the operators' and
platforms' acts are :mod:`app.demo.acts`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.core.crypto import Cipher
from app.demo.acts import Acts, PageRef
from app.demo.chelyabinsk import TZ
from app.demo.phrases import kind_of
from app.demo.story import Story
from app.directory import service as directory_service
from app.directory.models import Institution, Page
from app.sla import policies

SWEEP_EVERY = timedelta(hours=2)  # the SLA watcher's runs, in the past's time


@dataclass(order=True)
class _Event:
    at: datetime
    seq: int
    run: Callable[[datetime], object] = field(compare=False)


@dataclass
class Summary:
    deliveries: int = 0
    questions: int = 0
    counts: Counter[str] = field(default_factory=Counter)


class History:
    """A timeline of events, run in time order up to `now`."""

    def __init__(self, settings: Settings, engine: sa.Engine, now: datetime, seed: int = 7) -> None:
        self.now = now
        self.rng = random.Random(seed)
        self._events: list[_Event] = []
        self._seq = itertools.count()
        cipher = Cipher(settings.resolved_secret_key())
        with Session(engine, expire_on_commit=False) as session:
            pages = _pages(session, cipher)
            self.basis = policies.basis(session, working_time=True, calendar_id=None, timezone=TZ)
        self.acts = Acts(settings, engine, cipher, self.rng)
        self.story = Story(self, pages)

    # --- scheduling -------------------------------------------------------------

    def at(self, when: datetime, run: Callable[[datetime], object]) -> None:
        """Run `run(when)` at `when` if that is in the past; the future does not happen."""
        if when < self.now:
            heapq.heappush(self._events, _Event(when, next(self._seq), run))

    def working_later(self, start: datetime, minutes: float) -> datetime:
        """`minutes` of working time after `start`, in the region's calendar."""
        return self.basis.add(start, minutes)

    def working_ago(self, minutes: float) -> datetime:
        """The latest instant with `minutes` of working time between it and now."""
        low, high = self.now - timedelta(days=30), self.now
        for _ in range(40):
            middle = low + (high - low) / 2
            if self.basis.between(middle, self.now) > minutes:
                low = middle
            else:
                high = middle
        return high.replace(microsecond=0)

    def run(self, days: int, per_day: int) -> Summary:
        # The past's hundreds of replies and breaches are not news for the console.
        quiet = logging.getLogger("otklik")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            return self._run(days, per_day)
        finally:
            quiet.setLevel(level)

    def _run(self, days: int, per_day: int) -> Summary:
        self.story.plan(days, per_day)
        next_sweep = self._events[0].at + SWEEP_EVERY if self._events else self.now
        while self._events:
            event = heapq.heappop(self._events)
            while next_sweep <= event.at:
                self.acts.sweep(next_sweep)
                next_sweep += SWEEP_EVERY
            event.run(event.at)
        self.story.finish()
        self.acts.sweep(self.now)
        self.acts.names(self.now)
        return Summary(self.acts.deliveries, self.story.questions, self.acts.counts)


def _pages(session: Session, cipher: Cipher) -> list[PageRef]:
    rows = session.exec(
        select(Page, Institution)
        .join(Institution, col(Institution.id) == col(Page.institution_id))
        .where(col(Page.is_active).is_(True))
        # The generic source's questions come from its own system, not from the story.
        .where(col(Page.platform) != "generic")
        .order_by(col(Page.id))
    ).all()
    return [
        PageRef(
            id=page.id or 0,
            secrets=directory_service.page_secrets(page, cipher),
            institution_id=institution.id or 0,
            territory_id=institution.territory_id,
            kind=kind_of(institution.name, str(institution.sector)),
        )
        for page, institution in rows
    ]


def replay(
    settings: Settings,
    engine: sa.Engine,
    *,
    now: datetime,
    days: int,
    per_day: int = 30,
    seed: int = 7,
) -> Summary:
    """Live the demo region's last `days` days up to `now`; returns what happened."""
    return History(settings, engine, now, seed).run(days, per_day)


__all__ = ["History", "Summary", "replay"]

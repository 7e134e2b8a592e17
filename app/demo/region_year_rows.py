"""One row at a time for a region's year (`app.demo.region_year`), and the tally.

`Rows` appends a message, a timeline entry or an SLA clock as the services would have
written it (a clock warned and breached as the SLA watcher leaves it), with the next id
of its table, to the chunk the writer (`app.demo.region_year_writer`) writes next;
`Intended` counts what was written, as the reports define their figures.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.demo.region_year_writer import Writer
from app.questions.models import Direction, Message, MessageSource, TimelineEntry
from app.sla import norms, policies
from app.sla.models import ClockState, SlaClock, Target

# The institution with the forgotten backlog of open questions (`generate`'s `hot_share`).
HOT_INSTITUTION = "Администрация города Челябинска"


@dataclass
class Intended:
    """What the generator wrote, as the reports define their figures (`app.reports.figures`)."""

    questions: int = 0
    answered: int = 0
    on_time: int = 0
    judged: int = 0  # first-response clocks met, missed or breached
    open: int = 0
    dismissed: int = 0
    breached: int = 0
    answered_otklik: int = 0
    transferred: int = 0
    messages: int = 0
    clocks: int = 0
    timeline: int = 0
    outbox: int = 0
    hot_institution_id: int = 0
    hot_open: int = 0
    start: datetime | None = None
    end: datetime | None = None
    seconds: float = 0.0
    # First-response times of met and missed clocks, in working and wall-clock minutes.
    working: array[float] = field(default_factory=lambda: array("d"))
    wall: array[float] = field(default_factory=lambda: array("d"))
    by_state: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        rows = self.questions + self.messages + self.clocks + self.timeline + self.outbox
        return (
            f"region-year: {self.questions:,} questions, {self.messages:,} messages, "
            f"{self.clocks:,} SLA clocks, {self.timeline:,} timeline entries, "
            f"{self.outbox:,} outbox items ({rows:,} rows) in {self.seconds:.0f} s "
            f"({rows / max(self.seconds, 1e-9):,.0f} rows/s); "
            f"{self.hot_open:,} open questions in «{HOT_INSTITUTION}»"
        ).replace(",", "\u202f")


@dataclass(frozen=True)
class YearPage:
    """A page as the generator sees it: what is asked and answered there, how busy it is."""

    id: int
    institution_id: int
    platform: str
    external_id: str
    topics: tuple[str, ...]
    replies: tuple[str, ...]
    weight: float


@dataclass
class Ids:
    question: int
    message: int
    clock: int
    timeline: int
    outbox: int


class Rows:
    """The rows of each table for the chunk being made, with the next ids and the tally."""

    def __init__(self, ids: Ids, writer: Writer, out: Intended) -> None:
        self.out = out
        self.ids = ids
        self.w = writer.rows

    def _clock(
        self,
        qid: int,
        target: Target,
        created: datetime,
        minutes: int,
        basis: policies.Basis,
        norm: norms.Norms,
        tz: str,
    ) -> dict[str, Any]:
        """A clock as `app.sla.clocks.running` starts it."""
        due = basis.add(created, minutes)
        warn = basis.add(created, minutes * norm.warn_ratio)
        clock = {
            "id": self.ids.clock,
            "question_id": qid,
            "target": target,
            "state": ClockState.running,
            "started_at": created,
            "due_at": due,
            "warn_at": warn,
            "check_at": warn if warn < due else due,
            "target_minutes": minutes,
            "done_at": None,
            "working_minutes": None,
            "wall_minutes": None,
            "paused_at": None,
            "paused_seconds": 0.0,
            "warned_at": None,
            "breached_at": None,
            "escalation_level": 0,
            "details": {
                "working_time": norm.working_time,
                "calendar_id": None,
                "timezone": tz,
                "warn_ratio": norm.warn_ratio,
                "paused_working_minutes": 0.0,
            },
        }
        self.ids.clock += 1
        self.w[SlaClock].append(clock)
        self.out.clocks += 1
        return clock

    def _settle_by(self, clock: dict[str, Any], at: datetime, qid: int) -> None:
        """What the watcher made of a clock unanswered until `at`: warned, breached."""
        if clock["warn_at"] <= at:
            clock["warned_at"] = clock["warn_at"]
            clock["state"] = ClockState.warning
            clock["check_at"] = clock["due_at"]
        if clock["due_at"] <= at:
            self._breach(clock, qid)
            clock["state"] = ClockState.breached
            # Escalations are the watcher's; nothing more to look at here.
            clock["check_at"] = None

    def _breach(self, clock: dict[str, Any], qid: int) -> None:
        due = clock["due_at"]
        clock["warned_at"] = clock["warn_at"]
        clock["breached_at"] = due
        data = {
            "target": str(clock["target"]),
            "clock_id": clock["id"],
            "due_at": due.isoformat(),
            "detected_at": due.isoformat(),
        }
        key = f"sla:{clock['id']}:{int(clock['started_at'].timestamp())}:breached"
        self._timeline(qid, due, "sla.breached", data, key)

    def _message(
        self,
        qid: int,
        page: YearPage,
        at: datetime,
        direction: Direction,
        source: MessageSource,
        author_id: str,
        author_name: str,
        text: str,
        external_id: str,
        user_id: int | None,
    ) -> int:
        mid = self.ids.message
        self.ids.message += 1
        self.w[Message].append(
            {
                "id": mid,
                "question_id": qid,
                "page_id": page.id,
                "direction": direction,
                "source": source,
                "author_id": author_id,
                "author_name": author_name,
                "user_id": user_id,
                "text": text,
                "attachments": [],
                "sent_at": at,
                "received_at": at + timedelta(seconds=2),
                "delay_seconds": 2.0,
                "edited_at": None,
                "deleted_at": None,
                "previous_texts": [],
                "external_id": f"ry{external_id}",
                "reply_to_key": None if source == MessageSource.citizen else f"ryc{qid}",
                "reply_ref": {},
                "permalink": None,
                "interim": False,
            }
        )
        self.out.messages += 1
        return mid

    def _timeline(
        self,
        qid: int,
        at: datetime,
        kind: str,
        data: dict[str, Any],
        dedupe_key: str | None = None,
    ) -> None:
        self.w[TimelineEntry].append(
            {
                "id": self.ids.timeline,
                "question_id": qid,
                "at": at,
                "kind": kind,
                "actor_id": None,
                "data": data,
                "dedupe_key": dedupe_key,
            }
        )
        self.ids.timeline += 1
        self.out.timeline += 1

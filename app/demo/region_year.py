"""A region's year of questions, written in bulk: `otklik demo --scale region-year`.

About a million questions (one region reported over a million comments on its official
pages in a year) over the demo region's pages (:mod:`app.demo.region`), spread over the
year before `now`, with what processing, the operators, the outbox and the SLA watcher
would have left behind: the citizen's message; native and Otklik answers (the reply
message, its sent outbox item, the `response` entry); first-response and final-answer
clocks met, missed, running, warned, breached or paused (waiting for the citizen) in
working time of the region's calendar, exactly as `app.sla.clocks` computes them;
breaches on the timeline; dismissals with reason codes; transfers with the time the
question sat in the wrong queue. One institution (the city administration of
Челябинск) carries a forgotten backlog of `hot_share` of all questions still open, the
queue of 20,000 open questions that the operator's inbox must stay fast on.

Nothing goes through the services: this is for measuring reports and queues at scale,
so rows are computed here and inserted with Core executemany in chunks (minutes, not
hours). What was written is tallied in `Intended`, so a test can check that the
reports (`app.reports.figures`) count the same.
"""

from __future__ import annotations

import json
import math
import random
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth.models import Role, User, UserInstitution
from app.core.config import Settings
from app.core.db import EnumText, UTCDateTime
from app.demo import phrases
from app.demo import region as demo_region
from app.directory.models import Institution, Page
from app.questions.models import (
    Direction,
    Message,
    MessageSource,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Priority,
    Question,
    QuestionKind,
    QuestionStatus,
    TimelineEntry,
)
from app.reports import facts
from app.sla import norms, policies
from app.sla.models import ClockState, SlaClock, Target

SCALES = {"region-year": 1_000_000}
HOT_INSTITUTION = "Администрация города Челябинска"
# What citizens write: (classification, share). Questions and complaints need answers.
CLASSES = (("question", 0.70), ("complaint", 0.12), ("gratitude", 0.09), ("spam", 0.04))
ON_TIME_SHARE = 0.86
OTKLIK_SHARE = 0.45
DISMISS_SHARE = 0.04
TRANSFER_SHARE = 0.04
FORGOTTEN_SHARE = 0.003
WAITING_SHARE = 0.15  # of answered questions of the last two weeks
DISMISS_REASONS = ("off_topic", "duplicate", "formal_appeal", "other")
TRANSFER_REASONS = [reason for _, _, reason in phrases.TRANSFERS]
_MINUTE = timedelta(minutes=1)


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
class _Page:
    id: int
    institution_id: int
    platform: str
    external_id: str
    topics: tuple[str, ...]
    replies: tuple[str, ...]
    weight: float


@dataclass
class _Ids:
    question: int
    message: int
    clock: int
    timeline: int
    outbox: int


class _Writer:
    """Rows of each table for one chunk, then one bulk write per table straight through
    the driver: COPY on PostgreSQL, executemany on SQLite. SQLAlchemy's per-value bind
    processing took more than half of the time, so values are converted here, the
    way the column types store them (`app.core.db.UTCDateTime` keeps naive UTC text on
    SQLite; JSON as text; enums as their values)."""

    TABLES: tuple[Any, ...] = (Question, Message, SlaClock, TimelineEntry, OutboxItem)

    def __init__(self) -> None:
        self.rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in self.TABLES}

    def flush(self, conn: sa.Connection) -> None:
        postgres = conn.dialect.name == "postgresql"
        for table in self.TABLES:
            rows = self.rows[table]
            if not rows:
                continue
            columns = list(rows[0])
            types = [table.__table__.c[c].type for c in columns]
            convert = [_converter(t, postgres) for t in types]
            values = [
                tuple(v if f is None else f(v) for f, v in zip(convert, row.values(), strict=True))
                for row in rows
            ]
            name = table.__tablename__
            names = ", ".join(f'"{c}"' for c in columns)
            driver: Any = conn.connection.driver_connection
            if postgres:
                with (
                    driver.cursor() as cursor,
                    cursor.copy(f"COPY {name} ({names}) FROM STDIN") as copy,
                ):
                    for row in values:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                driver.executemany(f"INSERT INTO {name} ({names}) VALUES ({marks})", values)
            rows.clear()


def _converter(column_type: Any, postgres: bool) -> Callable[[Any], Any] | None:
    """How a column's value is handed to the driver (None: as it is)."""
    if isinstance(column_type, EnumText):
        return _enum_value
    if isinstance(column_type, sa.JSON):
        return _json
    if postgres:
        return None
    if isinstance(column_type, UTCDateTime):
        return _sqlite_time
    if isinstance(column_type, sa.Boolean):
        return _bool
    return None


def _enum_value(v: Any) -> Any:
    return None if v is None else str(v.value if isinstance(v, StrEnum) else v)


def _json(v: Any) -> str:
    return json.dumps(v)


def _bool(v: Any) -> Any:
    return None if v is None else int(v)


def _sqlite_time(v: datetime | None) -> str | None:
    """As SQLAlchemy stores a UTC instant on SQLite (`UTCDateTime`): naive UTC text."""
    if v is None:
        return None
    if v.tzinfo is not UTC:
        v = v.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
        v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond
    )  # fmt: skip


def _max_id(conn: sa.Connection, model: Any) -> int:
    return int(conn.execute(sa.select(sa.func.max(model.id))).scalar() or 0)


def _pages(session: Session, hot_id: int | None) -> list[_Page]:
    rows = session.exec(
        select(Page, Institution)
        .join(Institution, col(Institution.id) == col(Page.institution_id))
        .where(col(Page.is_active).is_(True))
        .order_by(col(Page.id))
    ).all()
    out = []
    for page, institution in rows:
        assert page.id is not None and institution.id is not None
        kind = phrases.kind_of(institution.name, str(institution.sector))
        topics = tuple(phrases.TOPICS.get(kind) or phrases.QUESTIONS)
        replies = tuple(phrases.REPLIES.get(kind) or phrases.REPLIES["default"])
        # Cities' and the region's pages are busier than a village house of culture's.
        weight = 1.0
        if kind in ("municipality", "hospital", "housing"):
            weight = 3.0
        if institution.id == hot_id:
            weight = 4.0
        out.append(
            _Page(
                page.id,
                institution.id,
                str(page.platform),
                page.external_id,
                topics,
                replies,
                weight,
            )
        )
    return out


def _operators(session: Session) -> dict[int, tuple[int, str]]:
    """An operator (id, name) per institution that has one, to sign Otklik replies."""
    rows = session.exec(
        select(UserInstitution.institution_id, User)
        .join(User, col(User.id) == col(UserInstitution.user_id))
        .where(col(User.role) == Role.operator)
    ).all()
    return {inst: (user.id or 0, user.name or user.login) for inst, user in rows}


def generate(
    session: Session,
    settings: Settings,
    *,
    questions: int,
    now: datetime,
    days: int = 365,
    seed: int = 11,
    hot_share: float = 0.02,
    chunk: int = 10_000,
    after_chunk: Callable[[int], None] | None = None,
) -> Intended:
    """Write `questions` questions over the `days` days before `now` into the demo region
    (seeded first when the directory is empty). Rows are flushed every `chunk`
    questions, then `after_chunk(written so far)` runs (the command line commits
    there); the caller commits the rest. Returns what was written."""
    started = time.perf_counter()
    if demo_region.is_empty(session):
        demo_region.seed(session, settings)
        session.flush()
    rng = random.Random(seed)
    hot = session.exec(select(Institution).where(Institution.name == HOT_INSTITUTION)).first()
    hot_id = hot.id if hot is not None else None
    pages = _pages(session, hot_id)
    if not pages:
        raise ValueError("no active pages: seed a directory first")
    hot_pages = [p for p in pages if p.institution_id == hot_id] or pages[:1]
    operators = _operators(session)
    institution_ids = sorted({p.institution_id for p in pages})
    tz_of = {i: policies.institution_timezone(session, i) for i in institution_ids}
    norms_of = {
        i: norms.resolve(session, i, now) or policies.BUILTIN_NORMS for i in institution_ids
    }
    conn = session.connection()
    ids = _Ids(
        _max_id(conn, Question) + 1,
        _max_id(conn, Message) + 1,
        _max_id(conn, SlaClock) + 1,
        _max_id(conn, TimelineEntry) + 1,
        _max_id(conn, OutboxItem) + 1,
    )
    out = Intended(hot_institution_id=hot_id or hot_pages[0].institution_id)
    start = now - timedelta(days=days)
    out.start, out.end = start, now
    hot_open = int(questions * hot_share) if hot_id is not None else 0
    # Times in order, so ids grow with time as they do in a live database.
    times = _times(rng, questions - hot_open, start, now, tz_of[institution_ids[0]])
    hot_times = _times(
        rng, hot_open, now - timedelta(days=min(days, 60)), now, tz_of[hot_pages[0].institution_id]
    )
    cumulative = list(_cumulative([p.weight for p in pages]))
    writer = _Writer()
    maker = _Maker(session, rng, now, out, ids, writer, operators, institution_ids, tz_of, norms_of)
    for written, (created, forgotten) in enumerate(_merge(times, hot_times), 1):
        page = (
            hot_pages[rng.randrange(len(hot_pages))]
            if forgotten
            else pages[_pick(cumulative, rng.random())]
        )
        maker.question(page, created, forgotten=forgotten)
        if written % chunk == 0:
            writer.flush(conn)
            if after_chunk is not None:
                after_chunk(written)
            conn = session.connection()
    writer.flush(conn)
    if session.get_bind().dialect.name == "postgresql":
        for model in _Writer.TABLES:
            name = model.__tablename__
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {name}))"
            )
    # The reports' facts and daily rollup, in one pass rather than a fold per question.
    facts.rebuild(session)
    out.seconds = time.perf_counter() - started
    return out


def analyze(engine: sa.Engine) -> None:
    """Fresh planner statistics after a bulk load (both databases plan on them); on
    PostgreSQL also the visibility map (VACUUM), without which no index-only scan is
    planned on freshly written rows."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            # A sample per index is enough for the planner and takes seconds, not minutes.
            conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


# --- time ---------------------------------------------------------------------------


def _times(rng: random.Random, n: int, start: datetime, end: datetime, tz: str) -> list[datetime]:
    """`n` instants in [start, end), sorted, busier by day than by night (local time)."""
    zone = ZoneInfo(tz)
    span = (end - start).total_seconds()
    offset = (start.astimezone(zone).utcoffset() or timedelta(0)).total_seconds()
    out = []
    for _ in range(n):
        s = rng.random() * span
        # Most people write between 7 and 23 local time: move most night writes to the day.
        hour = ((start.timestamp() + s + offset) % 86400) / 3600
        if hour < 7 and rng.random() < 0.8:
            s = min(span - 1, s + 9 * 3600)
        out.append(start + timedelta(seconds=int(s)))
    out.sort()
    return out


def _merge(times: list[datetime], hot: list[datetime]) -> Iterator[tuple[datetime, bool]]:
    i = j = 0
    while i < len(times) or j < len(hot):
        if j >= len(hot) or (i < len(times) and times[i] <= hot[j]):
            yield times[i], False
            i += 1
        else:
            yield hot[j], True
            j += 1


def _cumulative(weights: list[float]) -> Iterator[float]:
    total = sum(weights)
    acc = 0.0
    for w in weights:
        acc += w / total
        yield acc


def _pick(cumulative: list[float], x: float) -> int:
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


# --- one question ---------------------------------------------------------------------


class _Maker:
    def __init__(
        self,
        session: Session,
        rng: random.Random,
        now: datetime,
        out: Intended,
        ids: _Ids,
        writer: _Writer,
        operators: dict[int, tuple[int, str]],
        institution_ids: list[int],
        tz_of: dict[int, str],
        norms_of: dict[int, norms.Norms],
    ) -> None:
        self.session = session
        self.bases: dict[tuple[int | None, str], policies.Basis] = {}
        self.rng = rng
        self.now = now
        self.out = out
        self.ids = ids
        self.w = writer.rows
        self.operators = operators
        self.institution_ids = institution_ids
        self.tz_of = tz_of
        self.norms_of = norms_of

    def _basis(self, norm: norms.Norms, tz: str) -> policies.Basis:
        key = (norm.id, tz)
        if key not in self.bases:
            self.bases[key] = policies.basis(
                self.session,
                working_time=norm.working_time,
                calendar_id=norm.calendar_id,
                timezone=tz,
            )
        return self.bases[key]

    def question(self, page: _Page, created: datetime, *, forgotten: bool) -> None:
        rng, out = self.rng, self.out
        qid = self.ids.question
        self.ids.question += 1
        institution_id = page.institution_id
        x = rng.random()
        classification = "other"
        for name, share in CLASSES:
            if x < share:
                classification = name
                break
            x -= share
        if forgotten:
            classification = "question"
        answerable = classification in ("question", "complaint")
        if classification == "question":
            text = page.topics[rng.randrange(len(page.topics))]
        elif classification == "complaint":
            text = "Жалоба: " + page.topics[rng.randrange(len(page.topics))]
        elif classification == "gratitude":
            text = rng.choice(phrases.THANKS + phrases.REACTIONS)
        elif classification == "spam":
            text = rng.choice(phrases.SPAM)
        else:
            text = rng.choice(phrases.OTHER)
        first, last = phrases.NAMES[rng.randrange(len(phrases.NAMES))]
        citizen_id = str(100000 + rng.randrange(5_000_000))
        thread = f"post:{page.id}:{int(created.timestamp()) // 86400}:{rng.randrange(3)}"
        norm = self.norms_of[institution_id]
        tz = self.tz_of[institution_id]
        basis = self._basis(norm, tz)
        q: dict[str, Any] = {
            "id": qid,
            "page_id": page.id,
            "institution_id": institution_id,
            "platform": page.platform,
            "kind": QuestionKind.comment,
            "status": QuestionStatus.new,
            "classification": classification,
            "classification_rule": "vocabulary",
            "classification_note": "",
            "category_id": None,
            "priority": Priority.normal,
            "citizen_platform_id": citizen_id,
            "citizen_name": f"{first} {last}",
            "thread_key": thread,
            "text": text,
            "permalink": None,
            "created_at": created,
            "received_at": created + timedelta(seconds=1 + rng.randrange(5)),
            "updated_at": created,
            "last_citizen_at": created,
            "first_response_at": None,
            "closed_at": None,
            "assignee_id": None,
            "linked_question_id": None,
            "dismiss_reason": None,
            "dismiss_note": None,
            "policy_id": norm.id,
            "due_at": None,
            "interim_expected_at": None,
            "routed_by_rule_id": None,
        }
        self._message(qid, page, created, Direction.inbound, MessageSource.citizen, citizen_id,
                      f"{first} {last}", text, f"c{qid}", None)  # fmt: skip
        self._timeline(qid, created, "created", {"platform": page.platform})
        clocks: list[dict[str, Any]] = []
        if answerable:
            clocks = self._answerable(q, page, created, basis, norm, tz, forgotten)
        else:
            self._no_answer(q, page, created)
        self.w[Question].append(q)
        out.questions += 1
        status = str(q["status"])
        out.by_status[status] = out.by_status.get(status, 0) + 1
        if q["status"] in (
            QuestionStatus.new,
            QuestionStatus.in_progress,
            QuestionStatus.waiting_citizen,
        ):
            out.open += 1
            if forgotten:
                out.hot_open += 1
        if q["status"] == QuestionStatus.dismissed:
            out.dismissed += 1
        if q["first_response_at"] is not None:
            out.answered += 1
        if any(
            c["breached_at"] is not None or c["state"] in (ClockState.breached, ClockState.missed)
            for c in clocks
        ):
            out.breached += 1
        if clocks and clocks[0]["state"] in _JUDGED:
            out.judged += 1
            out.on_time += clocks[0]["state"] == ClockState.met
        for c in clocks:
            state = str(c["state"])
            out.by_state[state] = out.by_state.get(state, 0) + 1

    # -- questions that need an answer ------------------------------------------------

    def _answerable(
        self,
        q: dict[str, Any],
        page: _Page,
        created: datetime,
        basis: policies.Basis,
        norm: norms.Norms,
        tz: str,
        forgotten: bool,
    ) -> list[dict[str, Any]]:
        rng, now, out = self.rng, self.now, self.out
        qid = q["id"]
        target = norm.first_response_minutes
        first = self._clock(qid, Target.first_response, created, target, basis, norm, tz)
        clocks = [first]
        final = None
        if norm.final_answer_minutes:
            final = self._clock(
                qid, Target.final_answer, created, norm.final_answer_minutes, basis, norm, tz
            )
            clocks.append(final)
        # When the page answers, in working minutes after the citizen wrote.
        if rng.random() < ON_TIME_SHARE:
            working = math.exp(rng.uniform(math.log(3), math.log(target * 0.97)))
        else:
            working = target + math.exp(rng.uniform(math.log(5), math.log(target * 5)))
        answer_at = basis.add(created, working).replace(microsecond=0)
        working = basis.between(created, answer_at)
        dismissed_at = None
        if not forgotten and rng.random() < DISMISS_SHARE:
            dismissed_at = created + timedelta(minutes=rng.uniform(10, 3 * 24 * 60))
            if dismissed_at >= now:
                dismissed_at = None
        unanswered = forgotten or answer_at >= now or rng.random() < FORGOTTEN_SHARE
        end = now
        transfer_at = None
        if dismissed_at is not None:
            end = dismissed_at
        elif not unanswered:
            end = answer_at
        if rng.random() < TRANSFER_SHARE and len(self.institution_ids) > 1:
            transfer_at = created + (end - created) * rng.uniform(0.1, 0.6)
            transfer_at = transfer_at.replace(microsecond=0)
            self._transfer(q, created, transfer_at, basis)
        if dismissed_at is not None:
            reason = DISMISS_REASONS[rng.randrange(len(DISMISS_REASONS))]
            q.update(
                status=QuestionStatus.dismissed,
                dismiss_reason=reason,
                dismiss_note="Ответили в официальном порядке" if reason == "other" else None,
                closed_at=dismissed_at,
                updated_at=dismissed_at,
            )
            self._timeline(qid, dismissed_at, "dismissed",
                           {"reason": reason, "note": q["dismiss_note"]})  # fmt: skip
            for clock in clocks:
                self._settle_by(clock, dismissed_at, qid)
                clock["state"] = ClockState.none
                clock["details"] = {**clock["details"], "stopped": "dismissed"}
                clock["check_at"] = None
            return clocks
        if unanswered:
            q["status"] = QuestionStatus.in_progress if rng.random() < 0.3 else QuestionStatus.new
            for clock in clocks:
                self._settle_by(clock, now, qid)
            q["due_at"] = min(c["due_at"] for c in clocks)
            q["updated_at"] = transfer_at or created
            return clocks
        # Answered: natively on the platform or through Otklik.
        otklik = rng.random() < OTKLIK_SHARE
        wall = (answer_at - created) / _MINUTE
        first.update(
            state=ClockState.met if answer_at <= first["due_at"] else ClockState.missed,
            done_at=answer_at,
            working_minutes=working,
            wall_minutes=wall,
            check_at=None,
        )
        if first["state"] == ClockState.missed:
            self._breach(first, qid)
        elif answer_at >= first["warn_at"]:
            first["warned_at"] = first["warn_at"]
        out.working.append(working)
        out.wall.append(wall)
        q["first_response_at"] = answer_at
        q["updated_at"] = answer_at
        self._reply(q, page, answer_at, otklik)
        if otklik:
            out.answered_otklik += 1
        recent = now - answer_at < timedelta(days=14)
        if final is not None and recent and rng.random() < WAITING_SHARE:
            # A clarifying answer: waiting for the citizen, the final clock paused.
            self._settle_by(final, answer_at, qid)
            if final["state"] in (ClockState.running, ClockState.warning):
                final["details"] = {**final["details"], "state_before_pause": str(final["state"])}
                final.update(state=ClockState.paused, paused_at=answer_at, check_at=None)
            q["status"] = QuestionStatus.waiting_citizen
            q["due_at"] = min((c["due_at"] for c in clocks if c["state"] in _ACTIVE), default=None)
            return clocks
        if final is not None:
            final_wall = wall
            final.update(
                state=ClockState.met if answer_at <= final["due_at"] else ClockState.missed,
                done_at=answer_at,
                working_minutes=working,
                wall_minutes=final_wall,
                check_at=None,
            )
            if final["state"] == ClockState.missed:
                self._breach(final, qid)
            elif answer_at >= final["warn_at"]:
                final["warned_at"] = final["warn_at"]
        if now - answer_at > timedelta(days=7) and rng.random() < 0.6:
            closed = answer_at + timedelta(days=rng.uniform(1, 6))
            q.update(status=QuestionStatus.closed, closed_at=closed, updated_at=closed)
        else:
            q["status"] = QuestionStatus.answered
        return clocks

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

    def _transfer(
        self, q: dict[str, Any], created: datetime, at: datetime, basis: policies.Basis
    ) -> None:
        rng = self.rng
        source = q["institution_id"]
        while source == q["institution_id"]:
            source = self.institution_ids[rng.randrange(len(self.institution_ids))]
        data = {
            "from_institution_id": source,
            "to_institution_id": q["institution_id"],
            "reason": TRANSFER_REASONS[rng.randrange(len(TRANSFER_REASONS))],
            "by_user_id": None,
            "by_name": "Оператор",
            "held_since": created.isoformat(),
            "held_wall_minutes": round((at - created) / _MINUTE, 1),
            "held_working_minutes": round(basis.between(created, at), 1),
        }
        self._timeline(q["id"], at, "transferred", data)
        self.out.transferred += 1

    def _reply(self, q: dict[str, Any], page: _Page, at: datetime, otklik: bool) -> None:
        qid = q["id"]
        text = page.replies[self.rng.randrange(len(page.replies))]
        if otklik:
            user_id, name = self.operators.get(q["institution_id"], (None, "Оператор"))
            message_id = self._message(qid, page, at, Direction.outbound, MessageSource.otklik,
                                       f"user:{user_id}" if user_id else "user:",
                                       name, text, f"o{qid}", user_id)  # fmt: skip
            self.w[OutboxItem].append(
                {
                    "id": self.ids.outbox,
                    "kind": OutboxKind.reply,
                    "question_id": qid,
                    "message_id": message_id,
                    "page_id": page.id,
                    "subscription_id": None,
                    "payload": {"text": text, "thread_key": q["thread_key"], "interim": False},
                    "status": OutboxStatus.sent,
                    "attempts": 1,
                    "next_attempt_at": None,
                    "last_error": None,
                    "error_code": None,
                    "error_message": None,
                    "external_id": f"o{qid}",
                    "created_at": at - timedelta(seconds=20),
                    "created_by": user_id,
                    "sent_at": at,
                }
            )
            data = {"message_id": message_id, "outbox_item_id": self.ids.outbox,
                    "source": "otklik", "external_id": f"o{qid}", "interim": False}  # fmt: skip
            self.ids.outbox += 1
            self.out.outbox += 1
        else:
            message_id = self._message(qid, page, at, Direction.outbound, MessageSource.native,
                                       page.external_id, "", text, f"n{qid}", None)  # fmt: skip
            data = {"source": "native", "message_id": message_id, "author_id": page.external_id}
        self._timeline(qid, at, "response", data)

    # -- gratitude, spam, reactions -------------------------------------------------------

    def _no_answer(self, q: dict[str, Any], page: _Page, created: datetime) -> None:
        rng, now = self.rng, self.now
        if now - created < timedelta(days=2):
            return  # still in the «no answer needed» tab
        x = rng.random()
        if x < 0.7:
            at = created + timedelta(hours=rng.uniform(1, 40))
            reason = {"gratitude": "gratitude", "spam": "spam"}.get(q["classification"], "other")
            note = "Не вопрос" if reason == "other" else None
            q.update(status=QuestionStatus.dismissed, dismiss_reason=reason, dismiss_note=note,
                     closed_at=at, updated_at=at)  # fmt: skip
            self._timeline(q["id"], at, "dismissed", {"reason": reason, "note": note})
        elif x < 0.9 and q["classification"] == "gratitude":
            at = created + timedelta(hours=rng.uniform(1, 20))
            q.update(status=QuestionStatus.answered, first_response_at=at, updated_at=at)
            mid = self._message(q["id"], page, at, Direction.outbound, MessageSource.native,
                                page.external_id, "", phrases.CLOSING, f"n{q['id']}", None)  # fmt: skip
            data = {"source": "native", "message_id": mid, "author_id": page.external_id}
            self._timeline(q["id"], at, "response", data)

    # -- rows ------------------------------------------------------------------------------

    def _message(
        self,
        qid: int,
        page: _Page,
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


_ACTIVE = (ClockState.running, ClockState.warning, ClockState.breached)
_JUDGED = (ClockState.met, ClockState.missed, ClockState.breached)

__all__ = ["SCALES", "Intended", "analyze", "generate"]

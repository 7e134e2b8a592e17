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
so rows are computed here, one question at a time (`app.demo.region_year_questions`,
`app.demo.region_year_rows`), and written in bulk in chunks (minutes, not hours;
`app.demo.region_year_writer`). This module plans the year (which page, when) and runs
it. What was written is tallied in `Intended`, so a test can check that the reports
(`app.reports.figures`) count the same.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth.models import Role, User, UserInstitution
from app.core.config import Settings
from app.demo import phrases
from app.demo import region as demo_region
from app.demo.region_year_questions import Maker
from app.demo.region_year_rows import HOT_INSTITUTION, Ids, Intended, YearPage
from app.demo.region_year_writer import Writer, max_id
from app.directory.models import Institution, Page
from app.questions.models import Message, OutboxItem, Question, TimelineEntry
from app.reports import fold
from app.sla import norms, policies
from app.sla.models import SlaClock

SCALES = {"region-year": 1_000_000}


def _pages(session: Session, hot_id: int | None) -> list[YearPage]:
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
            YearPage(
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
    ids = Ids(
        max_id(conn, Question) + 1,
        max_id(conn, Message) + 1,
        max_id(conn, SlaClock) + 1,
        max_id(conn, TimelineEntry) + 1,
        max_id(conn, OutboxItem) + 1,
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
    writer = Writer()
    maker = Maker(session, rng, now, out, ids, writer, operators, institution_ids, tz_of, norms_of)
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
        for model in Writer.TABLES:
            name = model.__tablename__
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {name}))"
            )
    # The reports' facts and daily rollup, in one pass rather than a fold per question.
    fold.rebuild(session)
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


__all__ = ["SCALES", "analyze", "generate"]

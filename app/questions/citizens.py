"""Citizens' names for platforms that send only ids: VK payloads carry `from_id` alone.

The `citizen_names` job finds VK citizens still shown as ids (questions with an empty
`citizen_name`), asks VK `users.get` for their names through the community token of a
page they wrote to (`webhooks.vk_api.users_get`, up to 1,000 ids a call), caches the
answer in `citizen_name` for NAME_TTL, and writes the name on their questions
(`citizen_name`) and messages (`author_name`). A citizen VK does not name (deleted
profile) or a page VK refuses or that has no token leaves the name empty, so pages
keep showing the id, and is asked for again later, never in a loop.

Each run looks only at the questions and messages that are new since the run before
last (`_Seen`), and at all those still showing an id every FULL_PASS: reading every
one each run cost half of PostgreSQL's work at a few thousand questions an hour.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core import bulk
from app.directory import service as directory_service
from app.directory.models import Page
from app.jobs.context import JobContext
from app.questions.models import CitizenName, Message, Question
from webhooks import PageSecrets, PermanentError, TransientError
from webhooks.vk_api import USERS_GET_LIMIT, users_get

log = logging.getLogger("otklik.citizens")

PLATFORM = "vk"
NAME_TTL = timedelta(days=7)  # a name (or its absence) stands this long
REFUSED_RETRY = timedelta(hours=6)  # VK refused the page's token, or it has none
TRANSIENT_RETRY = timedelta(minutes=15)  # VK was unreachable or busy
CALLS_PER_RUN = 10  # users.get calls one run makes at most
FULL_PASS = timedelta(minutes=5)  # between runs that look at every row showing an id
_APPLY_BATCH = 1000
_CITIZEN_NAMES: sa.Table = CitizenName.__table__  # type: ignore[attr-defined]
_QUESTIONS: sa.Table = Question.__table__  # type: ignore[attr-defined]
_MESSAGES: sa.Table = Message.__table__  # type: ignore[attr-defined]
_CHUNK = 2000  # rows showing an id read at a time
# Literal conditions (no parameters), so that the planners use the partial indexes
# `ix_question_unnamed` and `ix_message_unnamed` of exactly these rows.
_UNNAMED_QUESTION = sa.text("question.citizen_name = '' AND question.platform = 'vk'")
_UNNAMED_MESSAGE = sa.text("message.author_name = '' AND message.direction = 'in'")


@dataclass
class _Seen:
    """How far this process's runs have looked: questions and messages with higher ids
    are new to the next run. It looks from the marks of the run before last, so that
    a row committed a little after a higher id is still seen; a transaction longer than
    a run waits for the full pass."""

    question: int = 0
    message: int = 0
    next_question: int = 0
    next_message: int = 0
    full_at: datetime | None = None  # when the last full pass ran


def resolve_citizen_names(ctx: JobContext) -> int:
    """The periodic job: names from the cache first, then from VK for the rest.

    Returns how many questions, messages and citizens it handled (0: nothing to do).
    No transaction is open while VK is called.
    """
    now = ctx.clock()
    seen: _Seen = ctx.memory.setdefault("citizen_names", _Seen())
    full = seen.full_at is None or now - seen.full_at >= FULL_PASS
    after = (0, 0) if full else (seen.question, seen.message)
    # The reads in a transaction of their own, which on SQLite takes no write lock: a
    # full pass reads every question still showing an id, and held the lock 0.3-0.7 s
    # at a time in a storm (webhooks waiting) when it ran in the writing transaction.
    with ctx.transaction(reading=True) as session:
        _plan_each(session)
        tops = (
            session.execute(sa.select(sa.func.max(col(Question.id)))).scalar() or 0,
            session.execute(sa.select(sa.func.max(col(Message.id)))).scalar() or 0,
        )
        cached = cached_names(session, now, after=after)
        wanted, complete = _wanted(session, now, after=after[0])
        secrets = _secrets(session, ctx, wanted)
    applied = 0
    if cached.count:
        with ctx.transaction() as session:
            applied = write_names(session, cached)
    handled = applied
    for page_id, ids in wanted.items():
        if ctx.stopping.is_set():
            break
        names, next_check, reached = _ask(ctx, secrets.get(page_id), ids, now)
        with ctx.transaction() as session:
            _plan_each(session)
            remember(session, ids, names, checked_at=now, next_check_at=next_check)
            # Only those VK named have a name to write: none, when it was unreachable
            # or refused (the read would find nothing, at the cost of a join).
            named = [citizen_id for citizen_id in ids if names.get(citizen_id)]
            applied_now = (
                write_names(session, cached_names(session, now, citizens=named)) if named else 0
            )
        # VK unreachable is no work done: the job then waits its interval, not its short
        # pause after work (each run reads every citizen still shown as an id again).
        handled += (len(ids) if reached else 0) + applied_now
    if applied < _APPLY_BATCH and complete:
        # Everything above the marks was looked at (no query hit its limit): move on.
        seen.question, seen.message = seen.next_question, seen.next_message
        seen.next_question, seen.next_message = tops
        if full:
            seen.full_at = now
    return handled


def _plan_each(session: Session) -> None:
    """PostgreSQL plans these reads for their marks each time (SET LOCAL: this
    transaction only). A prepared statement's generic plan does not know that `id >
    mark` is a handful of new rows, and read every row still showing an id instead."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _ask(
    ctx: JobContext, page: PageSecrets | None, ids: Sequence[str], now: datetime
) -> tuple[dict[str, str], dict[str, datetime], bool]:
    """Names VK gives for `ids`, when each id is to be asked for again, and whether the
    question was settled (False: VK was unreachable or busy)."""
    names: dict[str, str] = {}
    retry = now + NAME_TTL
    reached = True
    if page is None or not page.access_token:
        retry = now + REFUSED_RETRY
    else:
        try:
            names = users_get(ctx.http, page, ids)
        except PermanentError as exc:
            log.warning(
                "VK refused users.get", extra={"fields": {"page": page.key, "code": exc.code}}
            )
            retry = now + REFUSED_RETRY
        except TransientError as exc:
            log.info("VK users.get failed", extra={"fields": {"page": page.key, "error": str(exc)}})
            retry = now + TRANSIENT_RETRY
            reached = False
    return names, dict.fromkeys(ids, retry), reached


def _wanted(session: Session, now: datetime, after: int = 0) -> tuple[dict[int, list[str]], bool]:
    """VK citizens shown as ids whose name is not cached (or is due to be asked again),
    grouped by a page to ask through: one with a token when they wrote to several.
    Of the questions above `after` only; and whether every one found was taken."""
    with_token = set(
        session.execute(
            select(Page.id).where(
                col(Page.platform) == PLATFORM, col(Page.access_token_enc).is_not(None)
            )
        ).scalars()
    )
    pages: dict[str, set[int]] = defaultdict(set)
    unnamed = sa.select(col(Question.citizen_platform_id), col(Question.page_id)).where(
        _UNNAMED_QUESTION,
        col(Question.id) > after,
        col(Question.citizen_platform_id) != "",
        sa.not_(col(Question.citizen_platform_id).startswith("-")),  # a community
    )
    for chunk in _chunks(session, unnamed):
        settled = _cached(session, {row[0] for row in chunk}, now, named=False)
        for citizen_id, page_id in chunk:
            if citizen_id not in settled:
                pages[citizen_id].add(page_id)
    limit = USERS_GET_LIMIT * CALLS_PER_RUN
    by_page: dict[int, list[str]] = defaultdict(list)
    complete = len(pages) < limit
    for citizen_id in sorted(pages)[:limit]:
        page_id = min(pages[citizen_id] & with_token or pages[citizen_id])
        ids = by_page[page_id]
        if len(ids) < USERS_GET_LIMIT and (ids or len(by_page) <= CALLS_PER_RUN):
            ids.append(citizen_id)
        else:
            complete = False
    return {page_id: ids for page_id, ids in by_page.items() if ids}, complete


def _chunks(session: Session, query: Any) -> Iterator[Sequence[Any]]:
    """The rows of `query`, read a chunk at a time (a server-side cursor on PostgreSQL)."""
    result = session.execute(query.execution_options(stream_results=True, yield_per=_CHUNK))
    try:
        yield from result.partitions()
    finally:
        result.close()


def _cached(
    session: Session, citizen_ids: set[str], now: datetime, *, named: bool
) -> dict[str, str]:
    """The cache's still valid answers for these citizens (`named`: only names, not the
    absence of one), by id. One table by its unique index: the planner cannot turn
    this into a loop over every cached name, as it did with the join it replaces when
    its statistics were older than a burst of new citizens."""
    if not citizen_ids:
        return {}
    query = sa.select(col(CitizenName.platform_id), col(CitizenName.name)).where(
        col(CitizenName.platform) == PLATFORM,
        bulk.among(session, col(CitizenName.platform_id), citizen_ids),
        col(CitizenName.next_check_at) > now,
    )
    if named:
        query = query.where(col(CitizenName.name) != "")
    return dict(session.execute(query).all())


def _secrets(
    session: Session, ctx: JobContext, wanted: Mapping[int, Sequence[str]]
) -> dict[int, PageSecrets]:
    found: dict[int, PageSecrets] = {}
    for page_id in wanted:
        page = directory_service.get_page(session, page_id)
        if page is None or not page.is_active:
            continue
        try:
            found[page_id] = directory_service.page_secrets(
                page, ctx.cipher, ctx.settings.api_url(PLATFORM)
            )
        except ValueError:  # a token the current secret key cannot read
            continue
    return found


def remember(
    session: Session,
    ids: Sequence[str],
    names: Mapping[str, str],
    *,
    checked_at: datetime,
    next_check_at: Mapping[str, datetime],
) -> None:
    """Cache what VK said of `ids` (a missing id: no name), whatever another worker
    wrote meanwhile (insert or update on the unique platform id)."""
    if not ids:
        return
    rows = [
        {
            "platform": PLATFORM,
            "platform_id": citizen_id,
            "name": names.get(citizen_id, ""),
            "checked_at": checked_at,
            "next_check_at": next_check_at[citizen_id],
        }
        for citizen_id in ids
    ]
    # One statement for the call's thousand ids, not one each.
    bulk.insert_many(
        session.connection(), _CITIZEN_NAMES, rows, update_on=("platform", "platform_id")
    )


@dataclass(frozen=True, slots=True)
class CachedNames:
    """(id, name) of questions and of messages to write a cached name on."""

    questions: list[tuple[int, str]]
    messages: list[tuple[int, str]]

    @property
    def count(self) -> int:
        return len(self.questions) + len(self.messages)


def write_names(session: Session, names: CachedNames) -> int:
    """Write names found by `cached_names`; how many rows got one."""
    # Names only, no ORM objects to synchronise; one statement on PostgreSQL, not one
    # UPDATE (and one firing of the question's statement triggers) a row.
    db = session.connection()
    bulk.update_many(db, _QUESTIONS, [{"id": i, "citizen_name": n} for i, n in names.questions])
    bulk.update_many(db, _MESSAGES, [{"id": i, "author_name": n} for i, n in names.messages])
    return names.count


def cached_names(
    session: Session,
    now: datetime,
    *,
    after: tuple[int, int] = (0, 0),
    citizens: Sequence[str] | None = None,
) -> CachedNames:
    """The cached, still valid names of VK questions and citizens' messages that show
    only an id: those above the ids `after` (question, message), or of `citizens`.
    Reads only; `write_names` writes them."""
    mine_q = [] if citizens is None else [col(Question.citizen_platform_id).in_(citizens)]
    mine_m = [] if citizens is None else [col(Message.author_id).in_(citizens)]
    questions = _named(
        session,
        now,
        sa.select(col(Question.id), col(Question.citizen_platform_id)).where(
            _UNNAMED_QUESTION, col(Question.id) > after[0], *mine_q
        ),
    )
    vk_pages = select(Page.id).where(col(Page.platform) == PLATFORM)
    messages = _named(
        session,
        now,
        sa.select(col(Message.id), col(Message.author_id)).where(
            col(Message.page_id).in_(vk_pages.scalar_subquery()),
            _UNNAMED_MESSAGE,
            col(Message.id) > after[1],
            *mine_m,
        ),
    )
    return CachedNames(questions, messages)


def _named(session: Session, now: datetime, unnamed: Any) -> list[tuple[int, str]]:
    """(id, cached name) of the rows of `unnamed` (id, citizen id) whose citizen has a
    valid name in the cache, _APPLY_BATCH at most."""
    found: list[tuple[int, str]] = []
    for chunk in _chunks(session, unnamed):
        names = _cached(session, {row[1] for row in chunk}, now, named=True)
        found += [(row[0], names[row[1]]) for row in chunk if row[1] in names]
        if len(found) >= _APPLY_BATCH:
            break
    return found[:_APPLY_BATCH]

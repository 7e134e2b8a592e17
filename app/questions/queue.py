"""The operator's queue (/inbox): its tabs, their counts, the first page of each, and
the mark a poll compares.

Counting the tabs reads every open question in scope: in a forgotten backlog of 20,000
open questions that is a grouped pass of 35-50 ms on SQLite, and sorting them for the
first page another 25 ms. Every open queue polls every 30 s, almost always to hear that
nothing changed. So each request first reads a cheap mark of the scope (how many
questions are open and their latest change, one aggregate over the queue's covering
index), and the counts and first-page ids computed under the same mark, in the same
minute, are reused from a small per-process cache. Any arrival, answer, assignment,
status or classification change moves the mark (each sets `updated_at`, or changes
the number of open questions); the minute moves it too, so overdue counts and the
SLA order follow the clock, and a change made without `updated_at` shows within a
minute at worst.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app.auth import service as auth_service
from app.auth.models import User
from app.questions import queries
from app.questions.models import OPEN_STATUSES, Question, QuestionStatus
from app.questions.queries import QuestionFilter
from app.routing.triage import NO_ANSWER

CLOSED_STATUSES = (
    QuestionStatus.answered,
    QuestionStatus.closed,
    QuestionStatus.dismissed,
    QuestionStatus.withdrawn,
)


@dataclass(frozen=True, slots=True)
class Tab:
    key: str
    title: str
    counted: bool = True  # the closed tab grows forever: no count
    recent: bool = False  # newest first instead of most urgent first


TABS = (
    Tab("mine", "Мои"),
    Tab("new", "Новые"),
    Tab("in_progress", "В работе"),
    Tab("waiting", "Ждут гражданина"),
    Tab("overdue", "Просрочены"),
    Tab("open", "Все открытые"),
    Tab("closed", "Закрытые", counted=False, recent=True),
    Tab("no_answer", "Не требуют ответа", recent=True),
)
TAB_BY_KEY = {tab.key: tab for tab in TABS}
DEFAULT_TAB = "open"


def tab_filter(tab: str, base: QuestionFilter, user: User, now: datetime) -> QuestionFilter:
    """The filter of a queue tab on top of the user's filters. Work tabs hold what needs
    an answer; gratitude, spam and reactions (triage's NO_ANSWER) have their own tab."""
    open_ = [str(s) for s in OPEN_STATUSES]
    work = replace(base, status=open_, needs_answer=True)
    if tab == "mine":
        return replace(work, assignee_id=user.id)
    if tab == "new":
        return replace(work, status=[QuestionStatus.new])
    if tab == "in_progress":
        return replace(work, status=[QuestionStatus.in_progress])
    if tab == "waiting":
        return replace(work, status=[QuestionStatus.waiting_citizen])
    if tab == "overdue":
        return replace(work, due_by=now)
    if tab == "closed":
        return replace(base, status=[str(s) for s in CLOSED_STATUSES])
    if tab == "no_answer":
        return replace(base, status=open_, needs_answer=False)
    return work


class _Lru:
    """A small thread-safe LRU (the web process serves sync views from a thread pool)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_COUNTS = _Lru(1024)
_FIRST_PAGES = _Lru(1024)


def clear_cache() -> None:
    """Forget every cached count and first page: an application starts with none, so
    that one process serving several databases in turn (the tests) never mixes them."""
    _COUNTS.clear()
    _FIRST_PAGES.clear()


@dataclass(frozen=True, slots=True)
class QueueState:
    """The counts of a queue's tabs and the version a poll compares (`queue_state`).

    `version` is "<newest>-<mark>": the newest question's id anywhere when it was taken
    (arrivals since are counted against it, `new_since`), and the scope's mark, which
    alone says whether anything changed (`unchanged`)."""

    counts: dict[str, int]
    version: str
    mark: str


def _scope_key(user: User) -> tuple[Any, ...]:
    return (user.id, user.role, user.territory_id, user.institution_id, user.sector)


def _mark(session: Session, user: User, now: datetime) -> tuple[int, str]:
    """The newest question's id, and the scope's mark: the number of open questions and
    their latest change, read from the queue's covering index in one statement, and the
    minute."""
    in_scope = auth_service.scope_filter(user, Question.institution_id)
    open_ = col(Question.status).in_([str(s) for s in OPEN_STATUSES])
    scope = (
        sa.select(sa.func.count(), sa.func.max(col(Question.updated_at)))
        .select_from(Question)
        .where(in_scope, open_)
        .subquery()
    )
    newest = sa.select(sa.func.max(col(Question.id))).scalar_subquery()
    count, changed, top = session.execute(sa.select(*scope.c, newest)).one()
    minute = int(now.timestamp()) // 60
    return int(top or 0), f"{count}.{_stamp(changed)}.{minute}"


def _stamp(value: object) -> str:
    if isinstance(value, datetime):
        return str(int(value.timestamp() * 1_000_000))
    # SQLite returns the stored text from an aggregate over a subquery's column.
    return "".join(ch for ch in str(value or 0) if ch.isdigit())


def queue_state(session: Session, user: User, base: QuestionFilter, now: datetime) -> QueueState:
    """How many open questions each counted tab holds under the user's filters, and the
    version a poll compares; the counts come from the cache while the mark holds."""
    newest, mark = _mark(session, user, now)
    key = (_scope_key(user), repr(base), mark)
    counts = _COUNTS.get(key)
    if counts is None:
        counts = _count_tabs(session, user, base, now)
        _COUNTS.put(key, counts)
    return QueueState(dict(counts), f"{newest}-{mark}", mark)


def unchanged(shown_version: str | None, state: QueueState) -> bool:
    """Whether the version a page shows has the current mark (a poll then answers 204)."""
    return shown_version is not None and shown_version.partition("-")[2] == state.mark


def newest_id(version: str) -> int | None:
    """The newest question's id a version was taken at (None: not a version)."""
    head = version.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _count_tabs(
    session: Session, user: User, base: QuestionFilter, now: datetime
) -> dict[str, int]:
    """One grouped pass over the open questions in scope under the user's filters."""
    no_answer = col(Question.classification).in_([str(c) for c in NO_ANSWER])
    overdue = sa.case((col(Question.due_at) <= now, 1), else_=0)
    mine = sa.case((col(Question.assignee_id) == user.id, 1), else_=0)
    query = queries.apply_filter(
        sa.select(
            col(Question.status),
            sa.case((no_answer, 1), else_=0),
            overdue,
            mine,
            sa.func.count(),
        )
        .select_from(Question)
        .where(auth_service.scope_filter(user, Question.institution_id))
        # By position: PostgreSQL would not match the CASEs' separately bound values.
        .group_by(sa.text("1, 2, 3, 4")),
        replace(base, status=[str(s) for s in OPEN_STATUSES], needs_answer=None, due_by=None),
    )
    counts = dict.fromkeys(("open", "new", "in_progress", "waiting", "overdue", "mine"), 0)
    counts["no_answer"] = 0
    for status, is_no_answer, is_overdue, is_mine, n in session.execute(query):
        if is_no_answer:
            counts["no_answer"] += n
            continue
        counts["open"] += n
        counts[_STATUS_TAB[str(status)]] += n
        counts["overdue"] += n if is_overdue else 0
        counts["mine"] += n if is_mine else 0
    return counts


_STATUS_TAB: dict[str, str] = {
    QuestionStatus.new: "new",
    QuestionStatus.in_progress: "in_progress",
    QuestionStatus.waiting_citizen: "waiting",
}

Lister = Callable[..., tuple[Sequence[Question], list[object] | None]]
_OPEN = {str(s) for s in OPEN_STATUSES} | {"open"}


def only_open(f: QuestionFilter) -> bool:
    """Whether a filter selects open questions only: the mark then covers every change
    that can move them (a closed question's changes do not move it)."""
    return bool(f.status) and all(str(s) in _OPEN for s in f.status or ())


def first_open_page(
    session: Session, user: User, f: QuestionFilter, *, now: datetime, limit: int
) -> tuple[Sequence[Question], list[object] | None]:
    """The first page of open questions under `f`, most urgent first, its ids kept under
    the scope's mark like the counts (a queue's tab, the API's `status=open`)."""
    if not only_open(f):
        raise ValueError("first_open_page: the filter must select open questions only")
    _, mark = _mark(session, user, now)
    return _first_page(session, user, f, mark, queries.list_questions, limit)


def _first_page(
    session: Session, user: User, f: QuestionFilter, mark: str, lister: Lister, limit: int
) -> tuple[Sequence[Question], list[object] | None]:
    # An overdue filter holds the request's instant: the minute in the mark stands for it.
    key = (
        _scope_key(user),
        lister.__name__,
        repr(replace(f, due_by=None)),
        f.due_by is None,
        limit,
        mark,
    )
    cached = _FIRST_PAGES.get(key)
    if cached is not None:
        ids, next_after = cached
        loaded = queries.load_in_order(session, ids, user)
        if len(loaded) == len(ids):
            return loaded, next_after
    rows, next_after = lister(session, user, f, after=None, limit=limit)
    _FIRST_PAGES.put(key, ([q.id for q in rows], next_after))
    return rows, next_after


def page(
    session: Session,
    user: User,
    tab: Tab,
    f: QuestionFilter,
    state: QueueState,
    *,
    after: list[object] | None,
    limit: int,
) -> tuple[Sequence[Question], list[object] | None]:
    """A page of a tab, most urgent first (newest first in the recent tabs). The first
    page of a tab of open questions is kept under the mark, like the counts; later
    pages, and the closed tab, are read afresh."""
    lister: Lister = queries.list_recent if tab.recent else queries.list_questions
    if after is not None or not only_open(f):
        return lister(session, user, f, after=after, limit=limit)
    return _first_page(session, user, f, state.mark, lister, limit)

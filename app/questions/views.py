"""The operator's queue, /inbox: tabs with counts, filters in the URL, live updates.

The filters live in the query string, so a link can be shared and the back button
works. A poll (`v`, the version the page shows) answers 204 while nothing changed,
else the queue again; the queue is read through `queries` (scoped to the user).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlmodel import Session, col, select

from app.auth import service as auth_service
from app.auth.deps import WebUserDep
from app.auth.models import Role, User, UserInstitution
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import Invalid
from app.core.format import PLATFORM_NAMES
from app.core.json_api import decode_cursor, encode_cursor
from app.core.web import ViewDep
from app.directory import snapshots as directory
from app.directory.models import Institution, Page
from app.questions import queries, queue
from app.questions.models import Question, TimelineEntry
from app.routing.models import Category
from app.sla import display

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
# Filter choices are offered as lists up to this many; past it (an administrator's
# whole region) the page list waits for an institution to be chosen.
MAX_OPTIONS = 300
FILTER_KEYS = ("institution", "page", "platform", "classification", "category", "assignee", "sla")
CLASSIFICATIONS = {
    "question": "Вопрос",
    "complaint": "Жалоба",
    "gratitude": "Благодарность",
    "spam": "Спам",
    "other": "Не вопрос",
}
SLA_STATES = {
    "breached": "Просрочен",
    "warning": "Скоро срок",
    "running": "В срок",
    "paused": "На паузе",
}


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


@dataclass
class QueueParams:
    """The queue's state as the URL holds it; unknown values are dropped, not errors."""

    tab: str = queue.DEFAULT_TAB
    q: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    cursor: str | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> QueueParams:
        tab = query.get("tab", "")
        filters = {k: query[k].strip() for k in FILTER_KEYS if query.get(k, "").strip()}
        checks = {
            "platform": lambda v: v in PLATFORM_NAMES,
            "classification": lambda v: v in CLASSIFICATIONS,
            "sla": lambda v: v in SLA_STATES,
            "assignee": lambda v: v in ("me", "none") or _int(v) is not None,
        }
        filters = {
            k: v
            for k, v in filters.items()
            if checks.get(k, lambda v: _int(v) is not None)(v)  # ids otherwise
        }
        return cls(
            tab=tab if tab in queue.TAB_BY_KEY else queue.DEFAULT_TAB,
            q=query.get("q", "").strip()[:200],
            filters=filters,
            cursor=query.get("cursor") or None,
        )

    def question_filter(self, user: User) -> queries.QuestionFilter:
        f = self.filters
        assignee = f.get("assignee")
        return queries.QuestionFilter(
            institution_id=_int(f.get("institution")),
            page_id=_int(f.get("page")),
            platform=f.get("platform"),
            classification=f.get("classification"),
            category_id=_int(f.get("category")),
            assignee_id=user.id if assignee == "me" else _int(assignee),
            unassigned=assignee == "none",
            sla_state=f.get("sla"),
            q=self.q or None,
        )

    def url(self, **changes: str | None) -> str:
        """/inbox with these params changed (None drops one); a new view starts at the top."""
        params: dict[str, str | None] = {"tab": self.tab, **self.filters, "q": self.q}
        params.update(changes)
        if params.get("tab") == queue.DEFAULT_TAB:
            params.pop("tab")
        kept = {k: v for k, v in params.items() if v}
        return "/inbox" + ("?" + urlencode(kept) if kept else "")

    @property
    def reset_url(self) -> str:
        """The same tab without filters or search."""
        return self.url(**dict.fromkeys(self.filters), q=None)

    @property
    def filtered(self) -> bool:
        return bool(self.filters or self.q)


@dataclass(frozen=True, slots=True)
class Row:
    question: Question
    sla: display.Urgency
    tz: str
    page_name: str
    institution_name: str
    category: str | None
    assignee: str | None
    first_line: str


def _names(session: Session, model: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(sa.select(model.id, model.name).where(col(model.id).in_(ids)))
    return {int(i): str(n) for i, n in rows}


def _rows(session: Session, questions: Sequence[Question], now: datetime) -> list[Row]:
    """Queue rows with everything a card shows, in a fixed number of queries."""
    ids = [q.id for q in questions if q.id is not None]
    slas = display.urgencies(session, ids, now)
    pages = _names(session, Page, {q.page_id for q in questions})
    institutions = _names(session, Institution, {q.institution_id for q in questions})
    categories = _names(session, Category, {q.category_id for q in questions if q.category_id})
    users = _user_names(session, {q.assignee_id for q in questions if q.assignee_id})
    rows = []
    for q in questions:
        info = directory.institution(session, q.institution_id)
        text = (q.text or "").strip()
        rows.append(
            Row(
                question=q,
                sla=slas.get(q.id or 0, display.NONE),
                tz=info.timezone if info else "Europe/Moscow",
                page_name=pages.get(q.page_id, ""),
                institution_name=institutions.get(q.institution_id, ""),
                category=categories.get(q.category_id) if q.category_id else None,
                assignee=users.get(q.assignee_id) if q.assignee_id else None,
                first_line=text.splitlines()[0] if text else "",
            )
        )
    return rows


def _user_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        sa.select(col(User.id), col(User.name), col(User.login)).where(col(User.id).in_(ids))
    )
    return {int(i): str(name or login) for i, name, login in rows}


@dataclass
class Options:
    institutions: list[tuple[int, str]]
    pages: list[tuple[int, str]]
    categories: list[tuple[int, str]]
    assignees: list[tuple[int, str]]
    page_count: int


def _options(session: Session, user: User, institution_id: int | None) -> Options:
    """The choices of the filter form, within the user's scope."""
    scope = auth_service.scope_filter(user, Institution.id)
    institutions = [
        (int(i), str(n))
        for i, n in session.execute(
            sa.select(col(Institution.id), col(Institution.name))
            .where(scope)
            .order_by(col(Institution.name))
            .limit(MAX_OPTIONS + 1)
        )
    ]
    page_scope = auth_service.scope_filter(user, Page.institution_id)
    pages_query = sa.select(col(Page.id), col(Page.name), col(Page.platform)).where(page_scope)
    if institution_id is not None:
        pages_query = pages_query.where(col(Page.institution_id) == institution_id)
    page_rows = session.execute(pages_query.order_by(col(Page.name)).limit(MAX_OPTIONS + 1)).all()
    page_count = len(page_rows)
    if page_count == 0 and institution_id is not None:
        page_count = session.execute(
            sa.select(sa.func.count()).select_from(Page).where(page_scope)
        ).scalar_one()
    pages = [
        (int(i), f"{n} ({PLATFORM_NAMES.get(str(p), 'другая система')})") for i, n, p in page_rows
    ]
    categories = [
        (int(c.id), c.name)
        for c in session.exec(select(Category).order_by(col(Category.name)))
        if c.id is not None
    ]
    colleagues = (
        sa.select(col(User.id), col(User.name), col(User.login))
        .join(UserInstitution, col(UserInstitution.user_id) == col(User.id))
        .where(
            col(User.is_active),
            auth_service.scope_filter(user, UserInstitution.institution_id),
        )
        .distinct()
        .order_by(col(User.name))
        .limit(MAX_OPTIONS)
    )
    assignees = [(int(i), str(name or login)) for i, name, login in session.execute(colleagues)]
    return Options(
        institutions=institutions if len(institutions) <= MAX_OPTIONS else [],
        pages=pages if len(pages) <= MAX_OPTIONS else [],
        categories=categories,
        assignees=assignees,
        page_count=page_count,
    )


def _viewer_tz(institution_ids: list[int], session: Session) -> str | None:
    # The viewer's zone: their institutions' when these share one (times then show
    # without «МСК+2»); else none, and every time names its zone.
    zones = {
        info.timezone
        for i in institution_ids[:50]
        if (info := directory.institution(session, i)) is not None
    }
    return zones.pop() if len(zones) == 1 else None


def _transferred(session: Session, user: User, question_id: int | None, now: datetime) -> str:
    """After the user transferred a question out of their queues (the question page sends
    them here with `?transferred=N`): where it went. Only the user's own transfer of the
    last hour is named, so the parameter reveals nothing about other questions."""
    if question_id is None:
        return ""
    entry = session.exec(
        select(TimelineEntry)
        .where(
            col(TimelineEntry.question_id) == question_id,
            col(TimelineEntry.kind) == "transferred",
            col(TimelineEntry.actor_id) == user.id,
            col(TimelineEntry.at) >= now - timedelta(hours=1),
        )
        .order_by(col(TimelineEntry.at).desc())
        .limit(1)
    ).first()
    if entry is None:
        return ""
    target = session.get(Institution, int(entry.data.get("to_institution_id") or 0))
    where = f"в «{target.name}»" if target is not None else "в другое учреждение"
    return f"Вопрос №{question_id} передан {where} и ушёл из вашей очереди."


@router.get("/inbox", name="inbox:index", response_class=HTMLResponse)
def inbox(
    request: Request, session: SessionDep, user: WebUserDep, view: ViewDep, clock: ClockDep
) -> Response:
    now = clock()
    params = QueueParams.parse(request.query_params)
    base = params.question_filter(user)
    tab = queue.TAB_BY_KEY[params.tab]
    f = queue.tab_filter(params.tab, base, user, now)
    state = queue.queue_state(session, user, base, now)
    version = state.version
    shown_version = request.query_params.get("v")
    if queue.unchanged(shown_version, state):
        return Response(status_code=204, headers={"Vary": "HX-Request"})

    try:
        after = decode_cursor(params.cursor)
        questions, next_after = queue.page(
            session, user, tab, f, state, after=after, limit=PAGE_SIZE
        )
    except Invalid:
        # A stale or hand-edited cursor: start from the top rather than fail.
        params.cursor = None
        questions, next_after = queue.page(
            session, user, tab, f, state, after=None, limit=PAGE_SIZE
        )
    counts = state.counts
    arrived = 0
    if shown_version is not None:
        seen = queue.newest_id(shown_version)
        if seen is not None:
            arrived = queries.new_since(session, user, f, seen)
    options = _options(session, user, base.institution_id)
    request.state.viewer_tz = _viewer_tz([i for i, _ in options.institutions], session)
    context: dict[str, Any] = {
        "now": now,
        "params": params,
        "tab": tab,
        "tabs": queue.TABS,
        "counts": counts,
        "rows": _rows(session, questions, now),
        "next_url": params.url(cursor=encode_cursor(next_after)) if next_after else None,
        "first_url": params.url() if params.cursor else None,
        "version": version,
        "poll_url": params.url(cursor=params.cursor),
        "arrived": arrived,
        "polled": shown_version is not None,
        "options": options,
        "classifications": CLASSIFICATIONS,
        "sla_states": SLA_STATES,
        "platforms": {k: v for k, v in PLATFORM_NAMES.items() if k != "generic"},
        "is_admin": user.role == Role.admin,
        "no_institutions": not options.institutions,
        "no_pages": options.page_count == 0,
        "transferred": _transferred(
            session, user, _int(request.query_params.get("transferred")), now
        ),
    }
    if view.wants_fragment:
        return view.render("questions/_queue.html", **context)
    return view.render("questions/inbox.html", **context)

"""The supervisor's dashboard: every figure of one scope and period, from the modules
that define them (`figures` for the period, `backlog` for now), plus the drill-down
trail and the pages that went silent."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col, select

from app.auth.models import User
from app.directory.models import SECTOR_NAMES_RU, Institution, Page, Sector, Territory
from app.questions.models import Question
from app.reports import backlog as backlog_figures
from app.reports import figures
from app.reports.figures import SlaRow
from app.reports.periods import Period
from app.reports.population import (
    ReportFilter,
    Scope,
    group_names,
    report_scope,
    scope_root,
    visible_conditions,
)

SILENT_DAYS = 7
SILENT_LIMIT = 50
# The backlog's ages on the dashboard, from the backlog's finer buckets.
DAY_BUCKETS: dict[str, tuple[str, ...]] = {
    "under_1d": ("under_1h", "1h_8h", "8h_24h"),
    "1d_3d": ("1d_3d",),
    "3d_7d": ("3d_7d",),
    "over_7d": ("over_7d",),
}


class Crumb(BaseModel):
    name: str
    territory_id: int | None = None
    institution_id: int | None = None


class NowFigures(BaseModel):
    """The open backlog of the scope now (whenever the questions came)."""

    open: int = 0
    overdue: int = 0
    warning: int = 0
    oldest_wall_minutes: float | None = None
    by_age: dict[str, int] = {}


class SilentPage(BaseModel):
    id: int
    name: str
    platform: str
    institution_id: int
    institution: str
    last_question_at: datetime | None


class Dashboard(BaseModel):
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime
    period: str
    timezone: str
    trend_by: str
    scope_name: str
    territory_id: int | None = None
    institution_id: int | None = None
    sector: str | None = None
    breadcrumbs: list[Crumb]
    headline: SlaRow
    now: NowFigures
    trend: list[SlaRow]
    by_sector: list[SlaRow]
    by_classification: list[SlaRow]
    ranking_by: str
    ranking: list[SlaRow]
    # The ranking's row of the root territory's own institutions (not a child's).
    ranking_own_key: str | None = None
    silent_days: int
    silent_pages: list[SilentPage]
    silent_total: int


def ranking_group(session: Session, f: ReportFilter, user: User, scope: Scope | None = None) -> str:
    """What the ranking ranks: pages of an institution, else the child territories of
    the scope's root while it has any, else its institutions."""
    if f.institution_id is not None:
        return "page"
    scope = scope or report_scope(session, f, user)
    if scope.root_id:
        children = session.exec(
            select(sa.func.count())
            .select_from(Territory)
            .where(Territory.parent_id == scope.root_id)
        ).one()
        if children:
            return "territory"
    return "institution"


def breadcrumbs(session: Session, user: User, f: ReportFilter) -> list[Crumb]:
    """From the caller's own root down to the territory (and institution) in view."""
    root = scope_root(session, user)
    territory: Territory | None = None
    institution = session.get(Institution, f.institution_id) if f.institution_id else None
    if f.territory_id is not None:
        territory = session.get(Territory, f.territory_id)
    elif institution is not None:
        territory = session.get(Territory, institution.territory_id)
    trail: list[Crumb] = []
    if territory is not None:
        ids = [int(p) for p in territory.path.strip("/").split("/") if p]
        if root is not None and root.id in ids:
            ids = ids[ids.index(root.id) :]
        found = {t.id: t for t in session.exec(select(Territory).where(col(Territory.id).in_(ids)))}
        trail = [Crumb(name=found[i].name, territory_id=i) for i in ids if i in found]
    elif root is not None:
        trail = [Crumb(name=root.name, territory_id=root.id)]
    if institution is not None:
        trail.append(Crumb(name=institution.name, institution_id=institution.id))
    if f.sector is not None and f.sector in Sector.__members__:
        trail.append(Crumb(name=SECTOR_NAMES_RU[Sector(f.sector)]))
    return trail or [Crumb(name="Все территории")]


def silent_pages(
    session: Session, user: User, f: ReportFilter, now: datetime, days: int = SILENT_DAYS
) -> tuple[list[SilentPage], int]:
    """Active pages in scope with no question for `days` days (or never), longest silent
    first: a broken webhook looks exactly like a quiet page otherwise."""
    last = (
        sa.select(sa.func.max(col(Question.created_at)))
        .where(col(Question.page_id) == col(Page.id))
        .scalar_subquery()
    )
    since = now - timedelta(days=days)
    base = (
        sa.select(
            col(Page.id),
            col(Page.name),
            col(Page.platform),
            col(Institution.id),
            col(Institution.name),
            last.label("last"),
        )
        .join(Institution, col(Institution.id) == col(Page.institution_id))
        .where(
            col(Page.is_active).is_(True),
            *visible_conditions(session, user, f, col(Page.institution_id)),
        )
        .subquery()
    )
    quiet = sa.or_(base.c.last.is_(None), base.c.last < since)
    total = int(
        session.execute(sa.select(sa.func.count()).select_from(base).where(quiet)).scalar_one()
    )
    rows = session.execute(
        sa.select(base)
        .where(quiet)
        .order_by(base.c.last.is_not(None), base.c.last, base.c.id)
        .limit(SILENT_LIMIT)
    )
    pages = []
    for pid, name, platform, inst_id, inst_name, at in rows:
        if isinstance(at, str):  # SQLite hands back text through max()
            at = datetime.fromisoformat(at).replace(tzinfo=now.tzinfo)
        pages.append(
            SilentPage(
                id=pid,
                name=name,
                platform=str(platform),
                institution_id=inst_id,
                institution=inst_name,
                last_question_at=at,
            )
        )
    return pages, total


def _every_step(session: Session, period: Period, by: str, rows: list[SlaRow]) -> list[SlaRow]:
    """The trend with a row for every day (or week) of the period, quiet ones as zeros,
    so the chart's x axis runs evenly through time."""
    keys: list[str] = []
    day = period.first_day
    while day <= period.last_day:
        if by == "day":
            key = day.isoformat()
        else:
            year, week, _ = day.isocalendar()
            key = f"{year}-W{week:02d}"
        if not keys or keys[-1] != key:
            keys.append(key)
        day += timedelta(days=1)
    found = {r.key: r for r in rows}
    names = group_names(session, by, set(keys) - set(found))
    out = [found.get(k) or SlaRow(key=k, name=names.get(k, k)) for k in keys]
    # Rows outside the period's dates (none, unless a custom period ends mid-day).
    return out + [r for r in rows if r.key not in set(keys)]


def dashboard(
    session: Session,
    user: User,
    period: Period,
    *,
    now: datetime,
    territory_id: int | None = None,
    institution_id: int | None = None,
    sector: str | None = None,
    silent_days: int = SILENT_DAYS,
) -> Dashboard:
    """Every figure of the dashboard for the scope and period. Raises NotFound for a
    territory or institution outside the caller's scope, Invalid for a bad filter."""
    # A sector department's supervisor sees their sector: say so in the trail.
    sector = sector or user.sector
    f = ReportFilter(period.start, period.end, territory_id, institution_id, "total", sector)
    prepared = figures.prepare(session, user, f)
    scope = prepared.scope
    trend_by = "week" if period.by_week else "day"
    rank_by = ranking_group(session, f, user, scope)
    # The trend and breakdowns show counts and rates; their percentiles (a sort each)
    # are in the SLA report by day, week, sector or classification. The ranking shows
    # the working-time median, compared by on-time rate.
    none: tuple[str, ...] = ()
    plans = [
        figures.Plan("total", compare=True),
        figures.Plan(trend_by, none),
        figures.Plan("sector", none),
        figures.Plan("classification", none),
        figures.Plan(rank_by, ("working",), compare=True, previous_measures=none),
    ]
    reports = figures.sla_reports(session, user, f, plans, now=now, prepared=prepared)
    total = reports["total"]
    headline = total[0] if total else SlaRow(key="total", name="Всего", previous=figures.Previous())
    trend = _every_step(session, period, trend_by, reports[trend_by])
    by_sector = reports["sector"]
    by_class = reports["classification"]
    ranking = reports[rank_by]
    own_key = str(scope.root_id) if rank_by == "territory" and scope.root_id else None
    for ranked in ranking:
        if ranked.key == own_key:
            ranked.name = f"{ranked.name}: собственные учреждения"
    # Worst first; groups with nothing judged last.
    ranking.sort(key=lambda r: (r.on_time_rate is None, r.on_time_rate or 0.0, r.name.lower()))
    open_now = backlog_figures.backlog(
        session,
        user,
        now=now,
        territory_id=territory_id,
        institution_id=institution_id,
        group_by="total",
        sector=sector,
    )
    current = NowFigures(by_age=dict.fromkeys(DAY_BUCKETS, 0))
    if open_now:
        row = open_now[0]
        current = NowFigures(
            open=row.open,
            overdue=row.overdue,
            warning=row.warning,
            oldest_wall_minutes=row.oldest_wall_minutes,
            by_age={
                k: sum(row.by_age.get(b, 0) for b in parts) for k, parts in DAY_BUCKETS.items()
            },
        )
    silent, silent_total = silent_pages(session, user, f, now, silent_days)
    crumbs = breadcrumbs(session, user, f)
    previous = f.previous()
    return Dashboard(
        start=period.start,
        end=period.end,
        previous_start=previous.start,
        previous_end=previous.end,
        period=period.key,
        timezone=scope.timezone,
        trend_by=trend_by,
        scope_name=crumbs[-1].name,
        territory_id=territory_id,
        institution_id=institution_id,
        sector=sector,
        breadcrumbs=crumbs,
        headline=headline,
        now=current,
        trend=trend,
        by_sector=by_sector,
        by_classification=by_class,
        ranking_by=rank_by,
        ranking=ranking,
        ranking_own_key=own_key,
        silent_days=silent_days,
        silent_pages=silent,
        silent_total=silent_total,
    )

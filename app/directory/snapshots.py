"""Pages and institutions as ingestion sees them, from `app.core.snapshots` (no query per event)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.core import bulk, snapshots
from app.directory.models import Institution, Page, Platform, Territory

DEFAULT_TIMEZONE = "Europe/Moscow"


@dataclass(frozen=True, slots=True)
class InstitutionInfo:
    id: int
    sector: str
    territory_id: int
    # The materialised path of its territory; None when the territory is gone.
    territory_path: str | None
    # Its territory's time zone (the default one when the territory is gone).
    timezone: str


@dataclass(frozen=True, slots=True)
class PageInfo:
    """A page with what processing needs of it: the columns of its credentials, still
    encrypted (`directory.service.page_secrets` decrypts them), and its institution."""

    id: int
    institution_id: int
    platform: Platform
    key: str
    external_id: str
    secret_enc: str | None
    access_token_enc: str | None
    user_token_enc: str | None
    confirmation_code: str | None
    staff_ids: tuple[str, ...]
    institution: InstitutionInfo


def _institution_info(institution: Institution, territory: Territory | None) -> InstitutionInfo:
    assert institution.id is not None
    return InstitutionInfo(
        id=institution.id,
        sector=str(institution.sector),
        territory_id=institution.territory_id,
        territory_path=territory.path if territory else None,
        timezone=territory.timezone if territory else DEFAULT_TIMEZONE,
    )


def _load_page(session: Session, page_id: int) -> PageInfo | None:
    row = session.exec(
        select(Page, Institution, Territory)
        .join(Institution, col(Institution.id) == col(Page.institution_id))
        .outerjoin(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(col(Page.id) == page_id)
    ).first()
    if row is None:
        return None
    return _page_info(*row)


def _page_info(page: Page, institution: Institution, territory: Territory | None) -> PageInfo:
    assert page.id is not None
    return PageInfo(
        id=page.id,
        institution_id=page.institution_id,
        platform=Platform(page.platform),
        key=page.key,
        external_id=page.external_id,
        secret_enc=page.secret_enc,
        access_token_enc=page.access_token_enc,
        user_token_enc=page.user_token_enc,
        confirmation_code=page.confirmation_code,
        staff_ids=tuple(page.staff_ids),
        institution=_institution_info(institution, territory),
    )


def _load_institution(session: Session, institution_id: int) -> InstitutionInfo | None:
    row = session.exec(
        select(Institution, Territory)
        .outerjoin(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(col(Institution.id) == institution_id)
    ).first()
    return _institution_info(*row) if row is not None else None


def _load_pages(session: Session, keys: list[Hashable]) -> dict[Hashable, object]:
    ids = [key[1] for key in keys if isinstance(key, tuple)]
    rows = session.exec(
        select(Page, Institution, Territory)
        .join(Institution, col(Institution.id) == col(Page.institution_id))
        .outerjoin(Territory, col(Territory.id) == col(Institution.territory_id))
        .where(bulk.among(session, col(Page.id), ids))
    ).all()
    out: dict[Hashable, object] = {}
    for row in rows:
        info = _page_info(*row)
        out[("page", info.id)] = info
        out[("institution", info.institution_id)] = info.institution
    return out


def prime_pages(session: Session, page_ids: Iterable[int]) -> None:
    """Load the pages (and their institutions) of a batch of events whose snapshots are
    missing or stale, in one query (`page` and `institution` then find them)."""
    snapshots.prime(session, [("page", page_id) for page_id in page_ids], _load_pages)


def page(session: Session, page_id: int) -> PageInfo | None:
    """The page (None: it is gone)."""
    return snapshots.get(session, ("page", page_id), lambda s: _load_page(s, page_id))


def institution(session: Session, institution_id: int) -> InstitutionInfo | None:
    """The institution (None: it is gone)."""
    return snapshots.get(
        session, ("institution", institution_id), lambda s: _load_institution(s, institution_id)
    )

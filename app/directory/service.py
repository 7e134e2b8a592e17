"""Territories, institutions and pages: create, change, list, decrypt credentials."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.crypto import Cipher
from app.core.db import utcnow
from app.core.errors import Conflict, Invalid, NotFound
from app.directory.models import (
    Institution,
    InstitutionCreate,
    InstitutionUpdate,
    Page,
    PageCreate,
    PageRead,
    PageUpdate,
    Platform,
    Territory,
    TerritoryCreate,
    TerritoryUpdate,
)
from app.directory.snapshots import PageInfo
from webhooks import PageSecrets

PATH_SEPARATOR = " / "


def new_page_key() -> str:
    # 32 URL-safe characters (192 bits): OK's deliveries carry no other secret.
    return secrets.token_urlsafe(24)


# --- territories ------------------------------------------------------------


def get_territory(session: Session, territory_id: int) -> Territory | None:
    return session.get(Territory, territory_id)


def _territory_or_404(session: Session, territory_id: int) -> Territory:
    territory = session.get(Territory, territory_id)
    if territory is None:
        raise NotFound(f"Территория {territory_id} не найдена")
    return territory


def create_territory(session: Session, data: TerritoryCreate) -> Territory:
    """Add a node to the territory tree. Raises NotFound (parent), Conflict (duplicate)."""
    parent = _territory_or_404(session, data.parent_id) if data.parent_id is not None else None
    full_name = (
        data.name.strip()
        if parent is None
        else parent.full_name + PATH_SEPARATOR + data.name.strip()
    )
    if session.exec(select(Territory.id).where(Territory.full_name == full_name)).first():
        raise Conflict(f"Территория «{full_name}» уже есть", code="duplicate")
    territory = Territory.model_validate(
        data, update={"full_name": full_name, "name": data.name.strip()}
    )
    session.add(territory)
    session.flush()
    territory.path = (parent.path if parent else "/") + f"{territory.id}/"
    session.add(territory)
    session.flush()
    return territory


def update_territory(session: Session, territory_id: int, data: TerritoryUpdate) -> Territory:
    territory = _territory_or_404(session, territory_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "name" in changes and changes["name"] != territory.name:
        old_full = territory.full_name
        prefix = old_full[: -len(territory.name)]
        new_full = prefix + changes["name"]
        if session.exec(select(Territory.id).where(Territory.full_name == new_full)).first():
            raise Conflict(f"Территория «{new_full}» уже есть", code="duplicate")
        # Descendants' full names carry the old name as a prefix.
        for row in session.exec(
            select(Territory).where(col(Territory.path).startswith(territory.path))
        ).all():
            row.full_name = new_full + row.full_name[len(old_full) :]
            session.add(row)
    for field, value in changes.items():
        setattr(territory, field, value)
    session.add(territory)
    session.flush()
    return territory


def list_territories(
    session: Session, *, parent_id: int | None = None, after_id: int = 0, limit: int = 50
) -> Sequence[Territory]:
    query = select(Territory).where(col(Territory.id) > after_id)
    if parent_id is not None:
        query = query.where(Territory.parent_id == parent_id)
    return session.exec(query.order_by(col(Territory.id)).limit(limit)).all()


def territory_chain(session: Session, territory: Territory) -> list[Territory]:
    """The territory and its ancestors, nearest first."""
    ids = [int(part) for part in territory.path.strip("/").split("/") if part]
    rows = {t.id: t for t in session.exec(select(Territory).where(col(Territory.id).in_(ids)))}
    return [rows[i] for i in reversed(ids) if i in rows]


# --- institutions -----------------------------------------------------------


def get_institution(session: Session, institution_id: int) -> Institution | None:
    return session.get(Institution, institution_id)


def _institution_or_404(session: Session, institution_id: int) -> Institution:
    institution = session.get(Institution, institution_id)
    if institution is None:
        raise NotFound(f"Учреждение {institution_id} не найдено")
    return institution


def _check_parent(
    session: Session, institution: Institution | None, parent_id: int | None
) -> Institution | None:
    if parent_id is None:
        return None
    parent = _institution_or_404(session, parent_id)
    if (
        institution is not None
        and institution.id is not None
        and f"/{institution.id}/" in parent.path
    ):
        raise Invalid("Учреждение не может подчиняться само себе", code="cycle")
    return parent


def create_institution(session: Session, data: InstitutionCreate) -> Institution:
    _territory_or_404(session, data.territory_id)
    parent = _check_parent(session, None, data.parent_id)
    name = data.name.strip()
    exists = session.exec(
        select(Institution.id).where(
            Institution.territory_id == data.territory_id, Institution.name == name
        )
    ).first()
    if exists:
        raise Conflict(f"Учреждение «{name}» на этой территории уже есть", code="duplicate")
    institution = Institution.model_validate(data, update={"name": name})
    session.add(institution)
    session.flush()
    institution.path = (parent.path if parent else "/") + f"{institution.id}/"
    session.add(institution)
    session.flush()
    return institution


def update_institution(
    session: Session, institution_id: int, data: InstitutionUpdate
) -> Institution:
    institution = _institution_or_404(session, institution_id)
    changes = data.model_dump(exclude_unset=True)
    if "territory_id" in changes and changes["territory_id"] is not None:
        _territory_or_404(session, changes["territory_id"])
    if "parent_id" in changes and changes["parent_id"] != institution.parent_id:
        parent = _check_parent(session, institution, changes["parent_id"])
        old_path = institution.path
        new_path = (parent.path if parent else "/") + f"{institution.id}/"
        for row in session.exec(
            select(Institution).where(col(Institution.path).startswith(old_path))
        ).all():
            row.path = new_path + row.path[len(old_path) :]
            session.add(row)
    for field, value in changes.items():
        if field in {"name", "sector", "territory_id"} and value is None:
            continue
        setattr(institution, field, value)
    session.add(institution)
    session.flush()
    return institution


def list_institutions(
    session: Session,
    *,
    territory_id: int | None = None,
    sector: str | None = None,
    visible: sa.Select[Any] | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> Sequence[Institution]:
    query = select(Institution).where(col(Institution.id) > after_id)
    if territory_id is not None:
        query = query.where(Institution.territory_id == territory_id)
    if sector is not None:
        query = query.where(Institution.sector == sector)
    if visible is not None:
        query = query.where(col(Institution.id).in_(visible))
    return session.exec(query.order_by(col(Institution.id)).limit(limit)).all()


# --- pages ------------------------------------------------------------------


def get_page(session: Session, page_id: int) -> Page | None:
    return session.get(Page, page_id)


def get_page_by_key(session: Session, key: str) -> Page | None:
    return session.exec(select(Page).where(Page.key == key)).first()


def _page_or_404(session: Session, page_id: int) -> Page:
    page = session.get(Page, page_id)
    if page is None:
        raise NotFound(f"Страница {page_id} не найдена")
    return page


def _check_platform_fields(platform: Platform, external_id: str, secret: str | None) -> None:
    if platform == Platform.vk and not external_id.lstrip("-").isdigit():
        raise Invalid(
            "Для ВКонтакте external_id — числовой group_id сообщества", code="external_id"
        )
    if platform == Platform.telegram and not external_id.lstrip("-").isdigit():
        raise Invalid("Для Telegram external_id — числовой id канала", code="external_id")
    if secret is not None and platform in (Platform.telegram, Platform.max):
        allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
        if not set(secret) <= allowed or not 1 <= len(secret) <= 256:
            raise Invalid("Секрет: 1–256 символов A–Z, a–z, 0–9, _ и -", code="secret")


def create_page(session: Session, data: PageCreate, cipher: Cipher) -> Page:
    """Connect a page. Credentials are encrypted; the URL key is generated."""
    _institution_or_404(session, data.institution_id)
    external_id = data.external_id.strip()
    if data.platform == Platform.vk:
        # group_id is positive; accept the "-123" form people copy from owner_id.
        external_id = external_id.lstrip("-")
    _check_platform_fields(data.platform, external_id, data.secret)
    if session.exec(
        select(Page.id).where(Page.platform == data.platform, Page.external_id == external_id)
    ).first():
        raise Conflict("Эта страница уже подключена", code="duplicate")
    page = Page(
        institution_id=data.institution_id,
        platform=data.platform,
        name=data.name.strip(),
        url=data.url.strip(),
        external_id=external_id,
        key=new_page_key(),
        secret_enc=cipher.encrypt(data.secret),
        access_token_enc=cipher.encrypt(data.access_token),
        user_token_enc=cipher.encrypt(data.user_token),
        confirmation_code=data.confirmation_code,
        staff_ids=data.staff_ids,
    )
    session.add(page)
    session.flush()
    return page


def update_page(
    session: Session,
    page_id: int,
    data: PageUpdate,
    cipher: Cipher,
) -> Page:
    page = _page_or_404(session, page_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("institution_id") is not None:
        _institution_or_404(session, changes["institution_id"])
    for field in ("secret", "access_token", "user_token"):
        if field in changes:
            setattr(page, f"{field}_enc", cipher.encrypt(changes.pop(field)))
    if "external_id" in changes and changes["external_id"] is not None:
        changes["external_id"] = str(changes["external_id"]).strip()
    if "staff_ids" in changes and changes["staff_ids"] is not None:
        changes["staff_ids"] = [str(v) for v in changes["staff_ids"]]
    for field, value in changes.items():
        if value is None and field in {
            "institution_id",
            "name",
            "external_id",
            "is_active",
            "staff_ids",
            "url",
        }:
            continue
        setattr(page, field, value)
    _check_platform_fields(page.platform, page.external_id, None)
    page.updated_at = utcnow()
    session.add(page)
    session.flush()
    return page


def list_pages(
    session: Session,
    *,
    institution_id: int | None = None,
    platform: str | None = None,
    visible: sa.Select[Any] | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> Sequence[Page]:
    query = select(Page).where(col(Page.id) > after_id)
    if institution_id is not None:
        query = query.where(Page.institution_id == institution_id)
    if platform is not None:
        query = query.where(Page.platform == platform)
    if visible is not None:
        query = query.where(col(Page.institution_id).in_(visible))
    return session.exec(query.order_by(col(Page.id)).limit(limit)).all()


def webhook_url(base_url: str, page: Page) -> str:
    return f"{base_url.rstrip('/')}/webhooks/{page.platform}/{page.key}"


def page_read(page: Page, base_url: str) -> PageRead:
    assert page.id is not None
    return PageRead(
        id=page.id,
        institution_id=page.institution_id,
        platform=page.platform,
        name=page.name,
        url=page.url,
        external_id=page.external_id,
        key=page.key,
        webhook_url=webhook_url(base_url, page),
        confirmation_code=page.confirmation_code,
        staff_ids=list(page.staff_ids),
        is_active=page.is_active,
        has_secret=page.secret_enc is not None,
        has_access_token=page.access_token_enc is not None,
        has_user_token=page.user_token_enc is not None,
        created_at=page.created_at,
    )


def page_secrets(page: Page | PageInfo, cipher: Cipher, api_url: str = "") -> PageSecrets:
    """The decrypted view of a page that platform adapters work with."""
    return PageSecrets(
        platform=page.platform,
        key=page.key,
        external_id=page.external_id,
        secret=cipher.decrypt(page.secret_enc),
        confirmation_code=page.confirmation_code,
        access_token=cipher.decrypt(page.access_token_enc),
        user_token=cipher.decrypt(page.user_token_enc),
        staff_ids=frozenset(page.staff_ids),
        api_url=api_url,
    )

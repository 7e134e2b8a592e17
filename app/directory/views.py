"""JSON API of the directory: territories, institutions, pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from sqlmodel import Session

from app.auth import audit
from app.auth import service as auth_service
from app.auth.deps import ApiAdminDep, ApiUserDep, SettingsDep, client_address
from app.auth.models import User
from app.core.crypto import get_cipher
from app.core.db import SessionDep
from app.core.errors import Invalid, NotFound
from app.core.json_api import ERROR_RESPONSES, Listing, clamp_limit, encode_cursor, id_cursor
from app.directory import (
    admin,
    connect_views,
    imports,
    institution_admin,
    page_admin,
    service,
    spreadsheet,
)
from app.directory.models import (
    InstitutionCreate,
    InstitutionRead,
    InstitutionUpdate,
    PageCreate,
    PageRead,
    PageUpdate,
    Platform,
    Sector,
    TerritoryCreate,
    TerritoryRead,
    TerritoryUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["directory"], responses=ERROR_RESPONSES)

TERRITORY_FIELDS = ("full_name", "kind", "timezone")
INSTITUTION_FIELDS = ("name", "territory_id", "sector", "parent_id", "retention_days")
# Credentials are recorded as set or not (masked by the audit log), never their values.
PAGE_FIELDS = (
    "institution_id",
    "platform",
    "name",
    "url",
    "external_id",
    "staff_ids",
    "is_active",
    "secret_enc",
    "access_token_enc",
    "user_token_enc",
)


def _audit(
    request: Request,
    session: Session,
    user: User,
    action: str,
    row: Any,
    before: dict[str, Any] | None,
    fields: tuple[str, ...],
) -> None:
    """Every change made through the API is in the audit log, as the pages' are."""
    kind = action.split(".")[0]
    label = getattr(row, "full_name", None) or getattr(row, "name", "")
    audit.record(
        session,
        actor=user,
        action=action,
        object_type=kind,
        object_id=row.id,
        before=before,
        after=audit.snapshot(row, fields),
        address=client_address(request),
        summary=f"{label} (API)",
    )


@router.post(
    "/territories", response_model=TerritoryRead, status_code=201, name="api:territory_create"
)
def create_territory(
    data: TerritoryCreate, request: Request, session: SessionDep, user: ApiAdminDep
) -> TerritoryRead:
    """Add a territory (region, municipality, settlement) under `parent_id`."""
    territory = service.create_territory(session, data)
    _audit(request, session, user, "territory.create", territory, None, TERRITORY_FIELDS)
    session.commit()
    return TerritoryRead.model_validate(territory)


@router.get("/territories", response_model=Listing[TerritoryRead], name="api:territory_list")
def list_territories(
    session: SessionDep,
    user: ApiUserDep,
    parent_id: int | None = None,
    limit: Annotated[int | None, Query()] = None,
    cursor: str | None = None,
) -> Listing[TerritoryRead]:
    """The territory tree is public knowledge inside Otklik: every role may read it."""
    size = clamp_limit(limit)
    rows = service.list_territories(
        session, parent_id=parent_id, after_id=id_cursor(cursor), limit=size + 1
    )
    items = [TerritoryRead.model_validate(t) for t in rows[:size]]
    return Listing(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > size else None
    )


@router.get("/territories/{territory_id}", response_model=TerritoryRead, name="api:territory_get")
def get_territory(territory_id: int, session: SessionDep, user: ApiUserDep) -> TerritoryRead:
    territory = service.get_territory(session, territory_id)
    if territory is None:
        raise NotFound("Территория не найдена")
    return TerritoryRead.model_validate(territory)


@router.patch(
    "/territories/{territory_id}", response_model=TerritoryRead, name="api:territory_update"
)
def update_territory(
    territory_id: int,
    data: TerritoryUpdate,
    request: Request,
    session: SessionDep,
    user: ApiAdminDep,
) -> TerritoryRead:
    found = service.get_territory(session, territory_id)
    before = audit.snapshot(found, TERRITORY_FIELDS) if found else None
    territory = service.update_territory(session, territory_id, data)
    _audit(request, session, user, "territory.update", territory, before, TERRITORY_FIELDS)
    session.commit()
    return TerritoryRead.model_validate(territory)


@router.post(
    "/institutions", response_model=InstitutionRead, status_code=201, name="api:institution_create"
)
def create_institution(
    data: InstitutionCreate, request: Request, session: SessionDep, user: ApiAdminDep
) -> InstitutionRead:
    """Add an institution on a territory, optionally under a parent institution."""
    institution = service.create_institution(session, data)
    _audit(request, session, user, "institution.create", institution, None, INSTITUTION_FIELDS)
    session.commit()
    return InstitutionRead.model_validate(institution)


@router.get("/institutions", response_model=Listing[InstitutionRead], name="api:institution_list")
def list_institutions(
    session: SessionDep,
    user: ApiUserDep,
    territory_id: int | None = None,
    sector: Sector | None = None,
    limit: Annotated[int | None, Query()] = None,
    cursor: str | None = None,
) -> Listing[InstitutionRead]:
    """Institutions in the caller's scope."""
    size = clamp_limit(limit)
    rows = service.list_institutions(
        session,
        territory_id=territory_id,
        sector=sector,
        visible=auth_service.visible_institution_ids(user),
        after_id=id_cursor(cursor),
        limit=size + 1,
    )
    items = [InstitutionRead.model_validate(i) for i in rows[:size]]
    return Listing(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > size else None
    )


@router.get(
    "/institutions/{institution_id}", response_model=InstitutionRead, name="api:institution_get"
)
def get_institution(institution_id: int, session: SessionDep, user: ApiUserDep) -> InstitutionRead:
    institution = service.get_institution(session, institution_id)
    if institution is None or not auth_service.can_see_institution(session, user, institution_id):
        raise NotFound("Учреждение не найдено")
    return InstitutionRead.model_validate(institution)


@router.patch(
    "/institutions/{institution_id}", response_model=InstitutionRead, name="api:institution_update"
)
def update_institution(
    institution_id: int,
    data: InstitutionUpdate,
    request: Request,
    session: SessionDep,
    user: ApiAdminDep,
) -> InstitutionRead:
    found = service.get_institution(session, institution_id)
    before = audit.snapshot(found, INSTITUTION_FIELDS) if found else None
    institution = service.update_institution(session, institution_id, data)
    _audit(request, session, user, "institution.update", institution, before, INSTITUTION_FIELDS)
    session.commit()
    return InstitutionRead.model_validate(institution)


@router.post("/pages", response_model=PageRead, status_code=201, name="api:page_create")
def create_page(
    data: PageCreate,
    request: Request,
    session: SessionDep,
    user: ApiAdminDep,
    settings: SettingsDep,
) -> PageRead:
    """Connect a page. The answer has the page's `key` and the `webhook_url` to give the platform."""
    page = service.create_page(session, data, get_cipher(request))
    _audit(request, session, user, "page.create", page, None, PAGE_FIELDS)
    session.commit()
    return service.page_read(page, settings.base_url)


@router.get("/pages", response_model=Listing[PageRead], name="api:page_list")
def list_pages(
    session: SessionDep,
    user: ApiUserDep,
    settings: SettingsDep,
    institution_id: int | None = None,
    platform: Platform | None = None,
    limit: Annotated[int | None, Query()] = None,
    cursor: str | None = None,
) -> Listing[PageRead]:
    size = clamp_limit(limit)
    rows = service.list_pages(
        session,
        institution_id=institution_id,
        platform=platform,
        visible=auth_service.visible_institution_ids(user),
        after_id=id_cursor(cursor),
        limit=size + 1,
    )
    items = [service.page_read(p, settings.base_url) for p in rows[:size]]
    return Listing(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > size else None
    )


@router.get("/pages/{page_id}", response_model=PageRead, name="api:page_get")
def get_page(
    page_id: int, session: SessionDep, user: ApiUserDep, settings: SettingsDep
) -> PageRead:
    page = service.get_page(session, page_id)
    if page is None or not auth_service.can_see_institution(session, user, page.institution_id):
        raise NotFound("Страница не найдена")
    return service.page_read(page, settings.base_url)


@router.patch("/pages/{page_id}", response_model=PageRead, name="api:page_update")
def update_page(
    page_id: int,
    data: PageUpdate,
    request: Request,
    session: SessionDep,
    user: ApiAdminDep,
    settings: SettingsDep,
) -> PageRead:
    """Change a page; credentials given here replace the stored ones (an empty string clears)."""
    found = service.get_page(session, page_id)
    before = audit.snapshot(found, PAGE_FIELDS) if found else None
    page = service.update_page(session, page_id, data, get_cipher(request))
    _audit(request, session, user, "page.update", page, before, PAGE_FIELDS)
    session.commit()
    return service.page_read(page, settings.base_url)


@router.post("/directory/import", name="api:directory_import")
def import_directory(
    request: Request,
    session: SessionDep,
    user: ApiAdminDep,
    file: Annotated[UploadFile, File(description="CSV or XLSX, as `otklik directory import`")],
    dry_run: bool = True,
) -> JSONResponse:
    """Import a registry spreadsheet (multipart field `file`). With `dry_run=true` (the
    default) nothing is written: the answer says what would be added, changed (old and
    new values) and left as is, and every bad row with its number and reason. With
    `dry_run=false` the file is applied in one transaction, or, if any row is bad,
    refused with 422 `bad_rows` and the same report (nothing written)."""
    data = file.file.read(imports.MAX_UPLOAD + 1)
    if len(data) > imports.MAX_UPLOAD:
        raise Invalid("Файл больше 20 МБ: разделите его на части", code="too_large")
    raw = spreadsheet.read_upload(file.filename or "", data)
    if dry_run:
        shown = imports.preview(session, raw)
        return JSONResponse({"dry_run": True, "applied": False, **shown.as_dict()})
    try:
        shown, _ = imports.import_now(session, raw)
    except imports.BadRows as exc:
        session.rollback()
        body = {"error": {"code": exc.code, "message": exc.message}}
        return JSONResponse(
            {**body, "dry_run": False, "applied": False, **exc.preview.as_dict()},
            status_code=422,
        )
    report = shown.as_dict()
    audit.record(
        session,
        actor=user,
        action="directory.import",
        object_type="directory_import",
        object_id=None,
        after={
            "file": file.filename,
            "rows": report["rows"],
            "created": report["created"],
            "updated": report["updated"],
        },
        address=client_address(request),
        summary=imports.summary(report, file.filename or ""),
    )
    session.commit()
    return JSONResponse({"dry_run": False, "applied": True, **report})


# The administration's pages (/admin/directory, /admin/pages, /admin/import) have no
# /api/v1 prefix: this module's router becomes a plain one holding both.
_api = router
router = APIRouter()
router.include_router(_api)
router.include_router(admin.router)
router.include_router(institution_admin.router)
router.include_router(page_admin.router)
router.include_router(connect_views.router)

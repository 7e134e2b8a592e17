"""Categories and canned responses in the browser (/admin/categories, /admin/canned).

Categories change through `app.routing.service` and canned responses through
`app.answering.canned`, the functions the JSON API uses; the preview of a canned
response fills its variables with `canned.render` on a sample question. Every change
is written to the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from app.answering import canned as canned_mod
from app.answering.models import CannedResponse, CannedResponseCreate, CannedResponseUpdate
from app.auth import audit
from app.auth.deps import WebAdminDep, WebAdminFormDep, client_address
from app.auth.models import User
from app.core.clock import ClockDep
from app.core.db import SessionDep
from app.core.errors import DomainError, NotFound
from app.core.web import View, ViewDep
from app.directory.models import SECTOR_NAMES_RU, Institution
from app.questions.models import Question, QuestionKind
from app.routing import service as routing_service
from app.routing.models import Category
from app.routing.service import CategoryWrite

router = APIRouter(include_in_schema=False)

CANNED_FIELDS = ("institution_id", "title", "text")
SAMPLE_CITIZEN = "Ирина Смирнова"


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


# --- categories --------------------------------------------------------------------


def _categories_page(
    view: View,
    session: Session,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    done: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return view.render(
        "admin/categories.html",
        status_code=status_code,
        categories=routing_service.list_categories(session),
        sectors=SECTOR_NAMES_RU,
        errors=errors or {},
        form=form or {},
        done={"saved": "Категория сохранена."}.get(done, ""),
    )


@router.get("/admin/categories", response_class=HTMLResponse, name="admin:categories")
def categories_page(
    session: SessionDep, user: WebAdminDep, view: ViewDep, done: str = ""
) -> HTMLResponse:
    """Question categories: for reports and for routing rules to set."""
    return _categories_page(view, session, done=done)


def _save_category(
    request: Request,
    session: Session,
    user: User,
    view: View,
    category: Category | None,
    name: str,
    sector: str,
) -> Response:
    key = f"name{category.id}" if category else "name"
    form = {key: name, f"sector{category.id if category else ''}": sector}
    before = audit.snapshot(category, ("name", "sector")) if category else None
    try:
        data = CategoryWrite.model_validate({"name": name.strip(), "sector": sector or None})
        saved = (
            routing_service.create_category(session, data)
            if category is None
            else routing_service.update_category(session, category.id or 0, data)
        )
    except ValidationError:
        message = "Назовите категорию: например, «Дороги и тротуары»"
        return _categories_page(view, session, errors={key: message}, form=form, status_code=422)
    except DomainError as exc:
        session.rollback()
        return _categories_page(
            view, session, errors={key: exc.message}, form=form, status_code=422
        )
    audit.record(
        session,
        actor=user,
        action="category.create" if category is None else "category.update",
        object_type="category",
        object_id=saved.id,
        before=before,
        after=audit.snapshot(saved, ("name", "sector")),
        address=client_address(request),
        summary=f"Категория «{saved.name}»",
    )
    session.commit()
    return RedirectResponse("/admin/categories?done=saved", status_code=303)


@router.post("/admin/categories", name="admin:category_create")
def category_create(
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    name: Annotated[str, Form()] = "",
    sector: Annotated[str, Form()] = "",
) -> Response:
    return _save_category(request, session, user, view, None, name, sector)


@router.post("/admin/categories/{category_id}", name="admin:category_save")
def category_save(
    category_id: int,
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    name: Annotated[str, Form()] = "",
    sector: Annotated[str, Form()] = "",
) -> Response:
    category = session.get(Category, category_id)
    if category is None:
        raise NotFound("Страница не найдена")
    return _save_category(request, session, user, view, category, name, sector)


# --- canned responses --------------------------------------------------------------


def _institutions(session: Session) -> list[Institution]:
    return list(session.exec(select(Institution).order_by(col(Institution.name))).all())


def _preview(session: Session, institution_id: int | None, text: str, clock: Any) -> str:
    """The text as a citizen would read it, on a sample question of the institution."""
    institution = session.get(Institution, institution_id) if institution_id else None
    if institution is None:
        institution = session.exec(select(Institution).order_by(col(Institution.id))).first()
    # Never added to the session: only what `render` reads is filled in.
    sample = Question(
        page_id=0,
        platform="vk",
        kind=QuestionKind.comment,
        thread_key="",
        created_at=clock(),
        institution_id=(institution.id or 0) if institution else 0,
        citizen_name=SAMPLE_CITIZEN,
        interim_expected_at=clock() + timedelta(days=3),
    )
    return canned_mod.render(session, CannedResponse(title="", text=text), sample, None)


def _canned_page(
    view: View,
    session: Session,
    clock: Any,
    *,
    edit: CannedResponse | None = None,
    institution_filter: int | None = None,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    preview: str | None = None,
    done: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    query = select(CannedResponse)
    if institution_filter is not None:
        column = col(CannedResponse.institution_id)
        query = query.where(column.is_(None) | (column == institution_filter))
    rows = session.exec(query.order_by(col(CannedResponse.title), col(CannedResponse.id))).all()
    institutions = _institutions(session)
    if form is None:
        form = (
            {"title": edit.title, "text": edit.text, "institution_id": edit.institution_id}
            if edit
            else {"title": "", "text": "", "institution_id": institution_filter}
        )
    return view.render(
        "admin/canned.html",
        status_code=status_code,
        rows=rows,
        names={i.id: i.name for i in institutions},
        institutions=institutions,
        institution_filter=institution_filter,
        edit=edit,
        form=form,
        errors=errors or {},
        preview=preview,
        variables=canned_mod.VARIABLES,
        done={"saved": "Шаблон сохранён.", "deleted": "Шаблон удалён."}.get(done, ""),
    )


@router.get("/admin/canned", response_class=HTMLResponse, name="admin:canned")
def canned_page(
    session: SessionDep,
    user: WebAdminDep,
    view: ViewDep,
    clock: ClockDep,
    institution_id: Annotated[str, Query()] = "",
    done: str = "",
) -> HTMLResponse:
    """Canned responses, common and per institution, with their variables."""
    return _canned_page(view, session, clock, institution_filter=_int(institution_id), done=done)


def _canned_or_404(session: Session, user: User, canned_id: int) -> CannedResponse:
    try:
        return canned_mod.get_canned(session, user, canned_id)
    except NotFound:
        raise NotFound("Страница не найдена") from None


@router.get("/admin/canned/{canned_id}", response_class=HTMLResponse, name="admin:canned_edit")
def canned_edit(
    canned_id: int, session: SessionDep, user: WebAdminDep, view: ViewDep, clock: ClockDep
) -> HTMLResponse:
    row = _canned_or_404(session, user, canned_id)
    return _canned_page(view, session, clock, edit=row)


@router.post("/admin/canned/preview", response_class=HTMLResponse, name="admin:canned_preview")
def canned_preview(
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    text: Annotated[str, Form()] = "",
    institution_id: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """The preview alone, swapped in under the form by htmx."""
    try:
        canned_mod._check_text(text)
    except DomainError as exc:
        return view.render("admin/canned_preview.html", preview=None, error=exc.message)
    preview = _preview(session, _int(institution_id), text, clock)
    return view.render("admin/canned_preview.html", preview=preview, error="")


def _save_canned(
    request: Request,
    session: Session,
    user: User,
    view: View,
    clock: Any,
    row: CannedResponse | None,
    title: str,
    text: str,
    institution_id: str,
    action: str,
) -> Response:
    target = _int(institution_id)
    form = {"title": title, "text": text, "institution_id": target}
    if action == "preview":
        try:
            canned_mod._check_text(text)
        except DomainError as exc:
            return _canned_page(
                view,
                session,
                clock,
                edit=row,
                form=form,
                errors={"text": exc.message},
                status_code=422,
            )
        return _canned_page(
            view,
            session,
            clock,
            edit=row,
            form=form,
            preview=_preview(session, target, text, clock),
        )
    errors: dict[str, str] = {}
    if not title.strip():
        errors["title"] = "Назовите шаблон: например, «Промежуточный ответ»"
    if not text.strip():
        errors["text"] = "Напишите текст шаблона"
    before = audit.snapshot(row, CANNED_FIELDS) if row else None
    saved: CannedResponse | None = None
    if not errors:
        try:
            if row is None:
                data = CannedResponseCreate(institution_id=target, title=title.strip(), text=text)
                saved = canned_mod.create_canned(session, user, data, now=clock())
            else:
                update = CannedResponseUpdate(title=title.strip(), text=text)
                saved = canned_mod.update_canned(session, user, row.id or 0, update)
        except ValidationError:
            errors["text"] = "Текст длиннее 4096 знаков — сократите его"
        except DomainError as exc:
            session.rollback()
            errors["text" if exc.code == "unknown_variable" else "institution_id"] = exc.message
    if errors or saved is None:
        return _canned_page(
            view, session, clock, edit=row, form=form, errors=errors, status_code=422
        )
    audit.record(
        session,
        actor=user,
        action="canned.create" if row is None else "canned.update",
        object_type="canned_response",
        object_id=saved.id,
        before=before,
        after=audit.snapshot(saved, CANNED_FIELDS),
        address=client_address(request),
        summary=f"Шаблон «{saved.title}»",
    )
    session.commit()
    return RedirectResponse("/admin/canned?done=saved", status_code=303)


@router.post("/admin/canned", name="admin:canned_create")
def canned_create(
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    title: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    institution_id: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "save",
) -> Response:
    """«Показать» fills the variables on a sample question; «Сохранить» adds the template."""
    return _save_canned(
        request, session, user, view, clock, None, title, text, institution_id, action
    )


@router.post("/admin/canned/{canned_id}", name="admin:canned_save")
def canned_save(
    canned_id: int,
    request: Request,
    session: SessionDep,
    user: WebAdminFormDep,
    view: ViewDep,
    clock: ClockDep,
    title: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "save",
) -> Response:
    row = _canned_or_404(session, user, canned_id)
    return _save_canned(
        request,
        session,
        user,
        view,
        clock,
        row,
        title,
        text,
        str(row.institution_id or ""),
        action,
    )


@router.post("/admin/canned/{canned_id}/delete", name="admin:canned_delete")
def canned_delete(
    canned_id: int, request: Request, session: SessionDep, user: WebAdminFormDep
) -> Response:
    row = _canned_or_404(session, user, canned_id)
    before = audit.snapshot(row, CANNED_FIELDS)
    canned_mod.delete_canned(session, user, canned_id)
    audit.record(
        session,
        actor=user,
        action="canned.delete",
        object_type="canned_response",
        object_id=canned_id,
        before=before,
        address=client_address(request),
        summary=f"Шаблон «{before['title']}»",
    )
    session.commit()
    return RedirectResponse("/admin/canned?done=deleted", status_code=303)

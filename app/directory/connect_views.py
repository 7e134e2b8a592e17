"""Connecting a page in the browser: /admin/connect → a platform → its details →
«Проверьте данные» → the platform's set-up calls → the address, the secret (shown
this once) and what each check found. Administrators only; every connection is
written to the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from app.auth import audit
from app.auth.deps import SettingsDep, WebAdminDep, WebAdminFormDep, client_address
from app.auth.models import User
from app.core.crypto import get_cipher
from app.core.db import SessionDep
from app.core.errors import DomainError, NotFound
from app.core.web import View, ViewDep
from app.directory import connect
from app.directory.connect import PLATFORM_RU, ConnectForm, Outcome, PlatformRefused
from app.directory.models import Platform

router = APIRouter(include_in_schema=False)

# What each platform's form asks, in the order asked: field -> (label, hint, optional).
FIELDS: dict[Platform, list[tuple[str, str, str, bool]]] = {
    Platform.vk: [
        (
            "target",
            "Номер сообщества",
            "Цифры из адреса vk.com/club218734591 или из «Управление → Работа с API».",
            False,
        ),
        (
            "token",
            "Ключ доступа сообщества",
            "Управление → Работа с API → Ключи доступа → Создать ключ. Отметьте «Управление "
            "сообществом» (тогда Отклик сам добавит сервер), «Сообщения сообщества» и «Стена».",
            False,
        ),
    ],
    Platform.telegram: [
        (
            "token",
            "Токен бота",
            "В Telegram: @BotFather → /mybots → ваш бот → API Token. Вида 123456789:AA…",
            False,
        ),
        (
            "target",
            "Канал",
            "@имя канала или его числовой id. Добавьте бота администратором канала "
            "и его группы обсуждения — иначе он не увидит комментарии.",
            False,
        ),
    ],
    Platform.max: [
        (
            "token",
            "Токен бота",
            "Платформа MAX для бизнеса → Чат-боты → ⋮ → Настройки → скопировать токен.",
            False,
        ),
        (
            "target",
            "Номер канала",
            "Если бот отвечает в канале — его числовой id. Пусто: только диалоги с ботом.",
            True,
        ),
    ],
    Platform.ok: [
        (
            "target",
            "Номер группы",
            "Цифры из адреса ok.ru/group/57001234567890.",
            False,
        ),
        (
            "token",
            "Ключ доступа группы",
            "Настройки группы → Сообщения → Работа с API → Получить ключ. Новый ключ "
            "отменяет старый; без использования ключ истекает через 30 дней.",
            False,
        ),
    ],
    Platform.generic: [
        (
            "target",
            "Код источника",
            "Латиницей, как его знает ваша система: например portal-zhkh.",
            False,
        ),
    ],
}
# Pages carrying a token or a secret are not kept by the browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}
NAME_OPTIONAL = frozenset({Platform.vk, Platform.telegram, Platform.max})
INTRO: dict[Platform, str] = {
    Platform.vk: "Комментарии на стене, в обсуждениях, к фото, видео и товарам, личные сообщения "
    "сообщества. Понадобятся номер сообщества и его ключ доступа.",
    Platform.telegram: "Комментарии под постами канала и личные сообщения боту. "
    "Понадобятся токен бота и канал.",
    Platform.max: "Сообщения боту и комментарии канала. Понадобится токен бота.",
    Platform.ok: "Сообщения группе. Понадобятся номер группы и её ключ доступа.",
    Platform.generic: "Обращения из своей системы (портал, приёмная) через подписанный вебхук.",
}


def _platform(name: str) -> Platform:
    try:
        return Platform(name)
    except ValueError:
        raise NotFound("Страница не найдена") from None


def _masked(token: str) -> str:
    token = token.strip()
    return "••••" + token[-4:] if len(token) > 8 else "••••"


def _int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


def _form_page(
    view: View,
    session: Session,
    platform: Platform,
    form: ConnectForm,
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    return view.render(
        "admin/connect_form.html",
        status_code=status_code,
        platform=platform,
        platform_ru=PLATFORM_RU[platform],
        intro=INTRO[platform],
        fields=FIELDS[platform],
        name_optional=platform in NAME_OPTIONAL,
        institutions=connect.institutions(session),
        form=form,
        errors=errors,
    )


@router.get("/admin/connect", response_class=HTMLResponse, name="admin:connect")
def choose(view: ViewDep, user: WebAdminDep, institution_id: int | None = None) -> HTMLResponse:
    """Step 1: which platform."""
    return view.render(
        "admin/connect.html",
        platforms=[(p, PLATFORM_RU[p], INTRO[p]) for p in Platform],
        institution_id=institution_id,
    )


@router.get("/admin/connect/{platform}", response_class=HTMLResponse, name="admin:connect_form")
def form_page(
    platform: str,
    session: SessionDep,
    view: ViewDep,
    user: WebAdminDep,
    institution_id: int | None = None,
) -> HTMLResponse:
    chosen = _platform(platform)
    return _form_page(
        view, session, chosen, ConnectForm(platform=chosen, institution_id=institution_id), {}
    )


@router.post("/admin/connect/{platform}", response_class=HTMLResponse, name="admin:connect_submit")
def submit(
    platform: str,
    request: Request,
    session: SessionDep,
    view: ViewDep,
    user: WebAdminFormDep,
    settings: SettingsDep,
    step: Annotated[str, Form()] = "check",
    institution_id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "",
    manual: Annotated[str, Form()] = "",
) -> Response:
    """«check» shows «Проверьте данные»; «edit» goes back to the form with every value;
    «connect» calls the platform and saves the page."""
    chosen = _platform(platform)
    form = ConnectForm(
        platform=chosen,
        institution_id=_int(institution_id),
        name=name.strip(),
        token=token.strip(),
        target=target.strip(),
        manual=manual == "1",
    )
    if step == "edit":
        return _form_page(view, session, chosen, form, {})
    errors = connect.validate(session, form)
    if errors:
        return _form_page(view, session, chosen, form, errors, status_code=422)
    if step != "connect":
        institution = next(
            (t for t in connect.institutions(session) if t[0] == form.institution_id), None
        )
        return view.render(
            "admin/connect_check.html",
            headers=NO_STORE,
            platform=chosen,
            platform_ru=PLATFORM_RU[chosen],
            fields=FIELDS[chosen],
            form=form,
            masked=_masked(form.token),
            institution=institution,
        )
    state = request.app.state
    cipher = get_cipher(request)
    try:
        outcome = connect.connect(
            session,
            form,
            http=state.http,
            cipher=cipher,
            base_url=settings.base_url,
            api_url=settings.api_url(chosen),
        )
    except PlatformRefused as refused:
        session.rollback()
        return _form_page(
            view, session, chosen, form, {"connect": refused.message}, status_code=422
        )
    except DomainError as refused:
        session.rollback()
        return _form_page(
            view, session, chosen, form, {"connect": refused.message}, status_code=422
        )
    _record(session, user, request, outcome)
    session.commit()
    register_error = None
    checks = list(outcome.checks)
    if outcome.needs_register:
        # The page and its confirmation code are committed: VK's check finds them.
        try:
            checks += connect.register_vk(
                session,
                outcome.page,
                http=state.http,
                cipher=cipher,
                base_url=settings.base_url,
                api_url=settings.api_url(chosen),
            )
            outcome.manual = False
            audit.record(
                session,
                actor=user,
                action="page.webhook_register",
                object_type="page",
                object_id=outcome.page.id,
                after={"webhook_url": outcome.webhook_url},
                address=client_address(request),
                summary=f"Сервер Callback API ВКонтакте для «{outcome.page.name}»",
            )
            session.commit()
        except PlatformRefused as refused:
            register_error = refused.message
            outcome.manual = True
    curl = python = None
    if chosen == Platform.generic and outcome.secret:
        curl, python = connect.generic_examples(outcome.webhook_url, outcome.secret)
    return view.render(
        "admin/connect_done.html",
        headers=NO_STORE,
        platform=chosen,
        platform_ru=PLATFORM_RU[chosen],
        outcome=outcome,
        page=outcome.page,
        checks=checks,
        register_error=register_error,
        curl=curl,
        python=python,
    )


def _record(session: Session, user: User, request: Request, outcome: Outcome) -> None:
    page = outcome.page
    after: dict[str, Any] = {
        "institution_id": page.institution_id,
        "name": page.name,
        "external_id": page.external_id,
        "is_active": page.is_active,
        "secret": page.secret_enc,
        "access_token": page.access_token_enc,
        "confirmation_code": page.confirmation_code,
    }
    verb = "создана" if outcome.created else "подключена заново"
    audit.record(
        session,
        actor=user,
        action="page.connect",
        object_type="page",
        object_id=page.id,
        before=outcome.before or None,
        after=after,
        address=client_address(request),
        summary=f"{PLATFORM_RU[page.platform]}: страница «{page.name}» {verb}",
    )

"""Connecting a page in one sitting: the platform's own set-up calls, then the page
created (or updated, when it is already in the directory) through the directory's
service functions, credentials encrypted as everywhere.

Platform calls happen with no write pending: a network call must not hold the
database's write lock (SQLite has one). The caller commits; for VK with a token that
may manage the community it commits once between `connect` (the page and its
confirmation code stored) and `register_vk` (VK checks the server at once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from sqlmodel import Session, col, select

from app.core.crypto import Cipher
from app.core.errors import Invalid
from app.directory import service
from app.directory.models import (
    Institution,
    Page,
    PageCreate,
    PageUpdate,
    Platform,
    Territory,
)
from webhooks import PermanentError, TransientError, max_setup, ok_setup, telegram_setup, vk_setup
from webhooks.setup import Check, Connected, explain

PLATFORM_RU = {
    Platform.vk: "ВКонтакте",
    Platform.telegram: "Telegram",
    Platform.ok: "Одноклассники",
    Platform.max: "MAX",
    Platform.generic: "Другой источник",
}


@dataclass
class ConnectForm:
    """What the administrator typed. `target`: VK community id, Telegram channel
    (@name or id), MAX channel id (optional), OK group id, generic source id."""

    platform: Platform
    institution_id: int | None = None
    name: str = ""
    token: str = ""
    target: str = ""
    url: str = ""
    # VK: show the address, secret and code to paste by hand instead of registering.
    manual: bool = False


@dataclass
class Outcome:
    page: Page
    created: bool
    webhook_url: str
    # Shown on the result page once; afterwards only «задан».
    secret: str | None
    checks: tuple[Check, ...] = ()
    confirmation_code: str | None = None
    # VK: the server is registered by `register_vk` after the page is committed.
    needs_register: bool = False
    # VK: set by hand (token without «Управление сообществом», or chosen).
    manual: bool = False
    before: dict[str, object] = field(default_factory=dict)


class PlatformRefused(Invalid):
    """The platform refused or could not be reached; the message says what to do."""

    code = "platform_refused"


def new_secret() -> str:
    # URL-safe base64: A-Z a-z 0-9 _ - fits Telegram (1-256) and MAX (5-256) secrets.
    return secrets.token_urlsafe(32)


def validate(session: Session, form: ConnectForm) -> dict[str, str]:
    """Field -> how to fix it (Russian), before any platform is called."""
    errors: dict[str, str] = {}
    if form.institution_id is None:
        errors["institution_id"] = "Выберите учреждение, которому принадлежит страница"
    elif session.get(Institution, form.institution_id) is None:
        errors["institution_id"] = "Такого учреждения нет. Выберите учреждение из списка"
    target = form.target.strip()
    token = form.token.strip()
    if form.platform == Platform.vk:
        if not target.removeprefix("-").isdigit():
            errors["target"] = "Укажите номер сообщества цифрами, например 218734591"
        if not token:
            errors["token"] = "Вставьте ключ доступа сообщества"
    elif form.platform == Platform.telegram:
        if not token or ":" not in token:
            errors["token"] = "Вставьте токен бота от @BotFather, вида 123456789:AA…"
        if not target:
            errors["target"] = "Укажите канал: @имя или числовой id"
        elif not (target.startswith("@") or target.lstrip("-").isdigit()):
            errors["target"] = "Канал указывается как @имя или числовой id, например -1001987654321"
    elif form.platform == Platform.max:
        if not token:
            errors["token"] = "Вставьте токен бота MAX"
        if target and not target.lstrip("-").isdigit():
            errors["target"] = "Номер канала MAX — число; оставьте поле пустым для диалогов с ботом"
    elif form.platform == Platform.ok:
        if not token:
            errors["token"] = "Вставьте ключ доступа группы"
        if not target.isdigit():
            errors["target"] = "Укажите номер группы цифрами, например 57001234567890"
        if not form.name.strip():
            errors["name"] = "Укажите название группы, как его увидят операторы"
    else:
        if not target:
            errors["target"] = "Укажите код источника, например portal-zhkh"
        elif len(target) > 255:
            errors["target"] = "Код источника длиннее 255 знаков — сократите его"
        if not form.name.strip():
            errors["name"] = "Укажите название источника, как его увидят операторы"
    if len(form.name) > 500:
        errors["name"] = "Название длиннее 500 знаков — сократите его"
    return errors


def institutions(session: Session, limit: int = 2000) -> Sequence[tuple[int, str, str]]:
    """(id, name, territory) for the wizard's list, by territory and name."""
    rows = session.exec(
        select(Institution.id, Institution.name, Territory.name)
        .join(Territory, col(Territory.id) == col(Institution.territory_id))
        .order_by(col(Territory.full_name), col(Institution.name))
        .limit(limit)
    ).all()
    return [(int(i or 0), name, territory) for i, name, territory in rows]


def _existing(session: Session, platform: Platform, external_id: str) -> Page | None:
    return session.exec(
        select(Page).where(Page.platform == platform, Page.external_id == external_id)
    ).first()


def _page_fields(page: Page | None) -> dict[str, object]:
    if page is None:
        return {}
    return {
        "institution_id": page.institution_id,
        "name": page.name,
        "external_id": page.external_id,
        "is_active": page.is_active,
        "secret": page.secret_enc,
        "access_token": page.access_token_enc,
        "confirmation_code": page.confirmation_code,
    }


def _refused(platform: Platform, error: Exception) -> PlatformRefused:
    return PlatformRefused(explain(error, PLATFORM_RU[platform]))


def connect(
    session: Session,
    form: ConnectForm,
    *,
    http: httpx.Client,
    cipher: Cipher,
    base_url: str,
    api_url: str,
) -> Outcome:
    """Connect (or reconnect) the page described by `form` (already `validate`d).

    Calls the platform first; on its refusal raises PlatformRefused (nothing written).
    Then creates the page, or updates the one with the same platform id (keeping its
    key, and its secret so deliveries in flight still verify). Flushes, never commits.
    """
    platform = form.platform
    token = form.token.strip()
    target = form.target.strip()
    if platform == Platform.generic:
        return _save(session, form, cipher, base_url, external_id=target, name=form.name)
    try:
        if platform == Platform.vk:
            prepared = vk_setup.prepare(http, api_url, token, target)
            return _save(
                session,
                form,
                cipher,
                base_url,
                external_id=prepared.group_id,
                name=form.name or prepared.name,
                confirmation_code=prepared.confirmation_code,
                checks=(
                    Check("Сообщество", True, prepared.name or prepared.group_id),
                    Check("Код подтверждения получен", True, prepared.confirmation_code),
                    Check(
                        "Право «Управление сообществом»",
                        prepared.can_register,
                        "Отклик сам добавит сервер Callback API"
                        if prepared.can_register
                        else "Нет: сервер нужно добавить вручную по шагам ниже",
                    ),
                ),
                register=prepared.can_register and not form.manual,
            )
        # Telegram's page id is the channel's, learnt from getChat before the
        # webhook is set, so that a reconnected page keeps its address.
        external_id = target
        chat = None
        if platform == Platform.telegram:
            chat = telegram_setup.get_chat(http, api_url, token, target)
            external_id = chat.id
        existing = _existing(session, platform, external_id) if external_id else None
        key = existing.key if existing else service.new_page_key()
        secret = _kept_secret(existing, cipher) or new_secret()
        url = f"{base_url.rstrip('/')}/webhooks/{platform}/{key}"
        connected: Connected
        if platform == Platform.telegram:
            connected = telegram_setup.connect(
                http,
                api_url,
                token,
                webhook_url=url,
                secret=secret,
                channel=external_id,
                chat=chat,
            )
        elif platform == Platform.max:
            connected = max_setup.connect(
                http, api_url, token, webhook_url=url, secret=secret, chat_id=target
            )
        else:
            connected = ok_setup.connect(http, api_url, token, webhook_url=url, group_id=target)
    except (PermanentError, TransientError) as error:
        raise _refused(platform, error) from error
    return _save(
        session,
        form,
        cipher,
        base_url,
        external_id=connected.external_id,
        name=form.name or connected.name or PLATFORM_RU[platform],
        checks=connected.checks,
        key=key,
        secret=None if platform == Platform.ok else secret,
    )


def _kept_secret(page: Page | None, cipher: Cipher) -> str | None:
    if page is None:
        return None
    try:
        return cipher.decrypt(page.secret_enc)
    except ValueError:
        return None  # unreadable after a key change: a new one replaces it


def _save(
    session: Session,
    form: ConnectForm,
    cipher: Cipher,
    base_url: str,
    *,
    external_id: str,
    name: str,
    confirmation_code: str | None = None,
    checks: tuple[Check, ...] = (),
    key: str | None = None,
    secret: str | None = None,
    register: bool = False,
) -> Outcome:
    platform = form.platform
    assert form.institution_id is not None
    existing = _existing(session, platform, external_id.strip())
    before = _page_fields(existing)
    if secret is None and platform != Platform.ok:
        secret = _kept_secret(existing, cipher) or new_secret()
    token = form.token.strip() or None
    if existing is None:
        page = service.create_page(
            session,
            PageCreate(
                institution_id=form.institution_id,
                platform=platform,
                name=name.strip()[:500] or PLATFORM_RU[platform],
                url=form.url.strip(),
                external_id=external_id,
                secret=secret,
                access_token=token,
                confirmation_code=confirmation_code,
            ),
            cipher,
        )
        if key is not None and page.key != key:
            # The platform was given this page's address before the row existed.
            page.key = key
            session.add(page)
            session.flush()
    else:
        assert existing.id is not None
        changes = PageUpdate(
            institution_id=form.institution_id,
            name=name.strip()[:500] or existing.name,
            secret=secret,
            is_active=True,
        )
        if token is not None:
            changes.access_token = token
        if confirmation_code is not None:
            changes.confirmation_code = confirmation_code
        if form.url.strip():
            changes.url = form.url.strip()
        page = service.update_page(session, existing.id, changes, cipher)
    return Outcome(
        page=page,
        created=existing is None,
        webhook_url=service.webhook_url(base_url, page),
        secret=secret,
        checks=checks,
        confirmation_code=confirmation_code,
        needs_register=register,
        manual=platform == Platform.vk and not register,
        before=before,
    )


def register_vk(
    session: Session, page: Page, *, http: httpx.Client, cipher: Cipher, base_url: str, api_url: str
) -> tuple[Check, ...]:
    """Add the VK Callback server of a committed page (its confirmation code stored, so
    our receiver answers VK's check). Raises PlatformRefused."""
    secrets_ = service.page_secrets(page, cipher, api_url)
    try:
        connected = vk_setup.register(
            http,
            api_url,
            secrets_.access_token or "",
            secrets_.external_id,
            webhook_url=service.webhook_url(base_url, page),
            secret=secrets_.secret or "",
        )
    except (PermanentError, TransientError) as error:
        raise _refused(Platform.vk, error) from error
    return connected.checks


# --- the generic source: a signed example --------------------------------------------------


EXAMPLE_BODY = {
    "id": "msg-1",
    "thread_id": "thread-1",
    "kind": "message",
    "author": {"id": "citizen-1", "name": "Иван Петров"},
    "text": "Когда починят освещение во дворе?",
    "sent_at": "2026-03-10T09:00:00+03:00",
    "from_page": False,
}


def generic_examples(webhook_url: str, secret: str) -> tuple[str, str]:
    """A curl command and a Python snippet that post a signed test message (the curl
    one carries the signature of its exact body, computed with `secret`)."""
    body = json.dumps(EXAMPLE_BODY, ensure_ascii=False, separators=(",", ":"))
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    curl = (
        f"curl -X POST '{webhook_url}' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -H 'X-Otklik-Signature: sha256={signature}' \\\n"
        f"  --data-binary '{body}'"
    )
    python = (
        "import hashlib, hmac, json, urllib.request\n\n"
        f"SECRET = {secret!r}\n"
        f"URL = {webhook_url!r}\n"
        f"body = json.dumps({EXAMPLE_BODY!r}, ensure_ascii=False).encode()\n"
        "signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()\n"
        "request = urllib.request.Request(URL, data=body, headers={\n"
        '    "Content-Type": "application/json",\n'
        '    "X-Otklik-Signature": "sha256=" + signature,\n'
        "})\n"
        "print(urllib.request.urlopen(request).status)  # 200"
    )
    return curl, python

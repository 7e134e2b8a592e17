"""The audit log in words: Russian names of actions, objects and fields, and an entry's
changes as (field, before, after) rows with ids shown by name (`/admin/audit`, a user's
recent changes)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app.auth.models import ROLE_NAMES_RU, AuditEvent, Role, User
from app.directory.models import SECTOR_NAMES_RU, Institution, Sector, Territory


def sector_name(code: str) -> str:
    """A directory sector's Russian name (the code itself if unknown)."""
    return SECTOR_NAMES_RU[Sector(code)] if code in Sector.__members__ else code


OBJECT_NAMES_RU = {
    "user": "Пользователь",
    "token": "Токен API",
    "territory": "Территория",
    "institution": "Учреждение",
    "page": "Страница",
    "policy": "Норматив",
    "calendar": "Календарь",
    "rule": "Правило",
    "category": "Категория",
    "canned": "Шаблон ответа",
    "subscription": "Исходящий вебхук",
    "delivery": "Доставка",
    "event": "Событие",
    "import": "Импорт",
    "directory": "Справочник",
}
VERB_NAMES_RU = {
    "create": "создание",
    "update": "изменение",
    "delete": "удаление",
    "deactivate": "отключение",
    "activate": "включение",
    "move": "перенос",
    "reorder": "порядок",
    "enable": "включение",
    "disable": "выключение",
    "revoke": "отзыв",
    "replay": "повтор",
    "replay_all": "повтор всех",
    "import": "импорт",
    "apply": "применение",
    "connect": "подключение",
    "test": "проверка",
    "password_reset": "сброс пароля",
    "password_change": "смена пароля",
    "password_set": "пароль по ссылке",
}
SPECIAL_ACTIONS_RU = {
    "sign_in.success": "Вход",
    "sign_in.failed": "Неудачный вход",
}
FIELD_NAMES_RU = {
    "login": "Логин",
    "name": "Название или имя",
    "email": "Почта",
    "role": "Роль",
    "institution_ids": "Учреждения",
    "institution_id": "Учреждение",
    "territory_id": "Территория",
    "is_active": "Включён",
    "active": "Включён",
    "api_access_revoked": "Отозвано токенов",
    "revoked_at": "Отозван",
    "prefix": "Начало токена",
    "user_id": "Пользователь",
    "password": "Пароль",
    "by_link": "По ссылке",
    "sector": "Отрасль",
    "retention_days": "Срок хранения персональных данных, дней",
    "parent_id": "Входит в",
    "url": "Адрес",
    "platform": "Платформа",
}
# Where an audited object is shown (rooms add theirs as their pages land).
OBJECT_LINKS = {
    "user": "/admin/users/{}",
    "page": "/admin/pages/{}",
}


def action_text(action: str) -> str:
    if action in SPECIAL_ACTIONS_RU:
        return SPECIAL_ACTIONS_RU[action]
    kind, _, verb = action.partition(".")
    obj = OBJECT_NAMES_RU.get(kind, kind)
    return f"{obj}: {VERB_NAMES_RU.get(verb, verb)}" if verb else obj


def value_text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if value is True:
        return "да"
    if value is False:
        return "нет"
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {value_text(v)}" for k, v in value.items()) or "—"
    if isinstance(value, str) and value in ROLE_NAMES_RU:
        return ROLE_NAMES_RU[Role(value)]
    return str(value)


# Fields holding ids of the directory or of users, shown by name.
_ID_FIELDS: dict[str, Any] = {
    "institution_ids": Institution,
    "institution_id": Institution,
    "territory_id": Territory,
}


def id_names(session: Session, events: list[AuditEvent]) -> dict[tuple[str, int], str]:
    """Names of the institutions, territories and users the entries' fields refer to."""
    wanted: dict[Any, set[int]] = {Institution: set(), Territory: set(), User: set()}
    for e in events:
        for values in (e.before or {}, e.after or {}):
            for key, value in values.items():
                model = User if key == "user_id" else _ID_FIELDS.get(key)
                if model is None:
                    continue
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, int) and 0 < v < 2**31:
                        wanted[model].add(v)
    names: dict[tuple[str, int], str] = {}
    for model, ids in wanted.items():
        if not ids:
            continue
        label = col(model.login) if model is User else col(model.name)
        for i, name in session.execute(
            sa.select(col(model.id), label).where(col(model.id).in_(ids))
        ).all():
            names[(model.__name__, int(i))] = str(name)
    return names


def change_rows(
    names: dict[tuple[str, int], str],
) -> Any:
    """A template function: an entry's (field, before, after) rows, in Russian where the
    field is known, ids shown with their names; a creation leaves out empty fields."""

    def show(key: str, value: Any) -> str:
        model = User if key == "user_id" else _ID_FIELDS.get(key)
        if model is not None and value not in (None, [], ""):
            items = value if isinstance(value, list) else [value]
            return ", ".join(
                names.get((model.__name__, v), f"№{v}") if isinstance(v, int) else str(v)
                for v in items
            )
        if key == "sector" and isinstance(value, str):
            return sector_name(value)
        return value_text(value)

    def rows(event: AuditEvent) -> list[tuple[str, str, str]]:
        before = event.before or {}
        after = event.after or {}
        keys = list(dict.fromkeys([*before.keys(), *after.keys()]))
        if event.before is None:
            keys = [k for k in keys if after.get(k) not in (None, "", [], {})]
        return [
            (
                FIELD_NAMES_RU.get(k, k),
                show(k, before.get(k)) if event.before is not None else "",
                show(k, after.get(k)) if event.after is not None else "",
            )
            for k in keys
        ]

    return rows

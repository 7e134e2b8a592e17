"""The question timeline: every move, response, SLA event, on one list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from app.core.db import insert_ignoring
from app.questions.models import TimelineEntry


def record(
    session: Session,
    question_id: int,
    kind: str,
    at: datetime,
    *,
    actor_id: int | None = None,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> bool:
    """Append an entry; with a dedupe_key, at most one such entry ever exists.

    Returns False when an entry with the same dedupe_key was already there (another
    worker got there first): callers use it to act exactly once, e.g. to notify.
    """
    values: dict[str, Any] = {
        "question_id": question_id,
        "kind": kind,
        "at": at,
        "actor_id": actor_id,
        "data": data or {},
        "dedupe_key": dedupe_key,
    }
    if dedupe_key is None:
        # Written with the session's next flush (any query autoflushes), together with
        # whatever else is pending: one INSERT for several entries instead of one each.
        session.add(TimelineEntry(**values))
        return True
    statement = insert_ignoring(session, TimelineEntry, values)
    return session.execute(statement).first() is not None


def kinds_ru() -> dict[str, str]:
    """Names of timeline entries in the interface."""
    return {
        "created": "Вопрос поступил",
        "message": "Сообщение гражданина",
        "edited": "Сообщение изменено",
        "deleted": "Сообщение удалено",
        "response": "Ответ",
        "classified": "Классификация",
        "reclassified": "Классификация изменена",
        "routed": "Маршрутизация",
        "transferred": "Передан в другое учреждение",
        "dismissed": "Отмечен как не требующий ответа",
        "assigned": "Назначен исполнитель",
        "status": "Статус изменён",
        "withdrawn": "Отозван гражданином",
        "sla.warning": "Срок ответа подходит к концу",
        "sla.breached": "Срок ответа нарушен",
        "sla.escalated": "Эскалация",
        "note": "Внутренняя заметка",
        "reply_failed": "Ответ не опубликован",
    }


__all__ = ["kinds_ru", "record"]

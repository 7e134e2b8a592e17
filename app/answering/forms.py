"""The question page's forms: field names, the texts shown after an action, the reading
of a promised date, and the transfer picker's choices."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from app.core.errors import Invalid
from app.questions.models import Question
from app.routing import service as routing_service

# A promised date means the end of a usual working day in the territory's zone.
EXPECTED_HOUR = time(18, 0)
# Notices after a 303 (there is no session flash store): fixed texts, never user input.
DONE_RU = {
    "reply": "Ответ поставлен в очередь на публикацию.",
    "retry": "Ответ снова поставлен в очередь.",
    "claim": "Вопрос ваш.",
    "release": "Вопрос возвращён в очередь.",
    "assign": "Исполнитель назначен.",
    "note": "Заметка сохранена.",
    "status": "Статус изменён.",
    "reclassify": "Классификация изменена.",
    "dismiss": "Вопрос снят: отвечать не нужно.",
    "transfer": "Вопрос передан.",
}
# Which form field a service's validation error (by its code) belongs to.
FIELD_OF = {
    "empty_reply": "text",
    "reply_too_long": "text",
    "expected_at_required": "expected_date",
    "invalid": "expected_date",
    "empty_note": "note_text",
    "reason_required": "reason",
    "note_required": "note",
    "invalid_reason": "reason",
    "invalid_assignee": "user_id",
    "invalid_classification": "classification",
    "invalid_status": "status",
}
TRANSFER_LIST_LIMIT = 100


def expected_at(value: str, tz: str) -> datetime | None:
    """A date from the form (YYYY-MM-DD) as the end of that working day in `tz`."""
    value = value.strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(
            "Укажите дату окончательного ответа, например 20.03.2026", code="invalid"
        ) from exc
    return datetime.combine(day, EXPECTED_HOUR, tzinfo=ZoneInfo(tz))


def transfer_choices(
    session: Session, question: Question, *, q: str, chosen: int | None
) -> dict[str, Any]:
    """The transfer page's list: the institutions found by `q`, with the chosen one kept
    on top even when the search no longer finds it (a refused form keeps its values)."""
    targets = routing_service.transfer_targets(
        session, question, q=q or None, limit=TRANSFER_LIST_LIMIT
    )
    if chosen is not None and all(t.id != chosen for t in targets):
        every = routing_service.transfer_targets(session, question, limit=1_000_000)
        targets = [t for t in every if t.id == chosen] + targets
    return {"targets": targets, "q": q, "chosen": chosen, "limit": TRANSFER_LIST_LIMIT}

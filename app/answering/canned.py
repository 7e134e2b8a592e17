"""Canned responses: an institution's ready answers with variables filled per question."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.answering.models import CannedResponse, CannedResponseCreate, CannedResponseUpdate
from app.auth import service as auth_service
from app.auth.models import Role, User
from app.core.errors import Invalid, NotAllowed, NotFound
from app.directory import service as directory_service
from app.questions.models import Question

VARIABLES = ("citizen_name", "expected_date", "institution")
_VARIABLE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def _visible(user: User) -> sa.ColumnElement[bool]:
    ids = auth_service.visible_institution_ids(user)
    if ids is None:
        return sa.true()
    column = col(CannedResponse.institution_id)
    return sa.or_(column.is_(None), column.in_(ids))


def list_canned(
    session: Session,
    user: User,
    *,
    institution_id: int | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> Sequence[CannedResponse]:
    """Responses the user may use: their institutions' and the common ones, by id."""
    query = select(CannedResponse).where(col(CannedResponse.id) > after_id, _visible(user))
    if institution_id is not None:
        column = col(CannedResponse.institution_id)
        query = query.where(sa.or_(column.is_(None), column == institution_id))
    return session.exec(query.order_by(col(CannedResponse.id)).limit(limit)).all()


def get_canned(session: Session, user: User, canned_id: int) -> CannedResponse:
    canned = session.get(CannedResponse, canned_id)
    if canned is None or (
        canned.institution_id is not None
        and not auth_service.can_see_institution(session, user, canned.institution_id)
    ):
        raise NotFound("Шаблон ответа не найден", code="canned_response_not_found")
    return canned


def _check_can_edit(session: Session, user: User, institution_id: int | None) -> None:
    if institution_id is None:
        if user.role != Role.admin:
            raise NotAllowed(
                "Общие шаблоны для всех учреждений создаёт администратор", code="forbidden"
            )
        return
    if directory_service.get_institution(
        session, institution_id
    ) is None or not auth_service.can_see_institution(session, user, institution_id):
        raise Invalid("Учреждение не найдено", code="invalid_institution")


def _check_text(text: str) -> None:
    unknown = sorted({name for name in _VARIABLE.findall(text) if name not in VARIABLES})
    if unknown:
        raise Invalid(
            "Неизвестные переменные: "
            + ", ".join("{{" + name + "}}" for name in unknown)
            + ". Доступны: "
            + ", ".join("{{" + name + "}}" for name in VARIABLES),
            code="unknown_variable",
        )


def create_canned(
    session: Session, user: User, data: CannedResponseCreate, *, now: datetime
) -> CannedResponse:
    _check_can_edit(session, user, data.institution_id)
    _check_text(data.text)
    canned = CannedResponse(
        institution_id=data.institution_id,
        title=data.title.strip() or data.title,
        text=data.text,
        created_by=user.id,
        created_at=now,
    )
    session.add(canned)
    session.flush()
    return canned


def update_canned(
    session: Session, user: User, canned_id: int, data: CannedResponseUpdate
) -> CannedResponse:
    canned = get_canned(session, user, canned_id)
    _check_can_edit(session, user, canned.institution_id)
    if data.text is not None:
        _check_text(data.text)
        canned.text = data.text
    if data.title is not None:
        canned.title = data.title
    session.add(canned)
    session.flush()
    return canned


def delete_canned(session: Session, user: User, canned_id: int) -> None:
    canned = get_canned(session, user, canned_id)
    _check_can_edit(session, user, canned.institution_id)
    session.delete(canned)
    session.flush()


def render(
    session: Session, canned: CannedResponse, question: Question, expected_at: datetime | None
) -> str:
    """The text with {{citizen_name}}, {{institution}} and {{expected_date}} (a date in the
    institution's territory time zone, e.g. 20.03.2026) filled in; an unknown variable or a
    missing date stays visible, so the operator notices before sending."""
    institution = directory_service.get_institution(session, question.institution_id)
    values = {
        "citizen_name": (question.citizen_name or "").split(" ")[0] or "Уважаемый житель",
        "institution": institution.name if institution else "",
    }
    moment = expected_at or question.interim_expected_at
    if moment is not None:
        zone = "Europe/Moscow"
        if institution is not None:
            territory = directory_service.get_territory(session, institution.territory_id)
            zone = territory.timezone if territory else zone
        values["expected_date"] = moment.astimezone(ZoneInfo(zone)).strftime("%d.%m.%Y")

    def substitute(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return _VARIABLE.sub(substitute, canned.text)

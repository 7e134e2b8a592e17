"""Pages of the inbox."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlmodel import col, select

from app.auth.deps import WebUserDep
from app.core.db import SessionDep
from app.core.web import ViewDep
from app.directory.models import Institution, Territory
from app.questions import queries
from app.questions.models import STATUS_NAMES_RU

router = APIRouter(include_in_schema=False)


@router.get("/inbox", name="inbox:index", response_class=HTMLResponse)
def inbox(
    session: SessionDep, user: WebUserDep, view: ViewDep, status: str = "open", q: str = ""
) -> HTMLResponse:
    f = queries.QuestionFilter(status=[status] if status else None, q=q or None)
    questions, _ = queries.list_questions(session, user, f, after=None, limit=100)
    # Times are shown in the zone of each question's territory.
    institution_ids = {question.institution_id for question in questions}
    zones = (
        dict(
            session.exec(
                select(Institution.id, Territory.timezone)
                .join(Territory, col(Territory.id) == Institution.territory_id)
                .where(col(Institution.id).in_(institution_ids))
            ).all()
        )
        if institution_ids
        else {}
    )
    return view.render(
        "inbox/index.html",
        questions=questions,
        status=status,
        q=q,
        status_names=STATUS_NAMES_RU,
        zones=zones,
    )

"""Personal data retention: finished questions lose their citizens' data after a period.

A question that is finished (closed, dismissed, withdrawn, or answered and quiet
since) keeps its citizen's name, platform id and every text for its institution's
period (`institution.retention_days`, else the regional `OTKLIK_RETENTION_DAYS`;
0: for good). After it, this job erases them: the citizen's name and id, the texts
of all its messages (the citizen's and the staff's, which often quote or address
the citizen) with their earlier versions, attachments and links, and its replies'
outbox payloads (raw deliveries: app/intake/retention.py). What the figures are made
of stays: the question row with its times, status, institution, classification, SLA
clocks and timeline, so on-time rates and response times of past periods do not change.

Batches of `BATCH` questions per transaction; the job runs again at once while
there is more (the runner's backlog rule), then hourly.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.directory import retention
from app.directory.models import Institution
from app.jobs.context import JobContext
from app.questions.models import (
    CitizenName,
    Message,
    OutboxItem,
    OutboxStatus,
    Question,
    QuestionStatus,
)

ERASED = "Текст удалён: истёк срок хранения персональных данных"
FINISHED = (
    QuestionStatus.closed,
    QuestionStatus.dismissed,
    QuestionStatus.withdrawn,
    QuestionStatus.answered,
)
BATCH = 200
INTERVAL = 3600.0  # seconds between idle runs


def erase_expired(ctx: JobContext) -> int:
    """The periodic job; returns how many questions it erased."""
    with ctx.transaction() as session:
        return erase(session, ctx.clock(), ctx.settings.retention_days)


def erase(session: Session, now: datetime, default_days: int, batch: int = BATCH) -> int:
    """Erase personal data of finished questions past their period, at most `batch`
    questions; returns how many were erased (0: nothing is due)."""
    handled = 0
    for days, which in retention.periods(session, default_days):
        cutoff = now - timedelta(days=days)
        institutions = select(Institution.id).where(which)
        ids = list(
            session.exec(
                select(Question.id)
                .where(
                    col(Question.institution_id).in_(institutions),
                    col(Question.status).in_([str(s) for s in FINISHED]),
                    sa.func.coalesce(col(Question.closed_at), col(Question.updated_at)) < cutoff,
                    sa.or_(
                        col(Question.text) != ERASED,
                        col(Question.citizen_name) != "",
                        col(Question.citizen_platform_id) != "",
                    ),
                )
                .order_by(col(Question.id))
                .limit(batch - handled)
            ).all()
        )
        if ids:
            _erase_questions(session, [i for i in ids if i is not None])
            handled += len(ids)
        if handled >= batch:
            break
    if default_days > 0:
        # The cache of VK names: rows nobody asked for within the period.
        session.execute(
            sa.delete(CitizenName).where(
                col(CitizenName.checked_at) < now - timedelta(days=default_days)
            )
        )
    session.flush()
    return handled


def _erase_questions(session: Session, ids: list[int]) -> None:
    session.execute(
        sa.update(Question)
        .where(col(Question.id).in_(ids))
        .values(
            citizen_name="",
            citizen_platform_id="",
            text=ERASED,
            permalink=None,
            classification_note="",
            dismiss_note=None,
        )
    )
    session.execute(
        sa.update(Message)
        .where(col(Message.question_id).in_(ids))
        .values(
            text=ERASED,
            previous_texts=[],
            attachments=[],
            permalink=None,
            reply_ref={},
            # The citizen's id and name; a staff member stays named by user_id.
            author_id=sa.case((col(Message.user_id).is_(None), ""), else_=col(Message.author_id)),
            author_name=sa.case(
                (col(Message.user_id).is_(None), ""), else_=col(Message.author_name)
            ),
        )
    )
    session.execute(
        sa.update(OutboxItem)
        .where(
            col(OutboxItem.question_id).in_(ids),
            col(OutboxItem.status) != OutboxStatus.pending,
            col(OutboxItem.status) != OutboxStatus.sending,
        )
        .values(payload={})
    )

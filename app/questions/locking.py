"""The question row lock every read-then-write of a question takes first."""

from __future__ import annotations

from sqlmodel import Session

from app.questions.models import Question


def lock(session: Session, question: Question) -> Question:
    """The question re-read under a row lock held until the caller's transaction ends.

    On PostgreSQL, `SELECT … FOR UPDATE`: two operators taking the question, a transfer
    racing a dismissal, or an operator's status change and processing a follow-up, run
    one after the other, and the second sees what the first wrote (so it refuses, or
    acts on the new state). SQLite serialises writers (write transactions begin
    IMMEDIATE) and renders no FOR UPDATE; the re-read is the same."""
    session.flush()  # the caller's unwritten changes are kept, not read over
    session.refresh(question, with_for_update=True)
    return question

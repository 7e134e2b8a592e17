from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from app.questions.models import Direction, Message, MessageSource, Question
from tests.factories.directory import make_page

_seq = itertools.count(1)


def make_question(session: Session, **overrides: Any) -> Question:
    """A question with its first citizen message (like ingestion would make it)."""
    if "page_id" not in overrides:
        page = make_page(
            session,
            **(
                {"institution_id": overrides["institution_id"]}
                if "institution_id" in overrides
                else {}
            ),
        )
        overrides["page_id"] = page.id
        overrides.setdefault("institution_id", page.institution_id)
        overrides.setdefault("platform", str(page.platform))
    n = next(_seq)
    created_at = overrides.get("created_at", datetime(2026, 3, 10, 5, 0, tzinfo=UTC))
    data: dict[str, Any] = {
        "platform": "vk",
        "kind": "comment",
        "thread_key": f"wall:-218734591_{n}",
        "citizen_platform_id": str(512348900 + n),
        "citizen_name": "Ирина Смирнова",
        "text": "Когда отремонтируют дорогу на ул. Садовой?",
        "created_at": created_at,
        "received_at": created_at,
        "last_citizen_at": created_at,
    }
    data.update(overrides)
    question = Question(**data)
    session.add(question)
    session.flush()
    assert question.id is not None
    session.add(
        Message(
            question_id=question.id,
            page_id=question.page_id,
            direction=Direction.inbound,
            source=MessageSource.citizen,
            author_id=question.citizen_platform_id,
            author_name=question.citizen_name,
            text=question.text,
            sent_at=question.created_at,
            received_at=question.received_at,
            external_id=f"wall:-218734591_{n}:{9000 + n}",
            reply_ref={
                "method": "wall",
                "owner_id": "-218734591",
                "post_id": str(n),
                "comment_id": str(9000 + n),
            },
        )
    )
    session.flush()
    return question

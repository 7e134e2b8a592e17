"""Use cases behind the operator's actions: replies refused early, notes, assignment,
status changes with their SLA effects, canned responses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from app.answering import canned
from app.answering import service as replies
from app.answering.models import CannedResponseCreate, CannedResponseUpdate, StatusChange
from app.auth.models import Role, User
from app.core.crypto import Cipher
from app.core.errors import Conflict, Invalid, NotAllowed, NotFound
from app.directory.models import Platform
from app.questions.models import (
    Message,
    MessageSource,
    OutboxItem,
    OutboxStatus,
    QuestionStatus,
    TimelineEntry,
)
from app.sla import service as sla_service
from app.sla.models import ClockState, Target
from tests.conftest import SECRET, FrozenClock
from tests.factories.auth import make_user
from tests.factories.directory import make_institution, make_page
from tests.factories.questions import follow_up, make_question
from tests.outbox.outbox_helpers import question_on

CIPHER = Cipher(SECRET)


@pytest.fixture
def admin(session: Session) -> User:
    return make_user(session, Role.admin, name="Анна Петрова")


def _reply(
    session: Session, question: object, user: User, now: datetime, **kw: object
) -> OutboxItem:
    return replies.reply(
        session,
        question,  # type: ignore[arg-type]
        text=str(kw.get("text", "Здравствуйте! Ответ.")),
        interim=bool(kw.get("interim", False)),
        expected_at=kw.get("expected_at"),  # type: ignore[arg-type]
        by=user,
        now=now,
        cipher=CIPHER,
    )


def test_reply_creates_an_unpublished_message_and_its_outbox_item(
    session: Session, admin: User, clock: FrozenClock
) -> None:
    question = make_question(session)
    item = _reply(session, question, admin, clock(), text="  Ремонт в мае.  ")
    message = session.get(Message, item.message_id)
    assert message is not None
    assert message.source == MessageSource.otklik and message.sent_at is None
    assert message.text == "Ремонт в мае." and message.user_id == admin.id
    assert message.author_name == "Анна Петрова"
    assert item.status == OutboxStatus.pending and item.next_attempt_at == clock()
    assert item.payload["reply_ref"]["method"] == "wall"
    assert item.payload["text"] == "Ремонт в мае."
    assert question.status == QuestionStatus.in_progress


def test_reply_answers_the_latest_citizen_message(
    session: Session, admin: User, clock: FrozenClock
) -> None:
    question = make_question(session)
    later = follow_up(
        session,
        question,
        at=question.created_at + timedelta(minutes=5),
        source_key="wall:x:1",
        reply_ref={"method": "wall", "owner_id": "-1", "post_id": "2", "comment_id": "77"},
    )
    item = _reply(session, question, admin, clock())
    assert item.payload["reply_ref"]["comment_id"] == "77"
    assert item.payload["reply_to_message_id"] == later.id


def test_vk_board_comment_without_a_user_token_is_refused_before_anything_is_written(
    session: Session, admin: User, clock: FrozenClock
) -> None:
    question = question_on(
        session,
        Platform.vk,
        {"method": "board", "group_id": "218734591", "topic_id": "40", "comment_id": "5"},
        external_id="board:40:5",
        thread_key="board:40",
    )
    problem, _ = replies.reply_problem(session, question, CIPHER)
    assert problem is not None and "ключом администратора" in problem
    with pytest.raises(replies.CannotReply) as refused:
        _reply(session, question, admin, clock())
    assert refused.value.status_code == 409 and refused.value.code == "cannot_reply"
    assert session.exec(select(OutboxItem)).all() == []
    outbound = session.exec(select(Message).where(Message.source == MessageSource.otklik)).all()
    assert outbound == []


def test_a_page_without_a_token_is_refused(
    session: Session, admin: User, clock: FrozenClock
) -> None:
    page = make_page(session, access_token=None)
    question = make_question(session, page_id=page.id, institution_id=page.institution_id)
    with pytest.raises(replies.CannotReply, match="ключ доступа"):
        _reply(session, question, admin, clock())


def test_generic_sources_cannot_be_answered(
    session: Session, admin: User, clock: FrozenClock
) -> None:
    question = question_on(
        session, Platform.generic, {"id": "1"}, external_id="g:1", thread_key="g"
    )
    with pytest.raises(replies.CannotReply):
        _reply(session, question, admin, clock())


def test_reply_input_rules(session: Session, admin: User, clock: FrozenClock) -> None:
    question = make_question(session)
    with pytest.raises(Invalid):
        _reply(session, question, admin, clock(), text="   ")
    with pytest.raises(Invalid, match="expected_at"):
        _reply(session, question, admin, clock(), interim=True)
    with pytest.raises(Invalid):
        _reply(session, question, admin, clock(), interim=True, expected_at=clock())
    question.status = QuestionStatus.withdrawn
    with pytest.raises(replies.CannotReply, match="удалил"):
        _reply(session, question, admin, clock())


def test_retry_requeues_a_failed_reply(session: Session, admin: User, clock: FrozenClock) -> None:
    question = make_question(session)
    item = _reply(session, question, admin, clock())
    with pytest.raises(Conflict):
        replies.retry(session, question, item.id or 0, now=clock())
    item.status, item.error_code, item.attempts = OutboxStatus.failed, "token_invalid", 1
    again = replies.retry(session, question, item.id or 0, now=clock())
    assert again.status == OutboxStatus.pending and again.error_code is None and again.attempts == 0
    other = make_question(session)
    with pytest.raises(NotFound):
        replies.retry(session, other, item.id or 0, now=clock())


def test_notes_are_internal(session: Session, admin: User, clock: FrozenClock) -> None:
    question = make_question(session)
    note = replies.add_note(session, question, text="Позвонила в Дорстрой", by=admin, now=clock())
    assert note.source == MessageSource.note and note.external_id is None
    assert session.exec(select(OutboxItem)).all() == []
    assert question.first_response_at is None
    kinds = session.exec(
        select(TimelineEntry.kind).where(TimelineEntry.question_id == question.id)
    ).all()
    assert "note" in kinds


def test_claim_assign_release(session: Session, clock: FrozenClock) -> None:
    institution = make_institution(session)
    anna = make_user(session, Role.operator, institution_ids=[institution.id])
    boris = make_user(session, Role.operator, institution_ids=[institution.id])
    stranger = make_user(session, Role.operator, institution_ids=[make_institution(session).id])
    question = make_question(session, institution_id=institution.id)

    replies.claim(session, question, by=anna, now=clock())
    assert question.assignee_id == anna.id and question.status == QuestionStatus.in_progress
    with pytest.raises(Conflict):
        replies.claim(session, question, by=boris, now=clock())
    with pytest.raises(NotAllowed):
        replies.release(session, question, by=boris, now=clock())
    with pytest.raises(Invalid):
        replies.assign(session, question, user_id=stranger.id, by=anna, now=clock())
    replies.assign(session, question, user_id=boris.id, by=anna, now=clock())
    assert question.assignee_id == boris.id
    replies.release(session, question, by=boris, now=clock())
    assert question.assignee_id is None
    moves = session.exec(
        select(TimelineEntry.data).where(
            TimelineEntry.question_id == question.id, TimelineEntry.kind == "assigned"
        )
    ).all()
    assert [(m["from"], m["to"]) for m in moves] == [
        (None, anna.id),
        (anna.id, boris.id),
        (boris.id, None),
    ]


def test_status_changes_drive_the_sla(session: Session, admin: User, clock: FrozenClock) -> None:
    question = make_question(session, created_at=clock() - timedelta(hours=1))
    replies.set_status(session, question, StatusChange.waiting_citizen, by=admin, now=clock())
    final = sla_service.clocks_of(session, question)[Target.final_answer]
    assert question.status == QuestionStatus.waiting_citizen and final.state == ClockState.paused
    replies.set_status(session, question, StatusChange.closed, by=admin, now=clock())
    assert question.status == QuestionStatus.closed and question.closed_at == clock()
    with pytest.raises(Conflict):
        replies.set_status(session, question, StatusChange.waiting_citizen, by=admin, now=clock())
    replies.set_status(session, question, StatusChange.reopen, by=admin, now=clock())
    assert question.status == QuestionStatus.in_progress and question.closed_at is None
    clocks = sla_service.clocks_of(session, question)
    assert clocks[Target.first_response].state in (ClockState.running, ClockState.warning)
    entries = session.exec(
        select(TimelineEntry.data).where(
            TimelineEntry.question_id == question.id, TimelineEntry.kind == "status"
        )
    ).all()
    assert [e["to"] for e in entries] == ["waiting_citizen", "closed", "in_progress"]


def test_canned_responses_render_their_variables(session: Session, clock: FrozenClock) -> None:
    institution = make_institution(session, name="Администрация Заречного округа")
    operator = make_user(session, Role.operator, institution_ids=[institution.id])
    question = make_question(session, institution_id=institution.id, citizen_name="Ирина Смирнова")
    row = canned.create_canned(
        session,
        operator,
        CannedResponseCreate(
            institution_id=institution.id,
            title="Промежуточный",
            text="{{citizen_name}}, здравствуйте! {{ institution }} ответит до {{expected_date}}.",
        ),
        now=clock(),
    )
    # 18:30 UTC is already the next day in Yekaterinburg (UTC+5).
    expected = datetime(2026, 3, 19, 20, 30, tzinfo=UTC)
    assert canned.render(session, row, question, expected) == (
        "Ирина, здравствуйте! Администрация Заречного округа ответит до 20.03.2026."
    )
    assert "{{expected_date}}" in canned.render(session, row, question, None)
    with pytest.raises(Invalid, match="citizen_nam"):
        canned.update_canned(
            session, operator, row.id or 0, CannedResponseUpdate(text="{{citizen_nam}}")
        )


def test_canned_responses_are_scoped(session: Session, clock: FrozenClock) -> None:
    mine, theirs = make_institution(session), make_institution(session)
    operator = make_user(session, Role.operator, institution_ids=[mine.id])
    admin = make_user(session, Role.admin)
    common = canned.create_canned(
        session, admin, CannedResponseCreate(title="Общий", text="Здравствуйте!"), now=clock()
    )
    foreign = canned.create_canned(
        session,
        admin,
        CannedResponseCreate(institution_id=theirs.id, title="Чужой", text="Текст"),
        now=clock(),
    )
    own = canned.create_canned(
        session,
        operator,
        CannedResponseCreate(institution_id=mine.id, title="Свой", text="Текст"),
        now=clock(),
    )
    visible = [c.id for c in canned.list_canned(session, operator)]
    assert visible == [common.id, own.id]
    with pytest.raises(NotFound):
        canned.get_canned(session, operator, foreign.id or 0)
    with pytest.raises(NotAllowed):
        canned.create_canned(
            session, operator, CannedResponseCreate(title="Общий 2", text="x"), now=clock()
        )
    with pytest.raises(NotAllowed):
        canned.delete_canned(session, operator, common.id or 0)
    with pytest.raises(Invalid):
        canned.create_canned(
            session,
            operator,
            CannedResponseCreate(institution_id=theirs.id, title="x", text="x"),
            now=clock(),
        )
    canned.delete_canned(session, operator, own.id or 0)
    assert [c.id for c in canned.list_canned(session, operator)] == [common.id]

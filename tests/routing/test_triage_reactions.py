"""Thanks, emoji reactions and stickers need no answer: no SLA clock, out of the work to do."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from app.directory.models import Platform
from app.questions.models import Question
from app.routing.triage import NO_ANSWER, Classification, classify
from app.sla.clocks import ANSWERABLE, clocks_of
from tests.factories.directory import make_page
from tests.factories.questions import deliver, make_question
from webhooks import get_adapter
from webhooks.base import PageSecrets

NOW = datetime(2025, 10, 14, 7, 30, tzinfo=UTC)

NEEDS_NO_ANSWER = [
    ("Спасибо!", "gratitude.formula"),
    ("Спасибо большое за помощь 🙏", "gratitude.formula"),
    ("👍", "gratitude.reaction"),
    ("❤️❤️", "gratitude.reaction"),
    ("+", "gratitude.reaction"),
    ("👍🏻👍🏻", "gratitude.reaction"),  # skin tones
    ("🙏 🙏!", "gratitude.reaction"),
    (")))", "gratitude.reaction"),  # the Russian smile
    ("💐🌹", "gratitude.reaction"),
]


@pytest.mark.parametrize(("text", "rule"), NEEDS_NO_ANSWER)
def test_thanks_and_reactions_are_gratitude(text: str, rule: str) -> None:
    verdict = classify(text)
    assert verdict.classification is Classification.gratitude
    assert verdict.rule == rule
    assert verdict.classification in NO_ANSWER


def test_telegram_sticker_arrives_as_its_emoji_and_is_a_reaction() -> None:
    # Telegram puts a sticker's emoji in the text and the sticker in the attachments.
    assert classify("👍", attachment_types=["sticker"]).rule == "gratitude.reaction"
    assert classify("👍", has_attachments=True).rule == "gratitude.reaction"


def test_sticker_alone_needs_no_answer_but_a_photo_alone_does() -> None:
    sticker = classify("", attachment_types=["sticker"])
    assert (sticker.classification, sticker.rule) == (Classification.other, "other.sticker")
    assert classify("😡", attachment_types=["sticker"]).rule == "other.sticker"
    assert classify("", attachment_types=["photo"]).rule == "question.attachment_only"
    assert (
        classify("", attachment_types=["sticker", "photo"]).classification
        is Classification.question
    )


@pytest.mark.parametrize("text", ["😡", "🤔", "😡😡😡"])
def test_other_emoji_alone_are_not_thanks(text: str) -> None:
    # An angry face may open a complaint: "other", for an operator to glance at.
    assert classify(text).rule == "other.emoji"


@pytest.mark.parametrize(
    "text",
    [
        "👍 Когда откроют бассейн?",
        "Спасибо, а когда будет горячая вода?",
        "👍?",
    ],
)
def test_a_reaction_with_a_question_is_still_a_question(text: str) -> None:
    assert classify(text).classification not in NO_ANSWER


def test_a_phone_number_is_no_plus_reaction() -> None:
    assert classify("+7 900 123-45-67").rule != "gratitude.reaction"


def test_no_answer_and_answerable_split_the_classifications() -> None:
    assert {str(c) for c in NO_ANSWER} | set(ANSWERABLE) == {str(c) for c in Classification}
    assert not {str(c) for c in NO_ANSWER} & set(ANSWERABLE)


@pytest.mark.parametrize("text", ["Спасибо!", "Спасибо большое за помощь 🙏", "👍", "❤️❤️", "+"])
def test_no_clock_starts_for_thanks_and_reactions(session: Session, text: str) -> None:
    question = make_question(session, text=text)
    assert question.classification == "gratitude"
    assert question.due_at is None
    assert clocks_of(session, question) == {}


def test_a_question_beside_them_gets_its_clock(session: Session) -> None:
    question = make_question(session, text="Когда откроют бассейн?")
    assert question.due_at is not None
    assert clocks_of(session, question)


def test_a_vk_sticker_comment_lands_out_of_the_work_queue(
    session: Session, payload: Callable[[str, str], bytes]
) -> None:
    """Processing passes the platform's attachment types to triage: VK sends a sticker
    as an attachment with no text, and it needs no answer like Telegram's."""
    body = payload("vk", "wall_reply_new_sticker")
    group = json.loads(body)["group_id"]
    page = make_page(session, platform=Platform.vk, external_id=str(group))
    assert page.id is not None
    secrets = PageSecrets(platform="vk", key="k", external_id=str(group), secret="s")
    for event in get_adapter("vk").parse(secrets, body, NOW):
        deliver(session, page.id, event, received_at=NOW)
    question = session.exec(select(Question).where(Question.page_id == page.id)).one()
    assert question.classification == Classification.other
    assert question.classification_rule == "other.sticker"
    assert question.classification in NO_ANSWER

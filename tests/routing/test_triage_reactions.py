"""Thanks, emoji reactions and stickers need no answer: no SLA clock, out of the work to do."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from app.routing.triage import NO_ANSWER, Classification, classify
from app.sla.clocks import ANSWERABLE, clocks_of
from tests.factories.questions import make_question

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

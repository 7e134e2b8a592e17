"""Rule-based triage of a newly arrived citizen message.

The classifier is deliberately transparent: an ordered list of rules over the
lemmatised text, every verdict naming the rule that decided it and a Russian
explanation for operators. Operators can always reclassify; the goal is a good
first sort of the inbox, not perfection.

Rule order (the first rule that fires wins):

1. spam        — ``spam.repeated``: the same text already came from this author
                 at least ``REPEAT_SPAM_THRESHOLD`` times (``recent_texts``);
                 ``spam.links``: ``LINK_SPAM_THRESHOLD`` or more links;
                 ``spam.advertising``: a link plus advertising vocabulary.
2. no words    — text without letters: ``question.mark`` if it is just «?»,
                 ``gratitude.reaction`` if it is only approving emoji or marks
                 («👍», «❤️❤️», «🙏», «+», «)))»; a Telegram sticker arrives as
                 its emoji), ``other.sticker`` for a sticker alone,
                 ``question.attachment_only`` if there are attachments (a bare
                 photo sent to an official page is almost always about a
                 problem, so it must not sink to "other"), else ``other.empty``,
                 ``other.link_only`` (one link without ads) or ``other.emoji``.
3. complaint   — ``complaint.vocabulary``. Checked *before* question signals:
                 «Почему опять не вывезли мусор?» is both, and the complaint is
                 what carries urgency, so a complaint wins over a question.
4. question    — ``question.mark`` («?»), ``question.interrogative`` (question
                 words: «почему», «что делать», «ли», «подскажите», or «когда»,
                 «где», «как»… at the start of a sentence, where they are
                 interrogative rather than conjunctions), ``question.request``
                 («прошу», «помогите», «примите меры»…).
5. gratitude   — ``gratitude.formula``, only when no complaint or question
                 signal fired (steps 3–4 come first), so «Спасибо, а когда…?»
                 is a question and a sarcastic «Спасибо, опять нет воды» is a
                 complaint.
6. attachment  — ``question.attachment``: text without any signal but with
                 attachments (the text is usually a caption for the photo).
7. other       — ``other.greeting`` (only greetings), ``other.short`` (at most
                 ``SHORT_MESSAGE_WORDS`` words), ``other.no_signal``.

The vocabularies live in :mod:`app.routing.vocabulary`: tuples in lemma form (as
produced by :func:`app.routing.lemmas.lemmatize`; phrases are consecutive lemmas,
negation is written as a phrase: «не работать»). Request/imperative forms are
matched as word forms instead, because lemmatisation would merge «помогите» (a
request) with «помогли» (a thank-you).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.routing.lemmas import KeywordHit, KeywordIndex, fold, lemmatize_tokens, split_words
from app.routing.vocabulary import (
    ADVERTISING_LEMMAS,
    COMPLAINT_LEMMAS,
    GRATITUDE_LEMMAS,
    GREETING_LEMMAS,
    NOT_QUESTION_OPENINGS_LEMMAS,
    QUESTION_ANYWHERE_LEMMAS,
    QUESTION_FORMS,
    QUESTION_SENTENCE_START_LEMMAS,
    REACTION_IGNORED,
    REACTION_SYMBOLS,
    REQUEST_FORMS,
    REQUEST_LEMMAS,
    SENTENCE_LEAD_LEMMAS,
    STICKER_ATTACHMENTS,
)

__all__ = [
    "NO_ANSWER",
    "Classification",
    "Verdict",
    "classify",
]


class Classification(StrEnum):
    question = "question"
    complaint = "complaint"
    gratitude = "gratitude"
    other = "other"
    spam = "spam"


# Classifications that need no answer: no SLA clock starts for them (`app.sla.clocks.
# ANSWERABLE` is the other side), and the queue keeps them out of the work to do.
NO_ANSWER = (Classification.gratitude, Classification.other, Classification.spam)


@dataclass(frozen=True)
class Verdict:
    classification: Classification
    rule: str  # stable id of the deciding rule, e.g. "complaint.vocabulary"
    explanation: str  # Russian, shown to operators


# --- Thresholds -------------------------------------------------------------

LINK_SPAM_THRESHOLD = 2  # this many links alone make a message spam
REPEAT_SPAM_THRESHOLD = 2  # identical earlier texts from the same author
SHORT_MESSAGE_WORDS = 2  # up to this many words without a signal -> other
MAX_QUOTED = 5  # at most this many quoted fragments in an explanation

# --- Vocabulary indexes -------------------------------------------------------

_ADVERTISING = KeywordIndex(ADVERTISING_LEMMAS)
_COMPLAINT = KeywordIndex(COMPLAINT_LEMMAS)
_QUESTION_ANYWHERE = KeywordIndex(QUESTION_ANYWHERE_LEMMAS)
_QUESTION_START = frozenset(QUESTION_SENTENCE_START_LEMMAS)
_NOT_QUESTION_OPENINGS = KeywordIndex(NOT_QUESTION_OPENINGS_LEMMAS)
_QUESTION_FORMS = KeywordIndex(QUESTION_FORMS)
_REQUEST_FORMS = KeywordIndex(REQUEST_FORMS)
_REQUEST_LEMMAS = KeywordIndex(REQUEST_LEMMAS)
_GRATITUDE = KeywordIndex(GRATITUDE_LEMMAS)
_GREETING = KeywordIndex(GREETING_LEMMAS)

# --- Text patterns --------------------------------------------------------------

_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_TLDS = (
    "ru|su|com|net|org|info|biz|me|io|cc|co|ly|gl|to|xyz|online|site|club|pro|top|"
    "shop|store|app|link|live|vip|win|bet|space|website|click"
)
_URL_RE = re.compile(
    r"(?:https?://|www\.)[^\s<>\"']+"
    # bare domains: «vk.cc/abc», «t.me/channel», «casino-x.xyz»
    rf"|(?<![\w.@-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_TLDS})\b(?:/[^\s<>\"']*)?"
    # Cyrillic domains: «госуслуги.рф»
    r"|(?<![\w.@-])(?:[а-яё0-9](?:[а-яё0-9-]*[а-яё0-9])?\.)+рф\b(?:/[^\s<>\"']*)?",
    re.IGNORECASE,
)
_SENTENCE_SPLIT_RE = re.compile(r"[.!?…;\n]+")
_NON_WORD_RE = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class _Sentence:
    tokens: list[str]  # folded word forms
    lemmas: list[str]  # aligned with tokens


@dataclass(frozen=True, slots=True)
class _Found:
    """Matches of one vocabulary across all sentences, with their word forms."""

    fragments: tuple[str, ...]  # surface text of each distinct hit, in order

    def __bool__(self) -> bool:
        return bool(self.fragments)

    def quoted(self) -> str:
        shown = ", ".join(f"«{fragment}»" for fragment in self.fragments[:MAX_QUOTED])
        if len(self.fragments) > MAX_QUOTED:
            shown += " и др."
        return shown


def _plural(number: int, one: str, few: str, many: str) -> str:
    """Russian plural form for a count: 1 ссылка, 2 ссылки, 5 ссылок."""
    tail = number % 100
    if 11 <= tail <= 14:
        return many
    if number % 10 == 1:
        return one
    if 2 <= number % 10 <= 4:
        return few
    return many


def _normalise_for_repeat(text: str) -> str:
    return _NON_WORD_RE.sub(" ", fold(text)).strip()


def _find(index: KeywordIndex, sentences: Sequence[_Sentence], *, forms: bool = False) -> _Found:
    """Search every sentence separately (phrases never span sentences).

    Overlapping hits are collapsed to the longest one, so «нет горячей воды»
    is reported once rather than also as «воды».
    """
    fragments: dict[str, None] = {}
    for sentence in sentences:
        words = sentence.tokens if forms else sentence.lemmas
        covered_until = -1
        for hit in index.find(words):
            if hit.end <= covered_until:
                continue
            covered_until = max(covered_until, hit.end)
            fragments[_surface(sentence, hit)] = None
    return _Found(tuple(fragments))


def _surface(sentence: _Sentence, hit: KeywordHit) -> str:
    return " ".join(sentence.tokens[hit.start : hit.end])


def _sentence_start_questions(sentences: Sequence[_Sentence]) -> _Found:
    fragments: dict[str, None] = {}
    for sentence in sentences:
        for position, lemma in enumerate(sentence.lemmas):
            if lemma in SENTENCE_LEAD_LEMMAS:
                continue
            opening = sentence.lemmas[position : position + 4]
            if lemma in _QUESTION_START and not any(
                hit.start == 0 for hit in _NOT_QUESTION_OPENINGS.find(opening)
            ):
                fragments[sentence.tokens[position]] = None
            break
    return _Found(tuple(fragments))


def _only_greeting(sentences: Sequence[_Sentence]) -> bool:
    """True when every word belongs to a greeting or an address."""
    for sentence in sentences:
        covered = [False] * len(sentence.lemmas)
        for hit in _GREETING.find(sentence.lemmas):
            for i in range(hit.start, hit.end):
                covered[i] = True
        if not all(covered):
            return False
    return True


def _split_sentences(text: str) -> list[_Sentence]:
    sentences: list[_Sentence] = []
    for chunk in _SENTENCE_SPLIT_RE.split(text):
        words = split_words(chunk)
        if words:
            tokens = [word.replace("ё", "е") for word in words]
            sentences.append(_Sentence(tokens, lemmatize_tokens(words)))
    return sentences


def _is_reaction(text: str) -> bool:
    """True for a text made only of approving emoji and marks («👍», «❤️❤️», «+»)."""
    symbols = [c for c in text if c not in REACTION_IGNORED and not c.isspace()]
    return bool(symbols) and all(c in REACTION_SYMBOLS for c in symbols)


def classify(
    text: str,
    *,
    has_attachments: bool = False,
    recent_texts: Sequence[str] = (),
    attachment_types: Sequence[str] = (),
) -> Verdict:
    """Classify one incoming message; see the module docstring for the rule order.

    ``recent_texts`` are earlier messages of the same author (the caller picks
    the window); they are only used to detect repeated copies of ``text``.
    ``attachment_types`` are the platform's attachment types when the caller knows
    them (a sticker alone is a reaction, a photo alone is not); attachments imply
    ``has_attachments``.
    """
    has_attachments = has_attachments or bool(attachment_types)
    # 1. Spam.
    normalised = _normalise_for_repeat(text)
    if normalised:
        repeats = sum(1 for old in recent_texts if _normalise_for_repeat(old) == normalised)
        if repeats >= REPEAT_SPAM_THRESHOLD:
            return Verdict(
                Classification.spam,
                "spam.repeated",
                f"Тот же текст от автора уже приходил {repeats} "
                f"{_plural(repeats, 'раз', 'раза', 'раз')}",
            )

    without_emails = _EMAIL_RE.sub(" ", text)
    links = _URL_RE.findall(without_emails)
    # Links are cut out so their parts («https», «casino») are not read as words.
    body = _URL_RE.sub(" ", without_emails) if links else without_emails
    sentences = _split_sentences(body)

    if len(links) >= LINK_SPAM_THRESHOLD:
        return Verdict(
            Classification.spam,
            "spam.links",
            f"Содержит {len(links)} {_plural(len(links), 'ссылку', 'ссылки', 'ссылок')}",
        )
    if links:
        advertising = _find(_ADVERTISING, sentences)
        if advertising:
            return Verdict(
                Classification.spam,
                "spam.advertising",
                f"Ссылка и рекламные слова: {advertising.quoted()}",
            )

    has_question_mark = "?" in body

    # 2. Nothing to read.
    if not sentences:
        if has_question_mark:
            return Verdict(Classification.question, "question.mark", "Содержит вопросительный знак")
        if _is_reaction(body):
            return Verdict(
                Classification.gratitude,
                "gratitude.reaction",
                f"Только реакция без слов: «{body.strip()[:20]}»",
            )
        if attachment_types and all(t in STICKER_ATTACHMENTS for t in attachment_types):
            return Verdict(Classification.other, "other.sticker", "Только стикер, без слов")
        if has_attachments:
            return Verdict(
                Classification.question,
                "question.attachment_only",
                "Только вложение без текста — вероятно, вопрос или жалоба по фото; "
                "проверьте вложение",
            )
        if not text.strip():
            return Verdict(Classification.other, "other.empty", "Пустое сообщение без вложений")
        if links:
            return Verdict(Classification.other, "other.link_only", "Только ссылка без текста")
        return Verdict(Classification.other, "other.emoji", "Только эмодзи или знаки, без слов")

    # Collect every signal up front so explanations can mention the runner-up.
    complaint = _find(_COMPLAINT, sentences)
    interrogative = _Found(
        _find(_QUESTION_ANYWHERE, sentences).fragments
        + _sentence_start_questions(sentences).fragments
        + _find(_QUESTION_FORMS, sentences, forms=True).fragments
    )
    request = _Found(
        _find(_REQUEST_FORMS, sentences, forms=True).fragments
        + _find(_REQUEST_LEMMAS, sentences).fragments
    )
    is_question = has_question_mark or bool(interrogative) or bool(request)

    # 3. Complaint beats question: it carries urgency.
    if complaint:
        explanation = f"Слова жалобы: {complaint.quoted()}"
        if is_question:
            explanation += "; есть и вопрос, но жалоба важнее"
        return Verdict(Classification.complaint, "complaint.vocabulary", explanation)

    # 4. Question.
    if is_question:
        parts: list[str] = []
        if has_question_mark:
            parts.append("Содержит вопросительный знак")
        if interrogative:
            parts.append(f"вопросительные слова: {interrogative.quoted()}")
        if request:
            parts.append(f"просьба: {request.quoted()}")
        explanation = "; ".join(parts)
        explanation = explanation[0].upper() + explanation[1:]
        if has_question_mark:
            rule = "question.mark"
        elif interrogative:
            rule = "question.interrogative"
        else:
            rule = "question.request"
        return Verdict(Classification.question, rule, explanation)

    # 5. Gratitude (no complaint or question at this point).
    gratitude = _find(_GRATITUDE, sentences)
    if gratitude:
        return Verdict(
            Classification.gratitude,
            "gratitude.formula",
            f"Слова благодарности: {gratitude.quoted()}",
        )

    # 6. An attachment with a caption that has no signal of its own.
    if has_attachments:
        return Verdict(
            Classification.question,
            "question.attachment",
            "Вложение с текстом без явных признаков — вероятно, вопрос; проверьте вложение",
        )

    # 7. Other.
    if _only_greeting(sentences):
        return Verdict(Classification.other, "other.greeting", "Только приветствие")
    words = sum(len(sentence.tokens) for sentence in sentences)
    if words <= SHORT_MESSAGE_WORDS:
        return Verdict(
            Classification.other,
            "other.short",
            f"Короткое сообщение ({words} {_plural(words, 'слово', 'слова', 'слов')}) "
            "без признаков вопроса, жалобы или благодарности",
        )
    return Verdict(
        Classification.other,
        "other.no_signal",
        "Не найдено признаков вопроса, жалобы или благодарности",
    )

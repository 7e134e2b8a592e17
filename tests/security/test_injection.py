"""Hostile citizen text — markup, script, template syntax, SQL, bidirectional and control
characters, lone surrogates, NUL — is stored exactly (or, where no database can hold it,
replaced visibly and the same on both databases) and shown escaped on every page."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth.models import Role
from app.directory.models import Platform
from app.questions.models import Question
from tests.factories.auth import make_user
from tests.factories.directory import make_institution, make_page
from tests.factories.questions import deliver, make_question
from tests.security.test_access import _signed_in, all_routes
from webhooks import get_adapter
from webhooks.base import PageSecrets

HOSTILE = [
    "<script>alert('xss')</script> Когда починят дорогу?",
    '<img src=x onerror="alert(1)"> и <a href="javascript:alert(2)">ссылка</a>',
    "{{ 1234*5 }} {% for x in range(3) %}раз{% endfor %} ${7*191} #{7*193}",
    "'; DROP TABLE question; -- \" OR 1=1 /* ",
    "\u202eнеобычный порядок\u202c \u200fRTL\u200e и \u0007звонок\u001b[31m",
    '=HYPERLINK("http://evil.example","нажми") +1 -2 @SUM(A1)',
]
NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_stored_exactly(session: Session, text: str) -> None:
    question = make_question(session, text=text)
    session.expire_all()
    stored = session.get(Question, question.id)
    assert stored is not None and stored.text == text


def test_unstorable_characters_are_replaced_the_same_on_both_databases(
    session: Session, payload: Callable[[str, str], bytes]
) -> None:
    # JSON may escape what no UTF-8 text column holds: a lone surrogate (half an emoji)
    # and NUL (PostgreSQL refuses it, SQLite keeps it). A pair is one emoji.
    page = make_page(session, platform=Platform.vk, external_id="218734591")
    assert page.id is not None
    body = json.loads(payload("vk", "wall_reply_new"))
    body["object"]["text"] = "PLACEHOLDER"
    raw = json.dumps(body).replace(
        "PLACEHOLDER", "Половина \\ud83d эмодзи, NUL\\u0000 и целое \\ud83d\\ude00"
    )
    secrets = PageSecrets(platform="vk", key="k", external_id="218734591", secret="s")
    for event in get_adapter("vk").parse(secrets, raw.encode(), NOW):
        deliver(session, page.id, event, received_at=NOW)
    session.flush()
    question = session.exec(select(Question).where(Question.page_id == page.id)).one()
    assert question.text == "Половина \ufffd эмодзи, NUL и целое 😀"


def _unescaped(text: str, body: str) -> list[str]:
    """Markup of `text` that reached the page as markup."""
    found = []
    for tag in re.findall(r"<[a-z][^<>]*>", text):
        if tag in body:
            found.append(tag)
    return found


def test_hostile_text_is_escaped_on_every_page(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    institution = make_institution(session)
    assert institution.id is not None
    page = make_page(session, institution_id=institution.id)
    questions = [
        make_question(session, page_id=page.id, text=text, citizen_name=text[:60])
        for text in HOSTILE
    ]
    operator = make_user(session, Role.operator, institution_ids=[institution.id])
    session.commit()
    web = TestClient(app, base_url="https://otklik.example.ru")
    _signed_in(web, operator)
    pages = []
    for method, path, _route in all_routes(app):
        if method != "GET" or path.startswith(("/api/", "/webhooks/")) or path == "/":
            continue
        params = re.findall(r"{(\w+)}", path)
        if params and params != ["question_id"]:
            continue
        for question in questions if params else [None]:
            url = path.replace("{question_id}", str(question.id)) if question else path
            response = web.get(url, follow_redirects=False)
            if response.headers.get("content-type", "").startswith("text/html"):
                pages.append((url, response.text))
    assert any(url.startswith("/questions/") for url, _ in pages), "no question page seen"
    problems = []
    for url, body in pages:
        for text in HOSTILE:
            if _unescaped(text, body):
                problems.append(f"{url}: markup {_unescaped(text, body)} unescaped")
        if "6170" in body:  # {{ 1234*5 }} evaluated by a template engine
            problems.append(f"{url}: citizen text was evaluated as a template")
    assert not problems, "\n".join(problems)
    detail = dict(pages)[f"/questions/{questions[0].id}"]
    assert "&lt;script&gt;alert(" in detail  # shown, as text

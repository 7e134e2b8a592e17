"""Who may reach what, for every route of the application, enumerated from its router:
a route added tomorrow is covered without editing this file (a path parameter this file
does not know fails the test, so that its objects get a place in the world below).

The world: a region with two municipalities, an institution with a page and a question
in each (A and B), their outbox items and canned responses, and users: an operator and
a supervisor of A's side, a supervisor of B's side, an administrator. Promises checked:

- anonymous: every route but the public ones asks to sign in (401, or a redirect to
  /login for pages) and shows nothing;
- a scoped user meets an object outside their scope exactly as one that does not exist
  (same status, same body): nothing confirms that it exists, and nothing about it changes;
- lists, counts, searches and exports of a scoped user never mention B's question;
- every state-changing page form refuses a request without the CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.answering.models import CannedResponse
from app.auth.models import Role, User
from app.directory.models import Institution, Page, Territory
from app.questions.models import Message, OutboxItem, OutboxKind, Question
from tests.factories.auth import PASSWORD, make_token, make_user
from tests.factories.directory import make_institution, make_page, make_territory
from tests.factories.questions import make_question

MISSING = 987_654_321
# Strings only B's question carries: a scoped user on A's side must never meet them.
B_TEXT = "Когда уберут снег во дворе Заречной 77? ЖЕЛТЫЙ-ПОПУГАЙ"
B_CITIZEN = "Беспалова Фиона"
A_TEXT = "Где получить справку для школы? СИНИЙ-ЖИРАФ"

# Routes anybody may call: the webhook endpoint (it authenticates by platform secrets),
# sign-in, health, the API's documentation, the site's root (a redirect).
PUBLIC = {
    "webhooks:receive",
    "auth:login_form",
    "auth:login",
    # An invitation link: the unguessable token in its address is the credential.
    "auth:invite",
    "auth:invite_accept",
    "healthz",
    "readyz",
    "metrics",
    "api_docs",
    "index",
}


# Objects every signed-in user may read whatever their scope, by design (api.md):
SHARED = {
    "api:territory_get",  # the territory tree is public knowledge inside Otklik
}


@dataclass
class Side:
    territory: Territory
    institution: Institution
    page: Page
    question: Question
    outbox_item: OutboxItem
    canned: CannedResponse


@dataclass
class World:
    a: Side
    b: Side
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute with its full path, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # FastAPI's lazily included router
            yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "routes") and hasattr(route, "path"):
            yield from walk(route.routes, prefix + route.path)


def all_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    found = [
        (method, path, route)
        for path, route in walk(app.router.routes)
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]
    assert len(found) > 50, "the router walk found too few routes"
    return found


def _side(session: Session, region: Territory, name: str, text: str, citizen: str) -> Side:
    territory = make_territory(session, parent_id=region.id, name=f"Округ {name}")
    institution = make_institution(session, territory_id=territory.id, name=f"Школа {name}")
    page = make_page(session, institution_id=institution.id, name=f"Страница школы {name}")
    assert page.id is not None
    question = make_question(session, page_id=page.id, text=text, citizen_name=citizen)
    item = OutboxItem(kind=OutboxKind.reply, question_id=question.id, page_id=page.id)
    canned = CannedResponse(institution_id=institution.id, title=f"Шаблон {name}", text="Ответ")
    session.add_all([item, canned])
    session.flush()
    return Side(territory, institution, page, question, item, canned)


@pytest.fixture
def world(session: Session) -> World:
    region = make_territory(session, name="Область")
    a = _side(session, region, "А", A_TEXT, "Алексеев Артём")
    b = _side(session, region, "Б", B_TEXT, B_CITIZEN)
    w = World(a, b)
    w.users = {
        "operator_a": make_user(session, Role.operator, institution_ids=[a.institution.id]),
        "supervisor_a": make_user(session, Role.supervisor, territory_id=a.territory.id),
        "supervisor_b": make_user(session, Role.supervisor, territory_id=b.territory.id),
        "admin": make_user(session, Role.admin, territory_id=region.id),
    }
    w.tokens = {name: make_token(session, user) for name, user in w.users.items()}
    session.commit()
    return w


def _ids(side: Side, users: dict[str, User]) -> dict[str, int | str]:
    s = side
    return {
        "question_id": s.question.id or 0,
        "item_id": s.outbox_item.id or 0,
        "territory_id": s.territory.id or 0,
        "institution_id": s.institution.id or 0,
        "page_id": s.page.id or 0,
        "canned_id": s.canned.id or 0,
    }


# Parameters that name no object of a side: global settings objects, filled with an
# id that does not exist (the route must then answer as for any missing object).
GLOBAL = {
    "token_id",
    "subscription_id",
    "event_id",
    "rule_id",
    "category_id",
    "calendar_id",
    "policy_id",
    "user_id",
    "notification_id",
    # /admin/connect/{platform}: a platform name, not an object; an unknown one is a 404.
    "platform",
}


def _params(path: str) -> list[str]:
    return re.findall(r"{(\w+)(?::\w+)?}", path)


def _fill(path: str, ids: dict[str, int | str]) -> str:
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: str(ids[m.group(1)]), path)


def _missing_ids(ids: dict[str, int | str]) -> dict[str, int | str]:
    return dict.fromkeys(ids, MISSING)


def _normalise(text: str, *numbers: object) -> str:
    for n in numbers:
        text = text.replace(str(n), "<id>")
    # Per-request noise: request ids, CSRF tokens, timestamps.
    text = re.sub(r'"request_id":\s*"[^"]*"', "", text)
    text = re.sub(r"[A-Za-z0-9_-]{32,}", "<token>", text)
    return re.sub(r"\d{2}:\d{2}(:\d{2})?", "<time>", text)


# Bodies that pass validation, so that a route's scope check is what answers.
BODIES: dict[str, dict[str, Any]] = {
    "api:question_transfer": {"institution_id": MISSING, "reason": "Не наша территория"},
    "api:question_dismiss": {"reason": "spam"},
    "api:question_reclassify": {"classification": "question"},
}
FORM = {
    "text": "Здравствуйте! Ответ готов.",
    "reason": "Не наша территория",
    "reason_code": "spam",
    "classification": "question",
    "status": "in_progress",
    "user_id": str(MISSING),
    "institution_id": str(MISSING),
}


def _body(route: APIRoute) -> dict[str, Any]:
    if route.name in BODIES:
        return BODIES[route.name]
    body = getattr(route, "body_field", None)
    model = getattr(getattr(body, "field_info", None), "annotation", None)
    config = getattr(model, "model_config", None) or {}
    examples = (config.get("json_schema_extra") or {}).get("examples") or [{}]
    return dict(examples[0])


@dataclass
class Caller:
    """One user, by bearer token for the API and by a signed-in browser session for pages."""

    api: TestClient
    web: TestClient | None = None
    token: str | None = None
    csrf: str = ""

    def call(self, method: str, url: str, route: APIRoute) -> Any:
        if url.startswith("/api/") or self.web is None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            json = None if method in ("GET", "DELETE") else _body(route)
            return self.api.request(method, url, headers=headers, json=json, follow_redirects=False)
        if method in ("GET", "DELETE"):
            return self.web.request(method, url, follow_redirects=False)
        return self.web.request(
            method,
            url,
            data={**FORM, "csrf_token": self.csrf},
            headers={"X-CSRF-Token": self.csrf},
            follow_redirects=False,
        )


def _snapshot(session: Session, question: Question) -> tuple[Any, ...]:
    session.expire_all()
    q = session.get(Question, question.id)
    assert q is not None
    messages = session.exec(
        select(Message.id, Message.text).where(col(Message.question_id) == q.id)
    ).all()
    return (q.status, q.institution_id, q.assignee_id, q.classification, tuple(messages))


def test_the_route_walk_covers_every_route_with_known_parameters(app: FastAPI) -> None:
    side_params = {
        "question_id",
        "item_id",
        "territory_id",
        "institution_id",
        "page_id",
        "canned_id",
    }
    unknown = {
        f"{method} {path}: {name}"
        for method, path, route in all_routes(app)
        if route.name not in PUBLIC
        for name in _params(path)
        if name not in side_params | GLOBAL
    }
    assert not unknown, f"add these path parameters to the access matrix: {sorted(unknown)}"


def test_anonymous_requests_are_asked_to_sign_in(app: FastAPI, client: TestClient) -> None:
    for method, path, route in all_routes(app):
        if route.name in PUBLIC:
            continue
        url = _fill(path, dict.fromkeys(_params(path), MISSING))
        response = Caller(client).call(method, url, route)
        where = f"{method} {path}"
        if response.status_code in (302, 303, 307):
            assert response.headers["location"].startswith("/login"), where
        else:
            assert response.status_code in (401, 403), f"{where}: {response.status_code}"
        assert B_TEXT not in response.text and A_TEXT not in response.text, where


@pytest.mark.parametrize(
    ("who", "foreign_side"),
    [("operator_a", "b"), ("supervisor_a", "b"), ("supervisor_b", "a")],
)
def test_a_foreign_object_is_indistinguishable_from_a_missing_one(
    app: FastAPI, client: TestClient, session: Session, world: World, who: str, foreign_side: str
) -> None:
    foreign = world.b if foreign_side == "b" else world.a
    before = _snapshot(session, foreign.question)
    web = TestClient(app, base_url="https://otklik.example.ru")
    caller = Caller(client, web, world.tokens[who], _signed_in(web, world.users[who]))
    ids = _ids(foreign, world.users) | dict.fromkeys(GLOBAL, MISSING)
    problems = []
    for method, path, route in all_routes(app):
        if route.name in PUBLIC or route.name in SHARED or not _params(path):
            continue
        there = caller.call(method, _fill(path, ids), route)
        missing = caller.call(method, _fill(path, _missing_ids(ids)), route)
        where = f"{method} {path}"
        if there.status_code != missing.status_code:
            problems.append(
                f"{where}: {there.status_code} for a foreign object, "
                f"{missing.status_code} for a missing one"
            )
            continue
        numbers = sorted({*ids.values(), MISSING}, key=lambda v: -len(str(v)))
        if _normalise(there.text, *numbers) != _normalise(missing.text, *numbers):
            problems.append(f"{where}: the answer differs for a foreign object")
        if 200 <= there.status_code < 300:
            problems.append(f"{where}: {there.status_code} for a foreign object")
    assert not problems, "\n".join(problems)
    assert _snapshot(session, foreign.question) == before  # nothing changed on the other side


def test_own_questions_are_reachable(client: TestClient, world: World) -> None:
    # The matrix above would pass if everything were a 404: the owner does get through.
    qid = world.a.question.id
    for who in ("operator_a", "supervisor_a", "admin"):
        headers = {"Authorization": f"Bearer {world.tokens[who]}"}
        assert client.get(f"/api/v1/questions/{qid}", headers=headers).status_code == 200, who
    headers = {"Authorization": f"Bearer {world.tokens['supervisor_b']}"}
    assert client.get(f"/api/v1/questions/{qid}", headers=headers).status_code == 404


@pytest.mark.parametrize("who", ["operator_a", "supervisor_a"])
def test_lists_searches_and_exports_never_mention_the_other_side(
    app: FastAPI, client: TestClient, world: World, who: str
) -> None:
    leaks = []
    web = TestClient(app, base_url="https://otklik.example.ru")
    caller = Caller(client, web, world.tokens[who], _signed_in(web, world.users[who]))
    queries = ["", "?q=ЖЕЛТЫЙ-ПОПУГАЙ", "?status=", "?tab=all", "?group_by=institution"]
    for method, path, route in all_routes(app):
        if method != "GET" or route.name in PUBLIC or _params(path):
            continue
        for query in queries:
            response = caller.call("GET", path + query, route)
            for secret in (B_TEXT, B_CITIZEN, "ЖЕЛТЫЙ-ПОПУГАЙ"):
                body = response.text.replace("q=ЖЕЛТЫЙ-ПОПУГАЙ", "").replace(
                    'value="ЖЕЛТЫЙ-ПОПУГАЙ"', ""
                )
                if secret in body:
                    leaks.append(f"GET {path}{query} mentions {secret!r}")
    assert not leaks, "\n".join(leaks)
    # And the same lists do show A's own question to A's side (the check is not vacuous).
    for url in ("/api/v1/questions", "/inbox"):
        listed = caller.call("GET", url, route)
        assert "СИНИЙ-ЖИРАФ" in listed.text, url


def _signed_in(client: TestClient, user: User) -> str:
    """Signs `client` in through the form; returns the session's CSRF token."""
    client.get("/login")
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, form
    done = client.post(
        "/login",
        data={"login": user.login, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    page = client.get("/inbox").text
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert csrf, page
    return csrf.group(1)


def test_every_page_form_refuses_a_request_without_the_csrf_token(
    app: FastAPI, client: TestClient, session: Session, world: World
) -> None:
    csrf = _signed_in(client, world.users["operator_a"])
    # Administration forms are a 404 to an operator before any token is read: an
    # administrator's session shows that they too refuse a missing or forged token.
    admin = TestClient(app, base_url="https://otklik.example.ru")
    _signed_in(admin, world.users["admin"])
    before = _snapshot(session, world.a.question)
    ids = _ids(world.a, world.users) | dict.fromkeys(GLOBAL, MISSING)
    checked = 0
    for method, path, route in all_routes(app):
        if method == "GET" or route.name in PUBLIC or path.startswith(("/api/", "/webhooks/")):
            continue
        url = _fill(path, ids)
        caller = admin if path.startswith("/admin") else client
        refused = caller.request(method, url, data={"text": "x"}, follow_redirects=False)
        assert refused.status_code == 403, f"{method} {path}: {refused.status_code}"
        forged = caller.request(
            method, url, data={"text": "x", "csrf_token": "forged"}, follow_redirects=False
        )
        assert forged.status_code == 403, f"{method} {path} with a forged token"
        checked += 1
    assert _snapshot(session, world.a.question) == before
    assert checked >= 1
    # With the right token the same form is no longer refused as forged.
    accepted = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert accepted.status_code == 303

"""Property-based checks of the whole JSON API against its OpenAPI schema: no 5xx, ever.

Every operation under /api/v1 gets a bounded, derandomised set of generated requests
(schema examples first, then fuzzed ones) as an administrator, inside the test's
rolled-back transaction. Half of the generated ids are swapped for ids of seeded rows,
so the requests reach real questions, pages and templates, not only 404s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from schemathesis.python import asgi
from sqlmodel import Session

from app.answering import canned
from app.answering.models import CannedResponseCreate
from app.auth.deps import get_api_user
from app.auth.models import Role, User
from app.core.crypto import Cipher
from app.questions.models import WebhookSubscription
from tests.conftest import SECRET, FrozenClock
from tests.factories.auth import make_user
from tests.factories.directory import make_page
from tests.factories.questions import make_question


@pytest.fixture
def seeded(session: Session, clock: FrozenClock) -> dict[str, int]:
    admin = make_user(session, Role.admin, name="Администратор", password=None)
    page = make_page(session, external_id="218734591")
    question = make_question(
        session,
        page_id=page.id,
        institution_id=page.institution_id,
        created_at=clock() - timedelta(hours=1),
    )
    template = canned.create_canned(
        session,
        admin,
        CannedResponseCreate(title="Шаблон", text="{{citizen_name}}, здравствуйте!"),
        now=clock(),
    )
    subscription = WebhookSubscription(
        url="https://sed.example.ru/hook",
        secret_enc=Cipher(SECRET).encrypt("x" * 32),
        events=["question.answered"],
    )
    session.add(subscription)
    session.commit()
    ids = {
        "user_id": admin.id,
        "question_id": question.id,
        "page_id": page.id,
        "institution_id": page.institution_id,
        "canned_id": template.id,
        "subscription_id": subscription.id,
    }
    return {k: v for k, v in ids.items() if v is not None}


def _openapi() -> dict[str, Any]:
    """The schema as the app publishes it; building the app touches no database."""
    from app.core.config import Settings
    from app.main import create_app

    app = create_app(
        Settings(database_url="sqlite://", secret_key=SECRET),  # type: ignore[arg-type]
        run_worker=False,
    )
    document: dict[str, Any] = app.openapi()
    app.state.engine.dispose()
    app.state.http.close()
    return document


# Operations that still answer 500 to some generated input, each with the failing input;
# they belong to other parts of the API and are excluded until fixed there.
KNOWN_5XX: dict[tuple[str, str], str] = {}

SENT: Counter[tuple[str, str]] = Counter()

schema = (
    schemathesis.openapi.from_dict(
        _openapi(),
        config=schemathesis.config.SchemathesisConfig.from_dict(
            # Boundary and invalid values of every parameter, but not every other HTTP
            # method on every path (the router answers those 405 without our code).
            {"phases": {"coverage": {"unexpected-methods": []}}}
        ),
    )
    .include(path_regex="^/api/v1/")
    .exclude(func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in KNOWN_5XX)
)


@pytest.fixture
def api(
    app: FastAPI,
    session: Session,
    seeded: dict[str, int],
    http_handler: list[Callable[[httpx.Request], httpx.Response]],
) -> Iterator[Any]:
    admin = session.get(User, seeded["user_id"])
    assert admin is not None
    # Authentication has its own tests; here a fixed caller keeps every request authorised
    # (a generated DELETE /tokens/{id} could otherwise revoke the test's own token).
    app.dependency_overrides[get_api_user] = lambda: admin
    http_handler.append(lambda request: httpx.Response(503))
    with asgi.get_client(app) as client:
        yield client
    app.dependency_overrides.pop(get_api_user, None)


@schema.parametrize()
@settings(
    max_examples=3,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any, api: Any, seeded: dict[str, int], session: Session) -> None:
    # The coverage phase yields up to ~200 boundary cases for the richest bodies; past the
    # first ones every sixth is sent, which keeps the whole run under a minute.
    key = (case.method, case.path)
    SENT[key] += 1
    if SENT[key] > 16 and SENT[key] % 6:
        return
    for name, value in list((case.path_parameters or {}).items()):
        if name in seeded and isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = seeded[name]
    response = case.call(session=api, app=api.app)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
    # A generated request must leave the session usable for the next one.
    session.rollback()

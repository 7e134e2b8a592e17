"""The application shell: health, readiness, docs that work offline."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text


def test_readyz_is_503_when_migrations_are_missing(settings: Settings, tmp_path: object) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/empty.db")  # never migrated
    app = create_app(settings, engine=engine, run_worker=False)
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "migrations_pending"
    assert response.headers["retry-after"]


def test_readyz_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    app = create_app(settings, engine=engine, run_worker=False)
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unreachable"


def test_api_docs_use_vendored_assets(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/territories",
        "/api/v1/institutions",
        "/api/v1/pages",
        "/api/v1/questions",
    ):
        assert path in schema["paths"], path


def test_requests_carry_a_request_id(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
    assert client.get("/healthz").headers["x-request-id"]

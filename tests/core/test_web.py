"""The View helper's layout choice and caching headers; the API's declared bearer scheme."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from app.core.web import View


def _request(headers: dict[str, str], method: str = "GET") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": method, "path": "/inbox", "headers": raw})


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, False),
        ({"HX-Request": "true"}, True),
        ({"HX-Request": "true", "HX-Boosted": "true"}, False),
        ({"HX-Request": "true", "HX-History-Restore-Request": "true"}, False),
    ],
)
def test_fragment_only_for_plain_htmx_requests(headers: dict[str, str], fragment: bool) -> None:
    view = View(_request(headers))
    assert view.wants_fragment is fragment
    assert view.is_htmx is ("HX-Request" in headers)


def test_pages_vary_on_hx_request(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert "HX-Request" in page.headers.get("vary", "")
    assert 'hx-history="false"' in page.text
    assert 'href="#main"' in page.text  # the skip link


def test_openapi_declares_the_bearer_scheme_on_token_operations(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme == {
        "type": "http",
        "scheme": "bearer",
        "description": scheme["description"],
    }
    assert doc["paths"]["/api/v1/questions"]["get"]["security"] == [{"HTTPBearer": []}]
    assert doc["paths"]["/api/v1/questions/{question_id}/reply"]["post"]["security"] == [
        {"HTTPBearer": []}
    ]
    assert "security" not in doc["paths"]["/healthz"]["get"]

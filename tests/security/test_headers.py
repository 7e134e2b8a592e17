"""Security headers on every response, and pages that need neither inline script nor eval.

The Content-Security-Policy allows scripts only from our own files: the templates are
read for inline scripts, inline event handlers, `javascript:` links and htmx features
that eval (trigger filters, hx-on, js: values), so a template added tomorrow is covered.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session

from app.auth.models import Role
from app.core.web import CONTENT_SECURITY_POLICY, STATIC_DIR, TEMPLATES_DIR
from tests.factories.auth import PASSWORD, make_user
from tests.factories.directory import make_page
from tests.security.test_access import all_routes

EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "content-security-policy": CONTENT_SECURITY_POLICY,
}


def _check(response: Response, where: str) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], (where, name, response.headers)


def _sign_in(client: TestClient, session: Session) -> None:
    user = make_user(session, Role.admin)
    session.flush()
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, form
    done = client.post(
        "/login",
        data={"login": user.login, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "987654321", path)


def test_every_route_answers_with_the_security_headers(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    routes = all_routes(app)
    statuses: set[int] = set()
    for signed_in in (False, True):
        if signed_in:
            _sign_in(client, session)
        for method, path, _route in routes:
            response = client.request(method, _fill(path), follow_redirects=False)
            statuses.add(response.status_code)
            _check(response, f"{method} {path} signed_in={signed_in}")
    # Pages, redirects, refusals and missing objects alike (not only the happy path).
    assert {200, 303, 401, 403, 404} <= statuses, statuses
    for url in ("/inbox", "/api/docs", "/static/otklik.js", "/no/such/address"):
        _check(client.get(url), url)


def test_webhook_answers_carry_the_headers(client: TestClient, session: Session) -> None:
    page = make_page(session)
    session.flush()
    _check(client.post(f"/webhooks/vk/{page.key}", content=b"{}"), "webhook 403")
    _check(client.post("/webhooks/vk/unknown", content=b"{}"), "webhook 404")


def test_the_policy_allows_no_inline_script_and_no_framing() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY
    # Styles only from our files: no style attribute nor <style> element applies.
    assert directives["style-src"] == "'self'"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


# What the policy would block (or htmx would eval) in a template or a static script.
_FORBIDDEN = {
    "inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "inline event handler": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I | re.S),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "hx-on handler": re.compile(r"\b(?:hx|data-hx)-on", re.I),
    "hx-trigger filter (eval)": re.compile(r"hx-trigger=\"[^\"]*\[", re.I),
    "js: value (eval)": re.compile(r"hx-(?:vals|vars)='?\"?\s*js:", re.I),
    "inline <style>": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.I | re.S),
}


def _templates() -> list[Path]:
    return sorted(TEMPLATES_DIR.rglob("*.html"))


def test_templates_need_no_inline_script_style_nor_eval() -> None:
    found = []
    for path in _templates():
        text = path.read_text(encoding="utf-8")
        for what, pattern in _FORBIDDEN.items():
            found += [f"{path.relative_to(TEMPLATES_DIR)}: {what}" for _ in pattern.finditer(text)]
    assert len(_templates()) > 20
    assert not found, "\n".join(found)


def test_htmx_eval_is_off() -> None:
    base = (TEMPLATES_DIR / "base.html").read_text(encoding="utf-8")
    assert '"allowEval": false' in base
    # Nor does htmx add a <style> of its own (the policy would refuse it).
    assert '"includeIndicatorStyles": false' in base
    # Our scripts neither eval nor write handlers as strings.
    for script in STATIC_DIR.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        assert not re.search(r"\beval\(|new Function\(|setTimeout\(\s*[\"']", text), script
        # Nor set style attributes from strings (CSSOM `element.style.x` is allowed).
        assert not re.search(r"setAttribute\(\s*[\"']style|\.cssText\b|<style", text), script


@pytest.mark.parametrize("url", ["/api/docs"])
def test_api_docs_load_swagger_from_files(client: TestClient, url: str) -> None:
    page = client.get(url)
    assert page.status_code == 200
    assert not _FORBIDDEN["inline <script>"].search(page.text)
    assert '<script src="/static/swagger-init.js"></script>' in page.text
    assert client.get("/static/swagger-init.js").status_code == 200

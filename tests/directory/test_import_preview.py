"""The registry import in the browser and the API: a preview before anything is written
(rows to add, to change old → new, unchanged, every bad row with its number and reason),
then apply in steps with progress, or cancel; audited."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.auth.models import AuditEvent, Role
from app.directory import imports
from app.directory.models import DirectoryImport, Institution, Page, Territory
from tests.factories.admin_web import sign_in
from tests.factories.auth import auth_headers, make_user

HEADER = "territory;institution;sector;parent_institution;platform;page_name;external_id\n"
GOOD = (
    "Тестовая область / Город Н;Администрация города Н;administration;;vk;Администрация Н;5001\n"
    "Тестовая область / Город Н;Школа № 1;education;Администрация города Н;telegram;Школа 1;-1001001\n"
    "Тестовая область / Город Н;ДК «Юность»;Культура;;;;\n"
)
BAD = (
    "Тестовая область / Город Н;Больница;медицина;;vk;Больница;5002\n"  # row 5: sector
    ";Поликлиника;health;;;;\n"  # row 6: no territory
    "Тестовая область / Город Н;Школа № 2;education;Гороно;;;\n"  # row 7: unknown parent
)


def _count(session: Session, model: type) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model)).one()


def _upload(client: TestClient, csrf: str, text: str, name: str = "реестр.csv") -> str:
    answer = client.post(
        "/admin/import",
        data={"csrf_token": csrf},
        files={"file": (name, text.encode("utf-8"), "text/csv")},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    token = re.search(r"token=([\w-]+)", answer.headers["location"])
    assert token
    return token.group(1)


def test_preview_lists_every_bad_row_and_writes_nothing(
    client: TestClient, session: Session
) -> None:
    _, csrf = sign_in(client, session)
    before = _count(session, Institution)
    token = _upload(client, csrf, HEADER + GOOD + BAD)
    page = client.get(f"/admin/import?token={token}").text
    assert "Строки с ошибками: 3" in page
    assert "Строка 5:</strong> неизвестная отрасль «медицина»" in page
    assert "Строка 6:</strong> не указана территория" in page
    assert "Строка 7:</strong> вышестоящее учреждение «Гороно» не найдено" in page
    assert ">Применить</button>" not in page and "Загрузить исправленный файл" in page
    assert _count(session, Institution) == before  # the dry run left nothing behind
    # Applying a file with bad rows is refused.
    refused = client.post("/admin/import/apply", data={"csrf_token": csrf, "token": token})
    assert refused.status_code == 422
    assert _count(session, Institution) == before


def test_fix_reupload_apply_then_a_change_shows_old_and_new(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "CHUNK", 2)  # several steps from a small file
    _, csrf = sign_in(client, session)
    token = _upload(client, csrf, HEADER + GOOD)
    preview = client.get(f"/admin/import?token={token}").text
    assert "Строки с ошибками" not in preview
    assert re.search(r"<strong>3</strong> добавят записи", preview)
    assert "Учреждение «Школа № 1» — новая запись" in preview
    # htmx: one step per request, the fragment asks for the next one.
    steps = 0
    while True:
        answer = client.post(
            "/admin/import/apply",
            data={"csrf_token": csrf, "token": token},
            headers={"HX-Request": "true"},
        )
        assert answer.status_code == 200, answer.text
        steps += 1
        if "Импорт применён" in answer.text:
            break
        assert 'hx-trigger="load"' in answer.text and "<progress" in answer.text
        assert steps < 5
    item = session.exec(select(DirectoryImport).where(DirectoryImport.token == token)).one()
    assert steps == item.total_steps == 3  # 2 chunks of rows, then the parents
    school = session.exec(select(Institution).where(Institution.name == "Школа № 1")).one()
    admin = session.exec(
        select(Institution).where(Institution.name == "Администрация города Н")
    ).one()
    assert school.parent_id == admin.id
    assert session.exec(select(Page).where(Page.external_id == "-1001001")).one().name == "Школа 1"
    entry = session.exec(select(AuditEvent).where(AuditEvent.action == "directory.import")).one()
    assert entry.after["created"] == {"territory": 2, "institution": 3, "page": 2}  # type: ignore[index]
    # Applying again does nothing more.
    again = client.post(
        "/admin/import/apply", data={"csrf_token": csrf, "token": token}, follow_redirects=False
    )
    assert again.status_code == 303

    changed = GOOD.replace("Школа № 1;education", "Школа № 1;culture").replace(
        ";Администрация Н;5001", ";Администрация города;5001"
    )
    token2 = _upload(client, csrf, HEADER + changed)
    page = client.get(f"/admin/import?token={token2}").text
    assert re.search(r"<strong>2</strong> изменят записи", page)
    assert re.search(r"<strong>1</strong> без изменений", page)
    assert 'отрасль <span class="imp-old">education</span> → <strong>culture</strong>' in page
    assert (
        'название <span class="imp-old">Администрация Н</span> → <strong>Администрация города</strong>'
        in page
    )
    # Without JavaScript one request applies every step.
    done = client.post(
        "/admin/import/apply", data={"csrf_token": csrf, "token": token2}, follow_redirects=True
    )
    assert "Импорт применён" in done.text
    session.expire_all()
    assert session.get(Institution, school.id).sector == "culture"  # type: ignore[union-attr]
    # A sector named in Russian, as registries do («Культура»), is understood.
    dk = session.exec(select(Institution).where(Institution.name == "ДК «Юность»")).one()
    assert dk.sector == "culture"


def test_cancel_and_bad_files(client: TestClient, session: Session) -> None:
    _, csrf = sign_in(client, session)
    token = _upload(client, csrf, HEADER + GOOD)
    cancelled = client.post(
        "/admin/import/cancel", data={"csrf_token": csrf, "token": token}, follow_redirects=True
    )
    assert "Импорт отменён" in cancelled.text
    assert session.exec(select(Territory).where(Territory.name == "Город Н")).first() is None
    assert (
        client.post(
            "/admin/import/apply", data={"csrf_token": csrf, "token": token}, follow_redirects=False
        ).status_code
        == 303
    )
    assert session.exec(select(Territory).where(Territory.name == "Город Н")).first() is None
    for name, data, message in [
        ("реестр.txt", b"territory\n", "Загрузите файл .csv или .xlsx"),
        ("реестр.xlsx", b"not a workbook", "Не удалось прочитать файл XLSX"),
        ("реестр.csv", b"name;sector\nx;y\n", "нет столбца territory"),
    ]:
        answer = client.post(
            "/admin/import", data={"csrf_token": csrf}, files={"file": (name, data)}
        )
        assert answer.status_code == 422 and message in answer.text, name
    missing = client.post("/admin/import", data={"csrf_token": csrf})
    assert missing.status_code == 422 and "Выберите файл" in missing.text
    assert client.get("/admin/import?token=nope").status_code == 404


def test_api_dry_run_then_apply(client: TestClient, session: Session) -> None:
    admin = make_user(session, Role.admin)
    headers = auth_headers(session, admin)
    session.commit()
    files = {"file": ("r.csv", (HEADER + GOOD + BAD).encode(), "text/csv")}
    dry = client.post("/api/v1/directory/import?dry_run=true", files=files, headers=headers)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["dry_run"] is True and body["applied"] is False
    assert [e["row"] for e in body["errors"]] == [5, 6, 7]
    assert body["added"] == 3 and body["created"]["page"] == 2
    refused = client.post("/api/v1/directory/import?dry_run=false", files=files, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "bad_rows"
    assert session.exec(select(Territory).where(Territory.name == "Город Н")).first() is None
    files = {"file": ("r.csv", (HEADER + GOOD).encode(), "text/csv")}
    applied = client.post("/api/v1/directory/import?dry_run=false", files=files, headers=headers)
    assert applied.status_code == 200 and applied.json()["applied"] is True
    assert session.exec(select(Territory).where(Territory.name == "Город Н")).one()
    assert session.exec(
        select(AuditEvent).where(col(AuditEvent.action) == "directory.import")
    ).one()
    institution = session.exec(select(Institution)).first()
    assert institution is not None
    operator = make_user(session, Role.operator, institution_ids=[institution.id])
    forbidden = client.post(
        "/api/v1/directory/import", files=files, headers=auth_headers(session, operator)
    )
    assert forbidden.status_code == 403


def test_an_xlsx_upload_is_read_like_the_cli_reads_it(client: TestClient, session: Session) -> None:
    from io import BytesIO

    from openpyxl import Workbook

    admin = make_user(session, Role.admin)
    headers = auth_headers(session, admin)
    session.commit()
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Территория", "Учреждение", "Отрасль", "Платформа", "Id"])
    sheet.append(["Тестовая область / Город Н", "Школа № 1", "education", "vk", 5001])
    buffer = BytesIO()
    workbook.save(buffer)
    files = {"file": ("реестр.xlsx", buffer.getvalue())}
    answer = client.post("/api/v1/directory/import", files=files, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == {"territory": 2, "institution": 1, "page": 1}
    assert answer.json()["errors"] == []

"""Importing the regional registry: idempotent, in place, all-or-nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from app.directory import spreadsheet, spreadsheet_export, spreadsheet_import
from app.directory.models import Institution, Page, Territory

HEADER = spreadsheet.COLUMNS


def _write(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


ROWS = [
    ["Челябинская область", "region", "Asia/Yekaterinburg", "", "", "", "", "", "", ""],
    [
        "Челябинская область / Чебаркульский городской округ",
        "",
        "",
        "Администрация Чебаркульского ГО",
        "administration",
        "",
        "vk",
        "Администрация Чебаркуля",
        "https://vk.com/club1",
        "218734591",
    ],
    [
        "Челябинская область / Чебаркульский городской округ",
        "",
        "",
        "МБОУ СОШ № 1",
        "education",
        "Администрация Чебаркульского ГО",
        "telegram",
        "Школа 1",
        "https://t.me/school1",
        "-1001987654321",
    ],
    [
        "Челябинская область / Чебаркульский городской округ",
        "",
        "",
        "МБОУ СОШ № 1",
        "education",
        "Администрация Чебаркульского ГО",
        "ok",
        "Школа 1 в ОК",
        "https://ok.ru/group/1",
        "70000000000001",
    ],
    [
        "Челябинская область / Чебаркульский муниципальный район / Варламовское сельское поселение",
        "",
        "",
        "Варламовский ДК",
        "culture",
        "",
        "max",
        "ДК",
        "",
        "7718293401",
    ],
]


def _snapshot(session: Session) -> list[tuple[object, ...]]:
    result: list[tuple[object, ...]] = []
    for model in (Territory, Institution, Page):
        for row in session.exec(select(model).order_by(model.id)).all():  # type: ignore[attr-defined]
            result.append(
                tuple(
                    v
                    for k, v in sorted(row.model_dump().items())
                    if k not in {"created_at", "updated_at"}
                )
            )
    return result


def test_import_creates_the_tree_and_reimport_changes_nothing(
    session: Session, tmp_path: Path
) -> None:
    path = _write(tmp_path / "registry.csv", ROWS)
    result = spreadsheet_import.import_rows(session, spreadsheet.read_rows(path))
    assert result.created == {"territory": 4, "institution": 3, "page": 4}
    village = session.exec(
        select(Territory).where(Territory.name == "Варламовское сельское поселение")
    ).one()
    assert village.kind == "settlement" and village.timezone == "Asia/Yekaterinburg"
    school = session.exec(select(Institution).where(Institution.name == "МБОУ СОШ № 1")).one()
    admin = session.exec(
        select(Institution).where(Institution.name == "Администрация Чебаркульского ГО")
    ).one()
    assert school.parent_id == admin.id and school.path == f"/{admin.id}/{school.id}/"

    before = _snapshot(session)
    again = spreadsheet_import.import_rows(session, spreadsheet.read_rows(path))
    assert not again.changed
    assert _snapshot(session) == before


def test_changed_row_updates_in_place(session: Session, tmp_path: Path) -> None:
    spreadsheet_import.import_rows(session, spreadsheet.read_rows(_write(tmp_path / "a.csv", ROWS)))
    page = session.exec(select(Page).where(Page.external_id == "218734591")).one()
    page_id, key = page.id, page.key
    changed = [list(r) for r in ROWS]
    changed[1][7] = "Администрация Чебаркульского городского округа"
    result = spreadsheet_import.import_rows(
        session, spreadsheet.read_rows(_write(tmp_path / "b.csv", changed, ";"))
    )
    assert result.updated["page"] == 1 and sum(result.created.values()) == 0
    page = session.exec(select(Page).where(Page.external_id == "218734591")).one()
    assert (page.id, page.key) == (page_id, key)
    assert page.name == "Администрация Чебаркульского городского округа"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            ["Челябинская область / Город", "", "", "Школа", "schools", "", "", "", "", ""],
            "неизвестная отрасль",
        ),
        (
            ["Челябинская область / Город", "", "", "Школа", "education", "", "vk", "", "", "abc"],
            "должен быть числом",
        ),
        (["", "", "", "Школа", "education", "", "", "", "", ""], "не указана территория"),
        (
            ["Челябинская область / Город", "", "Mars/Olympus", "", "", "", "", "", "", ""],
            "часовой пояс",
        ),
        (
            [
                "Челябинская область / Город",
                "",
                "",
                "Школа",
                "education",
                "Нет такого",
                "",
                "",
                "",
                "",
            ],
            "не найдено",
        ),
    ],
)
def test_a_bad_row_imports_nothing_and_names_the_row(
    session: Session, tmp_path: Path, bad: list[str], reason: str
) -> None:
    rows = [*ROWS[:3], bad, *ROWS[3:]]
    path = _write(tmp_path / "bad.csv", rows)
    counts = [
        session.exec(select(sa.func.count()).select_from(m)).one()
        for m in (Territory, Institution, Page)
    ]
    nested = session.begin_nested()
    with pytest.raises(spreadsheet.ImportError_) as info:
        spreadsheet_import.import_rows(session, spreadsheet.read_rows(path))
    nested.rollback()
    assert info.value.row == 5  # header is row 1, the bad one is the fourth data row
    assert reason in info.value.message and "Строка 5" in info.value.message
    assert [
        session.exec(select(sa.func.count()).select_from(m)).one()
        for m in (Territory, Institution, Page)
    ] == counts


def test_export_then_import_round_trips_csv_and_xlsx(session: Session, tmp_path: Path) -> None:
    spreadsheet_import.import_rows(session, spreadsheet.read_rows(_write(tmp_path / "a.csv", ROWS)))
    before = _snapshot(session)
    for name in ("out.csv", "out.xlsx"):
        out = tmp_path / name
        spreadsheet.write_rows(out, spreadsheet_export.export_rows(session))
        result = spreadsheet_import.import_rows(session, spreadsheet.read_rows(out))
        assert not result.changed, (name, result)
    assert _snapshot(session) == before


def test_russian_headers_and_platform_names_are_understood(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "ru.csv"
    path.write_text(
        "Территория;Учреждение;Отрасль;Платформа;Ссылка;ID\n"
        "Челябинская область / Миасский ГО;Администрация Миасса;administration;ВКонтакте;https://vk.com/miass;-55555\n",
        encoding="utf-8",
    )
    result = spreadsheet_import.import_rows(session, spreadsheet.read_rows(path))
    assert result.created["page"] == 1
    assert session.exec(select(Page.external_id).where(Page.platform == "vk")).all()[-1] == "55555"

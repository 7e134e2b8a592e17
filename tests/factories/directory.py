from __future__ import annotations

import itertools
from typing import Any

from sqlmodel import Session

from app.core.crypto import Cipher
from app.directory import service
from app.directory.models import (
    Institution,
    InstitutionCreate,
    Page,
    PageCreate,
    Platform,
    Sector,
    Territory,
    TerritoryCreate,
    TerritoryKind,
)

_seq = itertools.count(1)
TEST_SECRET = "test-secret-key-of-sufficient-length-0123456789"


def cipher() -> Cipher:
    return Cipher(TEST_SECRET)


def make_territory(session: Session, **overrides: Any) -> Territory:
    data: dict[str, Any] = {
        "name": f"Территория {next(_seq)}",
        "kind": TerritoryKind.municipality if overrides.get("parent_id") else TerritoryKind.region,
        "timezone": "Asia/Yekaterinburg",
    }
    data.update(overrides)
    return service.create_territory(session, TerritoryCreate(**data))


def make_institution(session: Session, **overrides: Any) -> Institution:
    if "territory_id" not in overrides:
        overrides["territory_id"] = make_territory(session).id
    data: dict[str, Any] = {"name": f"Учреждение {next(_seq)}", "sector": Sector.administration}
    data.update(overrides)
    return service.create_institution(session, InstitutionCreate(**data))


def make_page(session: Session, **overrides: Any) -> Page:
    if "institution_id" not in overrides:
        overrides["institution_id"] = make_institution(session).id
    n = next(_seq)
    platform = overrides.get("platform", Platform.vk)
    data: dict[str, Any] = {
        "platform": platform,
        "name": f"Страница {n}",
        "url": f"https://vk.com/club{218700000 + n}",
        "external_id": str(218700000 + n)
        if platform is not Platform.telegram
        else str(-1001900000000 - n),
        "secret": "Zr7qL2vN9xKw" if platform is not Platform.ok else None,
        "confirmation_code": "a1b2c3d4" if platform is Platform.vk else None,
        "access_token": f"{700000 + n}:AAtesttoken"
        if platform is Platform.telegram
        else "vk1.a.test-token",
    }
    data.update(overrides)
    return service.create_page(session, PageCreate(**data), cipher())

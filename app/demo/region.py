"""The demo region: Челябинская область, its municipalities, institutions, pages, users."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from app.auth import service as auth_service
from app.auth.models import Role, UserCreate
from app.core.config import Settings
from app.core.crypto import Cipher
from app.directory import service as directory_service
from app.directory.models import (
    Institution,
    InstitutionCreate,
    PageCreate,
    Platform,
    Sector,
    Territory,
    TerritoryCreate,
    TerritoryKind,
)

REGION = "Челябинская область"
TZ = "Asia/Yekaterinburg"

# municipality -> settlements
MUNICIPALITIES: dict[str, list[str]] = {
    "Челябинский городской округ": [],
    "Магнитогорский городской округ": [],
    "Златоустовский городской округ": [],
    "Миасский городской округ": [],
    "Чебаркульский городской округ": [],
    "Чебаркульский муниципальный район": [
        "Варламовское сельское поселение",
        "Филимоновское сельское поселение",
    ],
}

# (municipality or "", settlement or "", institution, sector, parent institution or "")
INSTITUTIONS: list[tuple[str, str, str, Sector, str]] = [
    ("", "", "Правительство Челябинской области", Sector.administration, ""),
    (
        "",
        "",
        "Министерство здравоохранения Челябинской области",
        Sector.health,
        "Правительство Челябинской области",
    ),
    (
        "",
        "",
        "Министерство образования и науки Челябинской области",
        Sector.education,
        "Правительство Челябинской области",
    ),
    (
        "",
        "",
        "Министерство культуры Челябинской области",
        Sector.culture,
        "Правительство Челябинской области",
    ),
    (
        "",
        "",
        "Министерство дорожного хозяйства и транспорта Челябинской области",
        Sector.transport,
        "Правительство Челябинской области",
    ),
    (
        "",
        "",
        "Министерство строительства и инфраструктуры Челябинской области",
        Sector.housing,
        "Правительство Челябинской области",
    ),
    (
        "",
        "",
        "Министерство социальных отношений Челябинской области",
        Sector.social,
        "Правительство Челябинской области",
    ),
    (
        "",
        "",
        "Министерство физической культуры и спорта Челябинской области",
        Sector.sport,
        "Правительство Челябинской области",
    ),
    (
        "",
        "",
        "Главное управление по труду и занятости населения Челябинской области",
        Sector.employment,
        "Правительство Челябинской области",
    ),
    (
        "Челябинский городской округ",
        "",
        "Администрация города Челябинска",
        Sector.administration,
        "",
    ),
    (
        "Челябинский городской округ",
        "",
        "Комитет по делам образования города Челябинска",
        Sector.education,
        "Администрация города Челябинска",
    ),
    (
        "Челябинский городской округ",
        "",
        "МАОУ «Лицей № 31 г. Челябинска»",
        Sector.education,
        "Комитет по делам образования города Челябинска",
    ),
    (
        "Челябинский городской округ",
        "",
        "МБОУ «СОШ № 15 г. Челябинска»",
        Sector.education,
        "Комитет по делам образования города Челябинска",
    ),
    (
        "Челябинский городской округ",
        "",
        "ГАУЗ «Городская клиническая больница № 8 г. Челябинск»",
        Sector.health,
        "",
    ),
    (
        "Челябинский городской округ",
        "",
        "Управление дорожного хозяйства города Челябинска",
        Sector.transport,
        "Администрация города Челябинска",
    ),
    (
        "Челябинский городской округ",
        "",
        "Управление ЖКХ администрации города Челябинска",
        Sector.housing,
        "Администрация города Челябинска",
    ),
    (
        "Магнитогорский городской округ",
        "",
        "Администрация города Магнитогорска",
        Sector.administration,
        "",
    ),
    (
        "Магнитогорский городской округ",
        "",
        "Управление образования администрации г. Магнитогорска",
        Sector.education,
        "Администрация города Магнитогорска",
    ),
    (
        "Магнитогорский городской округ",
        "",
        "ГАУЗ «Городская больница № 3 г. Магнитогорск»",
        Sector.health,
        "",
    ),
    (
        "Магнитогорский городской округ",
        "",
        "МАУК «Магнитогорский драматический театр им. А. С. Пушкина»",
        Sector.culture,
        "",
    ),
    (
        "Магнитогорский городской округ",
        "",
        "МАУ «Спортивная школа олимпийского резерва № 1»",
        Sector.sport,
        "",
    ),
    (
        "Златоустовский городской округ",
        "",
        "Администрация Златоустовского городского округа",
        Sector.administration,
        "",
    ),
    ("Златоустовский городской округ", "", "МАОУ «СОШ № 3 г. Златоуста»", Sector.education, ""),
    (
        "Златоустовский городской округ",
        "",
        "МКУ «Управление ЖКХ Златоустовского городского округа»",
        Sector.housing,
        "Администрация Златоустовского городского округа",
    ),
    (
        "Златоустовский городской округ",
        "",
        "Управление социальной защиты населения ЗГО",
        Sector.social,
        "Администрация Златоустовского городского округа",
    ),
    (
        "Миасский городской округ",
        "",
        "Администрация Миасского городского округа",
        Sector.administration,
        "",
    ),
    ("Миасский городской округ", "", "МАУ ДК «Прометей»", Sector.culture, ""),
    ("Миасский городской округ", "", "ГБУЗ «Городская больница № 2 г. Миасс»", Sector.health, ""),
    (
        "Миасский городской округ",
        "",
        "МКУ «Управление по делам образования Миасского ГО»",
        Sector.education,
        "Администрация Миасского городского округа",
    ),
    (
        "Чебаркульский городской округ",
        "",
        "Администрация Чебаркульского городского округа",
        Sector.administration,
        "",
    ),
    (
        "Чебаркульский городской округ",
        "",
        "Управление образования Чебаркульского городского округа",
        Sector.education,
        "Администрация Чебаркульского городского округа",
    ),
    (
        "Чебаркульский городской округ",
        "",
        "МБОУ «СОШ № 1 г. Чебаркуля»",
        Sector.education,
        "Управление образования Чебаркульского городского округа",
    ),
    (
        "Чебаркульский городской округ",
        "",
        "МБДОУ «Детский сад № 15 г. Чебаркуля»",
        Sector.education,
        "Управление образования Чебаркульского городского округа",
    ),
    (
        "Чебаркульский городской округ",
        "",
        "ГБУЗ «Районная больница г. Чебаркуль»",
        Sector.health,
        "",
    ),
    (
        "Чебаркульский городской округ",
        "",
        "МБУК «Централизованная клубная система Чебаркуля»",
        Sector.culture,
        "Администрация Чебаркульского городского округа",
    ),
    (
        "Чебаркульский городской округ",
        "",
        "МУП «Коммунальные сети Чебаркуля»",
        Sector.housing,
        "Администрация Чебаркульского городского округа",
    ),
    (
        "Чебаркульский городской округ",
        "",
        "Управление социальной защиты населения Чебаркульского ГО",
        Sector.social,
        "Администрация Чебаркульского городского округа",
    ),
    ("Чебаркульский городской округ", "", "МБУ «Спортивная школа Чебаркуля»", Sector.sport, ""),
    (
        "Чебаркульский муниципальный район",
        "",
        "Администрация Чебаркульского муниципального района",
        Sector.administration,
        "",
    ),
    (
        "Чебаркульский муниципальный район",
        "Варламовское сельское поселение",
        "Администрация Варламовского сельского поселения",
        Sector.administration,
        "Администрация Чебаркульского муниципального района",
    ),
    (
        "Чебаркульский муниципальный район",
        "Варламовское сельское поселение",
        "Варламовский сельский дом культуры",
        Sector.culture,
        "",
    ),
    (
        "Чебаркульский муниципальный район",
        "Филимоновское сельское поселение",
        "Администрация Филимоновского сельского поселения",
        Sector.administration,
        "Администрация Чебаркульского муниципального района",
    ),
]

PLATFORM_CYCLE = [Platform.vk, Platform.telegram, Platform.ok, Platform.max]


@dataclass
class Created:
    territories: int = 0
    institutions: int = 0
    pages: int = 0
    users: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # login, password, role, scope

    def summary(self) -> str:
        lines = [
            f"demo region: {self.territories} territories, {self.institutions} institutions, "
            f"{self.pages} pages",
            "users (login / password / role / scope):",
        ]
        lines += [
            f"  {login} / {password} / {role} / {scope}"
            for login, password, role, scope in self.users
        ]
        return "\n".join(lines)


def is_empty(session: Session) -> bool:
    return session.exec(select(sa.func.count()).select_from(Territory)).one() == 0


def credentials_file(settings: Settings) -> Path:
    return settings.var_dir / "demo-credentials.txt"


def _external_id(platform: Platform, n: int) -> str:
    if platform == Platform.vk:
        return str(218734591 + n)
    if platform == Platform.telegram:
        return str(-1001987654321 - n)
    if platform == Platform.ok:
        return f"{70000000000000 + n}"
    return str(7718293401 + n)


def _page_url(platform: Platform, external_id: str, slug: str) -> str:
    return {
        Platform.vk: f"https://vk.com/club{external_id}",
        Platform.telegram: f"https://t.me/{slug}",
        Platform.ok: f"https://ok.ru/group/{external_id}",
        Platform.max: f"https://max.ru/{slug}",
    }.get(platform, "")


def seed(session: Session, settings: Settings) -> Created:
    """Create the demo directory and users. Call on an empty database; the caller commits."""
    cipher = Cipher(settings.resolved_secret_key())
    created = Created()
    region = directory_service.create_territory(
        session, TerritoryCreate(name=REGION, kind=TerritoryKind.region, timezone=TZ)
    )
    created.territories += 1
    municipalities: dict[str, Territory] = {}
    settlements: dict[str, Territory] = {}
    for name, children in MUNICIPALITIES.items():
        municipalities[name] = directory_service.create_territory(
            session,
            TerritoryCreate(
                name=name, kind=TerritoryKind.municipality, parent_id=region.id, timezone=TZ
            ),
        )
        created.territories += 1
        for child in children:
            settlements[child] = directory_service.create_territory(
                session,
                TerritoryCreate(
                    name=child,
                    kind=TerritoryKind.settlement,
                    parent_id=municipalities[name].id,
                    timezone=TZ,
                ),
            )
            created.territories += 1

    institutions: dict[str, Institution] = {}
    for municipality, settlement, name, sector, parent in INSTITUTIONS:
        territory = settlements.get(settlement) or municipalities.get(municipality) or region
        assert territory.id is not None
        institutions[name] = directory_service.create_institution(
            session,
            InstitutionCreate(
                name=name,
                territory_id=territory.id,
                sector=sector,
                parent_id=institutions[parent].id if parent else None,
            ),
        )
        created.institutions += 1

    for n, institution in enumerate(institutions.values()):
        assert institution.id is not None
        # Every institution has a VK community; every other one a second platform.
        platforms = [Platform.vk]
        if n % 2 == 0:
            platforms.append(PLATFORM_CYCLE[1 + (n // 2) % 3])
        for platform in platforms:
            external_id = _external_id(platform, n)
            slug = f"demo_page_{n}_{platform}"
            directory_service.create_page(
                session,
                PageCreate(
                    institution_id=institution.id,
                    platform=platform,
                    name=institution.name,
                    url=_page_url(platform, external_id, slug),
                    external_id=external_id,
                    secret=None if platform == Platform.ok else secrets.token_urlsafe(18),
                    confirmation_code=secrets.token_hex(4) if platform == Platform.vk else None,
                    access_token=(
                        f"{6000000000 + n}:AA{secrets.token_urlsafe(24)}"
                        if platform == Platform.telegram
                        else f"demo-token-{secrets.token_hex(16)}"
                    ),
                    staff_ids=[],
                ),
                cipher,
            )
            created.pages += 1

    def add_user(login: str, role: Role, scope: str, **kwargs: object) -> None:
        password = auth_service.generate_password()
        auth_service.create_user(
            session,
            UserCreate(login=login, role=role, password=password, **kwargs),  # type: ignore[arg-type]
        )
        created.users.append((login, password, str(role), scope))

    add_user("admin", Role.admin, "всё", name="Администратор системы")
    add_user("cur", Role.supervisor, REGION, name="ЦУР Челябинской области", territory_id=region.id)
    chebarkul = municipalities["Чебаркульский городской округ"]
    add_user(
        "chebarkul",
        Role.supervisor,
        chebarkul.name,
        name="Куратор Чебаркульского ГО",
        territory_id=chebarkul.id,
    )
    add_user(
        "education",
        Role.supervisor,
        "Министерство образования и науки (и подведомственные)",
        name="Куратор: Минобразования",
        institution_id=institutions["Министерство образования и науки Челябинской области"].id,
    )
    for login, name in [
        ("adm.chebarkul", "Администрация Чебаркульского городского округа"),
        ("school1.chebarkul", "МБОУ «СОШ № 1 г. Чебаркуля»"),
        ("hospital.chebarkul", "ГБУЗ «Районная больница г. Чебаркуль»"),
        ("adm.chelyabinsk", "Администрация города Челябинска"),
    ]:
        institution = institutions[name]
        assert institution.id is not None
        add_user(
            login, Role.operator, name, name=f"Оператор: {name}", institution_ids=[institution.id]
        )

    path = credentials_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(created.summary() + "\n")
    path.chmod(0o600)
    return created

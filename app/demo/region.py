"""Seeding the demo region: its territories, institutions, pages and users.

The region itself (Челябинская область, municipalities, institutions) is data in
:mod:`app.demo.chelyabinsk`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.auth import service as auth_service
from app.auth.models import Role, UserCreate
from app.core.config import Settings
from app.core.crypto import Cipher
from app.core.db import utcnow
from app.demo import admin_examples
from app.demo.chelyabinsk import INSTITUTIONS, MUNICIPALITIES, REGION, TZ
from app.directory import service as directory_service
from app.directory.models import (
    Institution,
    InstitutionCreate,
    Page,
    PageCreate,
    Platform,
    Territory,
    TerritoryCreate,
    TerritoryKind,
)

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

    created.pages += _connection_examples(session, cipher, list(institutions.values()))

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
        "Образование во всей области (школы, детсады и министерство, чьи бы они ни были)",
        name="Куратор: Минобразования",
        territory_id=region.id,
        sector="education",
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

    admin = auth_service.get_user_by_login(session, "admin")
    assert admin is not None
    admin_examples.seed(
        session, region=region, institutions=institutions, admin=admin, now=utcnow()
    )

    path = credentials_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(created.summary() + "\n")
    path.chmod(0o600)
    return created


# --- what the administration's pages show: every kind of source, a subscription, failures


def _connection_examples(session: Session, cipher: Cipher, institutions: list[Institution]) -> int:
    """A page of the generic source (a regional portal), a paused outgoing-webhook
    subscription with two past deliveries, and deliveries that failed processing (what
    an administrator meets on /admin/failed). Returns the pages added."""
    from datetime import timedelta

    from app.core.db import utcnow
    from app.intake.models import EventStatus, InboundEvent
    from app.questions.models import OutboxItem, OutboxKind, OutboxStatus, WebhookSubscription
    from webhooks import Malformed, get_adapter

    regional = institutions[0]
    assert regional.id is not None
    portal = directory_service.create_page(
        session,
        PageCreate(
            institution_id=regional.id,
            platform=Platform.generic,
            name="Портал «Обращения граждан»",
            url="https://obr.example.ru",
            external_id="portal-obrashcheniya",
            secret=secrets.token_urlsafe(24),
        ),
        cipher,
    )
    now = utcnow()
    subscription = WebhookSubscription(
        url="https://sed.example.ru/otklik/events",
        secret_enc=cipher.encrypt(secrets.token_urlsafe(32)),
        events=["question.created", "sla.breached"],
        # Paused: the demo's address does not exist; its past deliveries stay listed.
        is_active=False,
        created_at=now - timedelta(days=20),
    )
    session.add(subscription)
    session.flush()
    for status, hours, error in (
        (OutboxStatus.sent, 72, None),
        (OutboxStatus.failed, 30, "Адрес подписки недоступен (ConnectError). Попыток: 8."),
    ):
        at = now - timedelta(hours=hours)
        session.add(
            OutboxItem(
                kind=OutboxKind.webhook,
                subscription_id=subscription.id,
                payload={"event": "test", "occurred_at": at.isoformat(), "data": {}},
                status=status,
                attempts=1 if status == OutboxStatus.sent else 8,
                created_at=at,
                sent_at=at if status == OutboxStatus.sent else None,
                error_code=None if error is None else "webhook_unreachable",
                error_message=error,
            )
        )
    # Deliveries a platform sent that Otklik could not read: recorded as processing
    # records them (the adapter's own error), not retried (a malformed body never heals).
    vk_page = session.exec(
        select(Page).where(Page.platform == Platform.vk).order_by(col(Page.id).desc())
    ).first()
    bodies: list[tuple[Page, dict[str, object]]] = [
        (portal, {"id": "obr-1207", "thread_id": "obr-1207", "kind": "appeal", "text": "Свет"}),
    ]
    if vk_page is not None:
        bodies.append(
            (
                vk_page,
                {
                    "type": "wall_reply_new",
                    "event_id": "5f0c1d9e7a3b",
                    "v": "5.199",
                    "group_id": int(vk_page.external_id),
                    "object": "unexpected",
                },
            )
        )
    for n, (page, body) in enumerate(bodies):
        assert page.id is not None
        raw = json.dumps(body, ensure_ascii=False).encode()
        try:
            get_adapter(page.platform).parse(directory_service.page_secrets(page, cipher), raw, now)
            error = "processing failed"
        except Malformed as exc:
            error = f"Malformed: {exc}"
        session.add(
            InboundEvent(
                platform=page.platform,
                page_id=page.id,
                delivery_key=str(body.get("id") or body.get("event_id")),
                body=raw,
                received_at=now - timedelta(hours=5 + n),
                status=EventStatus.failed,
                attempts=1,
                last_error=error,
                processed_at=None,
            )
        )
    session.flush()
    return 1

"""Whom the SLA alerts of an institution reach: its operators, its own supervisors, and
the supervisors of the territories above it, each with the time zone their alerts'
times are written in. Read for many institutions at once and kept in the process's
snapshots (`app.core.snapshots`) as plain values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from app.auth.models import Role, User, UserInstitution
from app.core import bulk, snapshots
from app.directory.models import Institution, Territory
from app.sla import policies


def _path_ids(path: str) -> list[int]:
    return [int(part) for part in path.strip("/").split("/") if part]


def _active(role: Role) -> ColumnElement[bool]:
    return sa.and_(col(User.role) == role, col(User.is_active).is_(True))


@dataclass(frozen=True, slots=True)
class Recipient:
    """Someone an alert reaches: a plain value, kept in the process's snapshots."""

    id: int
    telegram_chat_id: str | None
    email: str | None
    timezone: str  # the zone the alert's times are written in for them


LEVELS = ("operators", "supervisors", "chain")


def _read_recipients(
    session: Session, keys: Sequence[Hashable]
) -> dict[Hashable, tuple[Recipient, ...]]:
    """Whom the alerts of each key's institution reach, for keys ("alert-recipients",
    level, institution id), all in five reads whatever their number:

    - operators: those who work the institution's queue;
    - supervisors: the institution's own, of it or a parent institution, or of its
      territory;
    - chain: supervisors of the territories above the institution's, nearest first.
    """
    ids = sorted({int(key[2]) for key in keys})  # type: ignore[index]
    institutions = {
        i.id or 0: i
        for i in session.exec(
            select(Institution).where(bulk.among(session, col(Institution.id), ids))
        )
    }
    territories = {
        t.id: t
        for t in session.exec(
            select(Territory).where(
                bulk.among(
                    session, col(Territory.id), {i.territory_id for i in institutions.values()}
                )
            )
        )
    }
    above = {
        i: [t for t in _path_ids(territories[inst.territory_id].path) if t != inst.territory_id]
        for i, inst in institutions.items()
        if inst.territory_id in territories
    }
    working: dict[int, list[User]] = defaultdict(list)
    for institution_id, user in session.exec(
        select(UserInstitution.institution_id, User)
        .join(User, col(User.id) == col(UserInstitution.user_id))
        .where(
            bulk.among(session, col(UserInstitution.institution_id), ids), _active(Role.operator)
        )
        .order_by(col(User.id))
    ):
        working[institution_id].append(user)
    own = {i: set(_path_ids(inst.path) or [i]) for i, inst in institutions.items()}
    candidates = session.exec(
        select(User)
        .where(
            _active(Role.supervisor),
            bulk.among(session, col(User.institution_id), set().union(*own.values()))
            | bulk.among(
                session,
                col(User.territory_id),
                {i.territory_id for i in institutions.values()}.union(*above.values()),
            ),
        )
        .order_by(col(User.id))
    ).all()
    zones = _user_zones(session, [*candidates, *(u for us in working.values() for u in us)])
    found: dict[Hashable, tuple[Recipient, ...]] = {}
    for key in keys:
        level, institution_id = str(key[1]), int(key[2])  # type: ignore[index]
        inst = institutions.get(institution_id)
        if inst is None:
            found[key] = ()
            continue
        if level == "operators":
            users = working.get(institution_id, [])
        elif level == "supervisors":
            users = [
                u
                for u in candidates
                if u.institution_id in own[institution_id] or u.territory_id == inst.territory_id
            ]
        else:
            depth = {t: n for n, t in enumerate(above.get(institution_id, []))}
            users = sorted(
                (u for u in candidates if u.territory_id in depth),
                key=lambda u: -depth[u.territory_id or 0],
            )
        # The institution's own zone, as `policies.institution_timezone` gives it.
        place = territories.get(inst.territory_id)
        fallback = place.timezone if place is not None else policies.DEFAULT_TIMEZONE
        found[key] = tuple(
            Recipient(
                id=u.id,
                telegram_chat_id=u.telegram_chat_id,
                email=u.email,
                timezone=zones.get(u.id) or fallback,
            )
            for u in users
            if u.id is not None
        )
    return found


def _user_zones(session: Session, users: Sequence[User]) -> dict[int | None, str]:
    """Each user's own time zone: chosen in the profile, else their territory's (none:
    their alerts are written in the institution's)."""
    wanted = {u.territory_id for u in users if not u.timezone and u.territory_id is not None}
    territory_zones = dict(
        session.exec(
            select(Territory.id, Territory.timezone).where(
                bulk.among(session, col(Territory.id), wanted)
            )
        ).all()
    )
    zones: dict[int | None, str] = {}
    for u in users:
        zone = u.timezone or territory_zones.get(u.territory_id)
        if zone:
            zones[u.id] = zone
    return zones


class Recipients:
    """Who hears about the alerts of a sweep: the people of each institution with their
    time zones, from the process's snapshots (`app.core.snapshots`: rebuilt after a
    write to users, institutions or territories, at once in this process and within
    2 s of another's) instead of a dozen reads per institution every sweep."""

    def __init__(self, session: Session) -> None:
        self._session = session
        # What this sweep has read: a sweep slowed down by a busy machine may outlast
        # the snapshots' 2 s between its prefetch and its alerts.
        self._read: dict[Hashable, tuple[Recipient, ...]] = {}

    def bind(self, session: Session) -> Recipients:
        """Read what is missing through `session` from now on (one `Recipients` serves
        every batch of a sweep, each in its own transaction)."""
        self._session = session
        return self

    def _of(self, level: str, institution_id: int) -> tuple[Recipient, ...]:
        key = ("alert-recipients", level, institution_id)
        found = self._read.get(key)
        if found is None:
            found = self._read[key] = snapshots.get(
                self._session, key, lambda session: _read_recipients(session, [key])[key]
            )
        return found

    def operators(self, institution_id: int) -> tuple[Recipient, ...]:
        return self._of("operators", institution_id)

    def supervisors(self, institution_id: int) -> tuple[Recipient, ...]:
        return self._of("supervisors", institution_id)

    def chain_supervisors(self, institution_id: int) -> tuple[Recipient, ...]:
        return self._of("chain", institution_id)

    def prefetch(self, institution_ids: Iterable[int]) -> None:
        """Read now everyone the alerts of these institutions may reach: the SLA sweep
        does it before it locks its questions, so that processing, which may be waiting
        for one of them, does not also wait for these reads."""
        ids = [i for i in institution_ids if ("alert-recipients", "chain", i) not in self._read]
        keys = [("alert-recipients", level, i) for i in ids for level in LEVELS]
        snapshots.prime(self._session, keys, _read_recipients)
        for _, level, institution_id in keys:
            self._of(level, institution_id)

"""SLA policy versions as plain values, and the most specific version for a question.

Every version is read once per snapshot (`app.core.snapshots`), not once per question;
an institution's applicable versions are ranked once per snapshot too, so that
resolving a question's policy is a walk down a short list. The ranking is the one
`app.sla.policies` documents: institution > sector (within a territory, nearer
first, before everywhere) > territory (nearest ancestor) > global; among versions
of one attachment the newest `effective_from` not after the question, then the
highest id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from app.core import snapshots
from app.core.errors import NotFound
from app.directory import snapshots as directory
from app.sla.models import SlaPolicy, SlaPolicyBase


@dataclass(frozen=True, slots=True)
class Norms:
    """The figures of a policy version (id None: the built-in default) and its attachment."""

    id: int | None
    first_response_minutes: int
    urgent_first_response_minutes: int | None
    next_response_minutes: int | None
    final_answer_minutes: int | None
    working_time: bool
    calendar_id: int | None
    warn_ratio: float
    effective_from: datetime
    institution_id: int | None = None
    sector: str | None = None
    territory_id: int | None = None

    @classmethod
    def of(cls, policy: SlaPolicyBase, policy_id: int | None = None) -> Norms:
        return cls(
            id=policy_id,
            first_response_minutes=policy.first_response_minutes,
            urgent_first_response_minutes=policy.urgent_first_response_minutes,
            next_response_minutes=policy.next_response_minutes,
            final_answer_minutes=policy.final_answer_minutes,
            working_time=policy.working_time,
            calendar_id=policy.calendar_id,
            warn_ratio=policy.warn_ratio,
            effective_from=policy.effective_from,
            institution_id=policy.institution_id,
            sector=policy.sector,
            territory_id=policy.territory_id,
        )


def _load_all(session: Session) -> dict[int, Norms]:
    rows = session.exec(select(SlaPolicy).order_by(col(SlaPolicy.id))).all()
    return {row.id: Norms.of(row, row.id) for row in rows if row.id is not None}


def versions(session: Session) -> dict[int, Norms]:
    """Every stored version by id."""
    return snapshots.get(session, "sla.versions", _load_all)


def _path_ids(path: str) -> list[int]:
    return [int(part) for part in path.strip("/").split("/") if part]


def _ranked(session: Session, institution_id: int) -> tuple[Norms, ...]:
    """The versions applicable to an institution, most specific first."""
    institution = directory.institution(session, institution_id)
    if institution is None:
        raise NotFound(f"Учреждение {institution_id} не найдено")
    path = institution.territory_path
    chain = _path_ids(path) if path is not None else [institution.territory_id]
    depth = {territory_id: i for i, territory_id in enumerate(chain)}

    def rank(policy: Norms) -> tuple[int, int] | None:
        # Lower is more specific; None: does not apply.
        if policy.institution_id is not None:
            return (0, 0) if policy.institution_id == institution_id else None
        nearness = 0
        if policy.territory_id is not None:
            if policy.territory_id not in depth:
                return None
            nearness = len(chain) - depth[policy.territory_id]
        if policy.sector is not None:
            if policy.sector != institution.sector:
                return None
            # Sector within a territory beats the sector everywhere.
            return (1, nearness if policy.territory_id is not None else 10_000)
        if policy.territory_id is not None:
            return (2, nearness)
        return (3, 0)

    ranked = [
        (r, -policy.effective_from.timestamp(), -(policy.id or 0), policy)
        for policy in versions(session).values()
        if (r := rank(policy)) is not None
    ]
    ranked.sort(key=lambda item: item[:3])
    return tuple(item[3] for item in ranked)


def resolve(session: Session, institution_id: int, at: datetime) -> Norms | None:
    """The version in force for an institution's question created at `at` (None: the
    built-in default). Raises NotFound for an unknown institution."""
    ranked = snapshots.get(
        session, ("sla.ranked", institution_id), lambda s: _ranked(s, institution_id)
    )
    return next((policy for policy in ranked if policy.effective_from <= at), None)

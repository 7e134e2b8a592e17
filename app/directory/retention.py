"""Which institutions keep personal data how long: the periods in use.

`institution.retention_days` (None: the regional `OTKLIK_RETENTION_DAYS`; 0: for
good). Read by the rooms that erase what is past its period (questions, intake).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.directory.models import Institution


def periods(session: Session, default_days: int) -> list[tuple[int, sa.ColumnElement[bool]]]:
    """(days, a condition on `institution` selecting who keeps data that long) for every
    period in use; institutions that keep data for good are left out."""
    used = session.exec(select(Institution.retention_days).distinct()).all()
    found: list[tuple[int, sa.ColumnElement[bool]]] = []
    for days in used:
        effective = default_days if days is None else days
        if effective > 0:
            which = (
                col(Institution.retention_days).is_(None)
                if days is None
                else col(Institution.retention_days) == days
            )
            found.append((effective, which))
    return found

"""The database's percentiles equal a full sort's (`percentile_cont`'s interpolation), on
both databases: grouped and for one constant key, with ties, zeros, a NULL key, groups
of one and two values, and measures with NULLs."""

from __future__ import annotations

import random

import sqlalchemy as sa
from sqlmodel import Session

from app.reports import percentiles
from app.reports.figures import percentile


def _rows() -> list[dict[str, object]]:
    rnd = random.Random(7)
    rows: list[dict[str, object]] = []
    for _ in range(3000):
        rows.append(
            {
                "k": rnd.choice(["a", "b", None]),
                "w": rnd.choice([None, 0.0, 5.0, 5.0, rnd.expovariate(1 / 300), rnd.random()]),
                "x": rnd.random() * 10_000,
            }
        )
    rows += [{"k": "one", "w": 7.0, "x": 1.0}]
    rows += [{"k": "two", "w": 1.0, "x": 2.0}, {"k": "two", "w": 2.0, "x": 4.0}]
    return rows


def _expected(rows: list[dict[str, object]], key: object, column: str) -> list[float | None]:
    values = [
        float(r[column])  # type: ignore[arg-type]
        for r in rows
        if (key == "*" or r["k"] == key) and r[column] is not None
    ]
    return [percentile(values, 0.5), percentile(values, 0.9)]


def _close(got: list[float | None], expected: list[float | None]) -> bool:
    return all(
        (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-9)
        for a, b in zip(got, expected, strict=True)
    )


def test_percentiles_equal_a_full_sort(session: Session) -> None:
    table = sa.Table(
        "percentile_sample",
        sa.MetaData(),
        sa.Column("k", sa.String(10)),
        sa.Column("w", sa.Float),
        sa.Column("x", sa.Float),
    )
    table.create(session.connection())
    rows = _rows()
    session.execute(table.insert(), rows)
    grouped = sa.select(
        table.c.k.label("key"), table.c.w.label("working"), table.c.x.label("wall")
    ).subquery()
    found = percentiles.percentiles(session, grouped, ("working", "wall"))
    assert set(found) == {"a", "b", "None", "one", "two"}
    for key, got in found.items():
        k = None if key == "None" else key
        for measure, column in (("working", "w"), ("wall", "x")):
            assert _close(got[measure], _expected(rows, k, column)), (key, measure)
    one = sa.select(
        sa.literal("total").label("key"), table.c.w.label("working"), table.c.x.label("wall")
    ).subquery()
    total = percentiles.percentiles(session, one, ("working", "wall"), grouped=False)["total"]
    for measure, column in (("working", "w"), ("wall", "x")):
        assert _close(total[measure], _expected(rows, "*", column)), measure

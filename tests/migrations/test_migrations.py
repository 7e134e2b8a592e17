"""The migrated schema is the models' schema, and migrations go both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.core import migrate
from app.core.db import make_engine


def _diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def test_migrated_schema_matches_models(engine: sa.Engine) -> None:
    assert _diff(engine) == []
    assert migrate.is_at_head(engine)


def test_downgrade_to_base_and_upgrade_again(tmp_path: Path, database_url: str) -> None:
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    else:
        # A separate database, so the shared test schema stays intact.
        admin = make_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql("DROP DATABASE IF EXISTS otklik_roundtrip")
            conn.exec_driver_sql("CREATE DATABASE otklik_roundtrip")
        admin.dispose()
        url = (
            sa.engine.make_url(database_url)
            .set(database="otklik_roundtrip")
            .render_as_string(hide_password=False)
        )
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    migrate.upgrade(url)
    assert _diff(engine) == []
    engine.dispose()


@pytest.mark.postgres
def test_postgres_schema_has_named_constraints(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    uniques = {c["name"] for c in inspector.get_unique_constraints("inbound_event")}
    assert "uq_inbound_event_page_id_delivery_key" in uniques

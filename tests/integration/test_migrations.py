"""The schema comes from the migrations; this fails when models and migrations drift."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tongban.models import metadata


def test_models_match_migrations(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_one_head_and_a_full_round_trip(tmp_path):
    """The revisions form one line to a single head, and every one of them downgrades:
    upgrade → downgrade to base → upgrade again leaves the same tables."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    from tongban.db import make_engine
    from tongban.migrate import alembic_config, downgrade, upgrade

    url = f"sqlite:///{tmp_path / 'round-trip.db'}"
    assert len(ScriptDirectory.from_config(alembic_config(url)).get_heads()) == 1
    upgrade(url)
    engine = make_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert {"service_case", "licence", "audit_entry", "med_settlement"} <= tables
    downgrade(url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(url)
    assert set(inspect(engine).get_table_names()) == tables
    engine.dispose()

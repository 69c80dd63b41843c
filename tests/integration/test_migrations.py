"""The schema comes from the migrations; this fails when models and migrations drift."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tongban.models import metadata


def test_models_match_migrations(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == [], f"models and migrations differ: {diff}"

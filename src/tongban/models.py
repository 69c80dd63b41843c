"""Base.metadata with every context's tables (Alembic, tests): each registered context
declares its models module, so loading the registry imports them all."""

from tongban.contexts import registry
from tongban.db import Base

registry()
metadata = Base.metadata

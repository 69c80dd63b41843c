"""Imports every context's tables so that Base.metadata is complete (Alembic, tests)."""

from tongban.calendar import models as calendar_models  # noqa: F401
from tongban.cases import models as cases_models  # noqa: F401
from tongban.catalog import models as catalog_models  # noqa: F401
from tongban.db import Base
from tongban.exchange import models as exchange_models  # noqa: F401
from tongban.identity import models as identity_models  # noqa: F401
from tongban.regions import models as regions_models  # noqa: F401

metadata = Base.metadata

"""Imports every context's tables so that Base.metadata is complete (Alembic, tests)."""

from tongban.audit import models as audit_models  # noqa: F401
from tongban.calendar import models as calendar_models  # noqa: F401
from tongban.cases import models as cases_models  # noqa: F401
from tongban.catalog import models as catalog_models  # noqa: F401
from tongban.db import Base
from tongban.evidence import models as evidence_models  # noqa: F401
from tongban.exchange import models as exchange_models  # noqa: F401
from tongban.identity import models as identity_models  # noqa: F401
from tongban.keys import models as keys_models  # noqa: F401
from tongban.licences import models as licences_models  # noqa: F401
from tongban.medical import models as medical_models  # noqa: F401
from tongban.regions import models as regions_models  # noqa: F401
from tongban.tickets import models as tickets_models  # noqa: F401

metadata = Base.metadata

"""Rules of emergency reserves and mutual aid that need no database (no SQLAlchemy, no
FastAPI: checked by import-linter). Reserves are in `reserves`, mutual aid in `aid`;
both are re-exported here."""

from tongban.emergency.domain.aid import *  # noqa: F403
from tongban.emergency.domain.aid import __all__ as _aid
from tongban.emergency.domain.reserves import *  # noqa: F403
from tongban.emergency.domain.reserves import __all__ as _reserves

__all__ = [*_reserves, *_aid]

"""ORM tables of this context."""

from __future__ import annotations

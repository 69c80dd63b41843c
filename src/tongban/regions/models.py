from __future__ import annotations

import uuid

from sqlalchemy import Boolean, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, new_id


class Jurisdiction(Base):
    """A province-level division (省/直辖市) that runs, or is served by, a node."""

    __tablename__ = "jurisdiction"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    short_name: Mapped[str] = mapped_column(String(8))
    node_id: Mapped[str] = mapped_column(String(40), default="local")


class City(Base):
    """A prefecture-level city, by GB/T 2260 code."""

    __tablename__ = "city"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)


class District(Base):
    __tablename__ = "district"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"), index=True)
    demonstration_zone: Mapped[bool] = mapped_column(Boolean, default=False)


class Authority(Base):
    """A department that matters are assigned to, at provincial or city level."""

    __tablename__ = "authority"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(40), index=True)
    level: Mapped[str] = mapped_column(String(10))  # province | city
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)
    city_code: Mapped[str | None] = mapped_column(ForeignKey("city.code"), index=True)

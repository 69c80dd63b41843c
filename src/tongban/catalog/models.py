from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tongban.db import Base, new_id


class Matter(Base):
    """One standard definition of a service matter, shared by every jurisdiction."""

    __tablename__ = "matter"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    #: Who applies: 个人 (resident) or 法人 (enterprise) or both.
    subjects: Mapped[list[str]] = mapped_column(JSON, default=list)
    category: Mapped[str] = mapped_column(String(40))
    authority_type: Mapped[str] = mapped_column(String(40), index=True)
    #: province | city: the level whose authority is competent.
    authority_level: Mapped[str] = mapped_column(String(10), default="city")
    #: Handling modes allowed: online (全程网办), proxy (异地代收代办), joint (多地联办).
    modes: Mapped[list[str]] = mapped_column(JSON, default=list)
    time_limit_days: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    #: JSON Schema (draft 2020-12) of the application form.
    form_schema: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Licence type the delivered result is (for issue 3), if any.
    result_licence_type: Mapped[str | None] = mapped_column(String(40))
    #: For 多地联办: authority types of the other jurisdictions that take part.
    joint_authority_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    materials: Mapped[list[MatterMaterial]] = relationship(
        back_populates="matter", order_by="MatterMaterial.seq", cascade="all, delete-orphan"
    )


class MatterMaterial(Base):
    __tablename__ = "matter_material"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    matter_code: Mapped[str] = mapped_column(ForeignKey("matter.code"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The e-licence type that can stand in for this material (免提交), if any.
    licence_type: Mapped[str | None] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text, default="")

    matter: Mapped[Matter] = relationship(back_populates="materials")


class MatterImplementation(Base):
    """How one jurisdiction implements a standard matter (its own time limit, or not at all)."""

    __tablename__ = "matter_implementation"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    matter_code: Mapped[str] = mapped_column(ForeignKey("matter.code"), index=True)
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)
    time_limit_days: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)

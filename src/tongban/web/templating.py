"""Jinja2 environment shared by every context's pages."""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path

from fastapi.templating import Jinja2Templates

from tongban.identity.domain import ROLE_LABELS, Role, mask_id_number
from tongban.kernel.registry import Registry
from tongban.localtime import local_dt


def fmt_date(value: date | None) -> str:
    return value.strftime("%Y-%m-%d") if value else ""


def role_label(role: str) -> str:
    try:
        return ROLE_LABELS[Role(role)]
    except ValueError:
        return role


def make_templates(registry: Registry, federation_name: str = "") -> Jinja2Templates:
    """The shared layout (web/templates) first, then every context's templates."""
    root = Path(str(resources.files("tongban")))
    dirs = [root / "web" / "templates", *registry.template_dirs()]
    # Each context's processors add names every page may use (the header's counts).
    templates = Jinja2Templates(directory=dirs, context_processors=registry.template_context())
    env = templates.env
    env.filters["local_dt"] = local_dt
    env.filters["fmt_date"] = fmt_date
    env.filters["mask_id"] = mask_id_number
    env.filters["role_label"] = role_label
    env.globals["federation_name"] = federation_name
    return templates

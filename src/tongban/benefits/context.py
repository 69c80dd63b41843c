"""The benefits context as the registry sees it (a skeleton until its work fills it in)."""

from tongban.kernel.registry import Context

CONTEXT = Context(name="benefits")

"""Fixtures of the licence-format tests (defined in tests/licence_kit.py)."""

from licence_kit import ed_fed, fed

__all__ = ["ed_fed", "fed"]

"""The suite's Hypothesis profile (tests/conftest.py): no deadline, no too_slow health
check, derandomized under `make test`."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def test_the_suite_runs_without_deadlines_or_the_too_slow_check() -> None:
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check


def test_the_ci_profile_is_reproducible() -> None:
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.deadline is None

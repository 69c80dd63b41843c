"""The custom import-linter contracts of scripts/lint_contracts.py (run by `make lint`
and scripts/test.sh): each is kept by a graph that follows the rule and broken by one
import that does not."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import grimp


def _contracts() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "lint_contracts.py"
    spec = importlib.util.spec_from_file_location("lint_contracts", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONTRACTS = _contracts()


def graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    g = grimp.ImportGraph()
    for m in (
        "t",
        "t.cases",
        "t.cases.models",
        "t.cases.service",
        "t.cases.events",
        "t.tickets",
        "t.tickets.service",
        "t.tickets.service.intake",
        "t.tickets.views",
        "t.app",
    ):
        g.add_module(m)
    for importer, imported in imports:
        g.add_import(importer=importer, imported=imported, line_number=1, line_contents="")
    return g


def public_modules(**options: Any) -> Any:
    return CONTRACTS.PublicModulesContract(
        name="public",
        session_options={"root_packages": ["t"]},
        contract_options={"contexts": ["t.cases", "t.tickets"], **options},
    )


def test_a_context_may_use_another_through_its_service_only() -> None:
    kept = graph(
        ("t.tickets.service.intake", "t.cases.service"),
        ("t.tickets.views", "t.tickets.service.intake"),  # inside its own context
        ("t.cases.service", "t.cases.models"),
        ("t.app", "t.cases.models"),  # a composition root
    )
    contract = public_modules(allowed_importers=["t.app"])
    assert contract.check(kept, verbose=False).kept

    broken = graph(("t.tickets.service.intake", "t.cases.models"))
    check = contract.check(broken, verbose=False)
    assert not check.kept
    assert [(x["importer"], x["imported"]) for x in check.metadata["links"]] == [
        ("t.tickets.service.intake", "t.cases.models")
    ]


def test_a_declared_public_module_may_be_imported() -> None:
    g = graph(("t.tickets.views", "t.cases.events"))
    assert not public_modules().check(g, verbose=False).kept
    assert public_modules(public=["cases: events"]).check(g, verbose=False).kept


def test_a_cycle_between_contexts_breaks_the_acyclic_contract() -> None:
    contract = CONTRACTS.AcyclicContextsContract(
        name="acyclic",
        session_options={"root_packages": ["t"]},
        contract_options={"contexts": ["t.cases", "t.tickets"]},
    )
    one_way = graph(("t.tickets.service.intake", "t.cases.service"))
    assert contract.check(one_way, verbose=False).kept
    both = graph(
        ("t.tickets.service.intake", "t.cases.service"),
        ("t.cases.service", "t.tickets.service"),
    )
    check = contract.check(both, verbose=False)
    assert not check.kept
    assert check.metadata["cycles"] == [["t.cases", "t.tickets", "t.cases"]]

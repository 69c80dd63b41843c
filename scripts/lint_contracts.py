"""A custom import-linter contract for tongban (configured in pyproject.toml).

``public_modules``: each of ``contexts`` is a package whose insides are its own. A
module outside a context may import only the context's public modules — by default its
package itself and its ``service`` (a module or a package such as tickets' service/) —
plus what ``public`` names per context (``cases: events``). Modules of a context import
each other freely. ``allowed_importers`` (the composition roots: the registry of
contexts, the CLI, the app factory, the demo, the migrations) may import anything.

import-linter's built-in ``protected`` contract needs every private module listed, so a
new ``models.py`` would be unprotected until someone remembered to add it; here the
rule is stated once, the other way round.
"""

from __future__ import annotations

from typing import Any, cast

import grimp
from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils


class PublicModulesContract(Contract):
    type_name = "public_modules"

    contexts = fields.ListField(subfield=fields.StringField())
    public = fields.ListField(subfield=fields.StringField(), required=False)
    allowed_importers = fields.ListField(subfield=fields.StringField(), required=False)
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)

    def _public_names(self) -> dict[str, set[str]]:
        names: dict[str, set[str]] = {}
        for item in cast(list[str], self.public or []):
            ctx, _, mods = str(item).partition(":")
            names.setdefault(ctx.strip(), set()).update(m.strip() for m in mods.split(",") if m)
        return names

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=contract_utils.AlertLevel.ERROR,
        )
        public = self._public_names()
        roots = [str(r) for r in cast(list[str], self.allowed_importers or [])]

        def is_root(module: str) -> bool:
            return any(module == r or module.startswith(r + ".") for r in roots)

        links: list[dict[str, Any]] = []
        for ctx in self.contexts:  # type: ignore[attr-defined]
            package = str(ctx)
            ctx_name = package.rsplit(".", 1)[-1]
            allowed_subs = {"service"} | public.get(ctx_name, set())
            for module in sorted(graph.find_descendants(package)):
                sub = module[len(package) + 1 :].split(".", 1)[0]
                if sub in allowed_subs:
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(module)):
                    if importer == package or importer.startswith(package + "."):
                        continue
                    if is_root(importer):
                        continue
                    details = graph.get_import_details(importer=importer, imported=module)
                    links.append(
                        {
                            "importer": importer,
                            "imported": module,
                            "line_numbers": tuple(d["line_number"] for d in details),
                        }
                    )
        return ContractCheck(
            kept=not links,
            warnings=list(removal.warnings),
            metadata={"links": links},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error("Imports of a context's private modules from outside it:", bold=False)
        output.new_line()
        for link in check.metadata["links"]:
            lines = ", ".join(map(str, link["line_numbers"]))
            output.print_error(f"- {link['importer']} -> {link['imported']} (l.{lines})")
        output.new_line()


class AcyclicContextsContract(Contract):
    """``acyclic_contexts``: no cycle of direct imports between the listed packages (a
    module of A importing one of B is an edge A -> B). import-linter's own
    ``acyclic_siblings`` looks at every sibling of a package, framework layers included
    (web and identity need each other: the signed-in account and the sign-in pages);
    this looks only at the contexts named."""

    type_name = "acyclic_contexts"

    contexts = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        packages = [str(c) for c in self.contexts]  # type: ignore[attr-defined]
        edges: dict[str, dict[str, tuple[str, str]]] = {p: {} for p in packages}
        for a in packages:
            for module in graph.find_descendants(a) | {a}:
                for imported in graph.find_modules_directly_imported_by(module):
                    for b in packages:
                        if b != a and (imported == b or imported.startswith(b + ".")):
                            edges[a].setdefault(b, (module, imported))
        cycles: list[list[str]] = []
        seen: set[frozenset[str]] = set()

        def walk(path: list[str]) -> None:
            for nxt in sorted(edges[path[-1]]):
                if nxt == path[0]:
                    key = frozenset(path)
                    if key not in seen:
                        seen.add(key)
                        cycles.append([*path, nxt])
                elif nxt not in path and nxt > path[0]:
                    walk([*path, nxt])

        for start in sorted(packages):
            walk([start])
        example = {
            f"{a} -> {b}": f"{m} -> {i}" for a, bs in edges.items() for b, (m, i) in bs.items()
        }
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles, "example": example})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error("Cycle: " + " -> ".join(cycle), bold=False)
            for a, b in zip(cycle, cycle[1:], strict=False):
                output.print_error(f"    {check.metadata['example'][f'{a} -> {b}']}")
            output.new_line()

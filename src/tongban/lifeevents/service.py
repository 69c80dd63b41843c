"""Use cases of life-event bundles (一件事), as pages, the API and other contexts call them.
Services take a Session and never commit. The work is done beside this module:

- catalogue.py — the bundles this node offers, what they need of the catalogue, the
  applicant's e-licences a bundle may use;
- submission.py — one submission, checked whole, recorded and started;
- progress.py — steps starting as cases (through `tongban.cases.service`, for the
  applicant) when their inputs arrive, blocked when they can no longer start, and the
  bundle following its cases through `kernel.events.CaseStepTaken`.

Here: the applicant's bundles and what their pages show of each step.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases import service as cases
from tongban.errors import NotFound
from tongban.identity.models import Account
from tongban.lifeevents import domain
from tongban.lifeevents.catalogue import check_definitions as check_definitions
from tongban.lifeevents.catalogue import definitions as definitions
from tongban.lifeevents.catalogue import get_definition as get_definition
from tongban.lifeevents.catalogue import matter_info as matter_info
from tongban.lifeevents.domain import StepState
from tongban.lifeevents.models import Bundle, BundleStep
from tongban.lifeevents.progress import advance as advance
from tongban.lifeevents.progress import case_moved as case_moved
from tongban.lifeevents.progress import follow_case as follow_case
from tongban.lifeevents.submission import BundleApplication as BundleApplication
from tongban.lifeevents.submission import MaterialRow as MaterialRow
from tongban.lifeevents.submission import material_overview as material_overview
from tongban.lifeevents.submission import submit as submit

# --- reading ------------------------------------------------------------------------------


def get_bundle(session: Session, actor: Account, bundle_id: uuid.UUID) -> Bundle:
    """The applicant's own bundle; anybody else's is 'not found'."""
    bundle = session.get(Bundle, bundle_id)
    if bundle is None or bundle.applicant_id != actor.id:
        raise NotFound("“一件事”不存在或无权查看", type="unknown-bundle")
    return bundle


def list_mine(session: Session, actor: Account) -> list[Bundle]:
    """The applicant's bundles, newest first."""
    stmt = (
        select(Bundle)
        .where(Bundle.applicant_id == actor.id)
        .order_by(Bundle.submitted_at.desc(), Bundle.number.desc())
    )
    return list(session.scalars(stmt))


# --- what the resident sees --------------------------------------------------------------------


@dataclass(frozen=True)
class StepView:
    """A step as its pages and the API show it: with its case, what it still waits for
    and what its failure blocks."""

    row: BundleStep
    state_label: str
    waits_on: list[str]
    blocks: list[str]
    case: cases.Case | None

    @property
    def case_state_label(self) -> str:
        if self.case is None:
            return ""
        return domain.CASE_STATE_LABELS.get(self.case.state, self.case.state)


def describe(session: Session, bundle: Bundle) -> list[StepView]:
    """The bundle's steps in order, each with its case (this node's copy) and its waits."""
    defn = get_definition(bundle.bundle_code)
    rows = {s.key: s for s in bundle.steps}
    states = {k: StepState(r.state) for k, r in rows.items()}
    out = []
    for row in bundle.steps:
        state = StepState(row.state)
        waits = domain.unmet(defn.nodes, states, row.key) if state is StepState.WAITING else []
        blocks: list[str] = []
        if state in domain.STEP_STOPPED:
            blocks = [
                k for k in domain.dependants(defn.nodes, row.key) if states[k] is StepState.BLOCKED
            ]
        case = cases.case_by_id(session, row.case_id) if row.case_id else None
        out.append(
            StepView(
                row=row,
                state_label=domain.STEP_LABELS[state],
                waits_on=[rows[k].title for k in waits],
                blocks=[rows[k].title for k in blocks],
                case=case,
            )
        )
    return out

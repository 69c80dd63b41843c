"""The rules of a bundle once submitted: its state machine, the graph of its steps (a step
never starts before its inputs; a failure blocks what waits for it), what a case means for
its step. No database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tongban.lifeevents import domain
from tongban.lifeevents.domain import (
    BundleAction,
    BundleState,
    IllegalTransition,
    Node,
    StepState,
    Who,
)

W, S, D, F, B, K = (
    StepState.WAITING,
    StepState.STARTED,
    StepState.DONE,
    StepState.FAILED,
    StepState.BLOCKED,
    StepState.SKIPPED,
)

#: 新生儿出生: 出生医学证明 → 户口登记 → 医保参保 → 社会保障卡; 出生医学证明 → 预防接种.
NEWBORN = [
    Node("birth"),
    Node("hukou", ("birth",)),
    Node("medical", ("hukou",)),
    Node("card", ("medical",)),
    Node("vaccination", ("birth",)),
]


def states(**kw: StepState) -> dict[str, StepState]:
    out = {n.key: W for n in NEWBORN}
    out.update(kw)
    return out


def test_only_the_steps_whose_inputs_are_done_are_ready():
    assert domain.ready(NEWBORN, states()) == ["birth"]
    assert domain.ready(NEWBORN, states(birth=S)) == []
    assert domain.ready(NEWBORN, states(birth=D)) == ["hukou", "vaccination"]
    assert domain.ready(NEWBORN, states(birth=D, hukou=D, vaccination=S)) == ["medical"]


def test_a_skipped_step_lets_the_steps_after_it_go_on():
    nodes = [Node("transfer"), Node("claim", ("transfer",)), Node("fund", ("claim",))]
    st_ = {"transfer": K, "claim": W, "fund": W}
    assert domain.ready(nodes, st_) == ["claim"]


def test_a_skipped_step_passes_its_own_inputs_on():
    """出生 → 落户 (not asked for) → 医保: 医保 still waits for 出生, and a failure of
    出生 blocks it through the skipped step."""
    nodes = [Node("birth"), Node("hukou", ("birth",)), Node("medical", ("hukou",))]
    assert domain.ready(nodes, {"birth": S, "hukou": K, "medical": W}) == []
    assert domain.ready(nodes, {"birth": D, "hukou": K, "medical": W}) == ["medical"]
    assert domain.doomed(nodes, {"birth": F, "hukou": K, "medical": W}) == {"medical": ["birth"]}


def test_a_failure_blocks_everything_after_it_and_says_why():
    doomed = domain.doomed(NEWBORN, states(birth=D, hukou=F, vaccination=S))
    assert doomed == {"medical": ["hukou"], "card": ["hukou"]}
    assert domain.dependants(NEWBORN, "hukou") == ["medical", "card"]
    assert domain.dependants(NEWBORN, "birth") == ["hukou", "medical", "card", "vaccination"]
    # A step blocked for another reason (it could not be submitted) stops its followers too.
    assert domain.doomed(NEWBORN, states(birth=D, hukou=D, medical=B)) == {"card": ["medical"]}


def test_what_a_waiting_step_still_waits_for():
    assert domain.unmet(NEWBORN, states(birth=D, hukou=D), "card") == ["medical"]
    nodes = [Node("a"), Node("b"), Node("x", ("a", "b"))]
    assert domain.unmet(nodes, {"a": K, "b": S, "x": W}, "x") == ["b"]


def test_order_puts_every_step_after_its_inputs_and_refuses_cycles():
    shuffled = [NEWBORN[3], NEWBORN[4], NEWBORN[1], NEWBORN[0], NEWBORN[2]]
    placed = domain.order(shuffled)
    for n in NEWBORN:
        assert all(placed.index(a) < placed.index(n.key) for a in n.after)
    with pytest.raises(ValueError, match="cycle"):
        domain.order([Node("a", ("b",)), Node("b", ("a",))])
    with pytest.raises(ValueError, match="unknown"):
        domain.order([Node("a", ("nope",))])


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([W, S, D], BundleState.IN_PROGRESS),
        ([D, D, K], BundleState.COMPLETED),
        ([D, F, S], BundleState.BLOCKED),
        ([D, B, D], BundleState.BLOCKED),
    ],
)
def test_overall_state_of_a_bundle(steps, expected):
    assert domain.overall(steps) is expected


def test_a_case_completes_its_step_only_when_its_approved_result_is_delivered():
    assert domain.step_outcome("submitted", False) is S
    assert domain.step_outcome("approved", True) is S  # the licence comes with delivery
    assert domain.step_outcome("result_issued", True) is S
    assert domain.step_outcome("delivered", True) is D
    assert domain.step_outcome("rated", True) is D
    assert domain.step_outcome("refused", False) is F
    assert domain.step_outcome("denied", True) is F
    assert domain.step_outcome("delivered", False) is F  # a denial, delivered


def test_the_bundle_machine_never_reopens_a_completed_bundle():
    m = domain.MACHINE
    assert m.next_state(BundleState.SUBMITTED, BundleAction.PROGRESS, Who.SYSTEM) is (
        BundleState.IN_PROGRESS
    )
    assert domain.move_to(BundleState.IN_PROGRESS, BundleState.BLOCKED) is BundleAction.BLOCK
    assert domain.move_to(BundleState.BLOCKED, BundleState.BLOCKED) is None
    with pytest.raises(IllegalTransition):
        domain.move_to(BundleState.BLOCKED, BundleState.COMPLETED)
    with pytest.raises(IllegalTransition):
        m.next_state(BundleState.COMPLETED, BundleAction.STEP_STARTED, Who.SYSTEM)
    with pytest.raises(IllegalTransition):  # only the platform moves a bundle
        m.next_state(BundleState.IN_PROGRESS, BundleAction.COMPLETE, Who.APPLICANT)
    # Step events leave the bundle where it is.
    for s in (BundleState.SUBMITTED, BundleState.IN_PROGRESS, BundleState.BLOCKED):
        assert m.next_state(s, BundleAction.STEP_DONE, Who.SYSTEM) is s


def test_bundle_numbers():
    assert domain.bundle_number("340100", "20261201", 7) == "YJS34010020261201000007"


# --- the property: a step never runs before its inputs ------------------------------------


@st.composite
def graphs(draw: st.DrawFn) -> list[Node]:
    """A random acyclic bundle: each step waits for some of the steps declared before it,
    then the declaration order is shuffled."""
    n = draw(st.integers(min_value=1, max_value=8))
    nodes = []
    for i in range(n):
        after = draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=3)) if i else set()
        nodes.append(Node(f"s{i}", tuple(f"s{a}" for a in sorted(after))))
    return draw(st.permutations(nodes))


@given(graphs(), st.data())
def test_property_a_step_never_starts_before_its_inputs_and_every_run_ends(
    nodes: list[Node], data: st.DataObject
) -> None:
    """Drive a bundle the way the service does, with cases ending at random (done or
    failed, in any order, some steps not asked for): whenever a step starts, every step it
    waits for, directly or not, is done or was not asked for; in the end nothing waits or
    runs, every step after a failure is blocked, and the overall state says so."""
    by_key = {n.key: n for n in nodes}
    st_ = {n.key: W for n in nodes}
    for n in nodes:  # the applicant may leave steps out (`when` not ticked)
        if data.draw(st.booleans(), label=f"skip {n.key}") and data.draw(st.booleans()):
            st_[n.key] = K

    def ancestors(key: str) -> set[str]:
        found: set[str] = set()
        todo = list(by_key[key].after)
        while todo:
            k = todo.pop()
            if k not in found:
                found.add(k)
                todo += by_key[k].after
        return found

    for _ in range(4 * len(nodes) + 2):
        for key in domain.doomed(nodes, st_):
            st_[key] = B
        for key in domain.ready(nodes, st_):
            assert all(st_[a] in domain.STEP_SATISFIED for a in ancestors(key)), key
            st_[key] = S
        running = [k for k, s in st_.items() if s is S]
        if not running:
            break
        key = data.draw(st.sampled_from(sorted(running)), label="case ends")
        st_[key] = data.draw(st.sampled_from([D, F]), label=f"{key} outcome")
    assert not domain.is_open(st_.values())
    for n in nodes:
        if st_[n.key] is B:
            assert any(st_[a] in domain.STEP_STOPPED for a in ancestors(n.key))
        if st_[n.key] is D:
            assert all(st_[a] in domain.STEP_SATISFIED for a in ancestors(n.key))
    failed = any(s in domain.STEP_STOPPED for s in st_.values())
    assert domain.overall(st_.values()) is (
        BundleState.BLOCKED if failed else BundleState.COMPLETED
    )

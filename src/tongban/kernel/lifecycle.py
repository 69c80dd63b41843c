"""One state machine for every record with a lifecycle. Pure Python: no database, no web.

A context declares its states, actions and who may take each action once, in its
``domain.py``; services ask the machine where a record goes::

    class State(StrEnum):
        OPEN = "open"
        CLOSED = "closed"

    class Action(StrEnum):
        CLOSE = "close"

    class Who(StrEnum):
        OFFICER = "officer"

    MACHINE = StateMachine(
        State,
        Action,
        transitions={(State.OPEN, Action.CLOSE): (State.CLOSED, {Who.OFFICER})},
        guards={Action.CLOSE: [lambda facts: None if facts.get("reason") else "请说明理由"]},
        state_labels={State.OPEN: "办理中", State.CLOSED: "已办结"},
        action_labels={Action.CLOSE: "办结"},
        noun="工单",
    )

    MACHINE.next_state(State.OPEN, Action.CLOSE, Who.OFFICER, {"reason": "已处理"})
    # -> State.CLOSED; an illegal step raises IllegalTransition (a 409 problem+json)
    MACHINE.allowed_actions(State.OPEN, Who.OFFICER)  # -> [Action.CLOSE]

A transition's value is the target state (anyone may take it) or ``(target, who)``;
``who`` may also be given per action (``who={Action.CLOSE: {...}}``), a transition's
own set winning.

Guards carry the rules that depend on the request's facts rather than on state and
actor (a reason is given, every sub-task is decided, evidence is attached …). A guard
is a callable taking the caller's ``facts`` (any object; a context usually passes a
small frozen dataclass) and returning None to allow the step, or a refusal:

* a Chinese sentence: the step is refused as ``IllegalTransition`` (409
  ``illegal-transition``, ``why == "guard"``);
* a typed failure (a ``DomainError``, e.g. ``ValidationFailed`` naming the input, or a
  ``Conflict`` of its own type): raised as it is, so a missing reason stays a 422 with
  its field and a rule with a stable problem type keeps it.

Guards run only once state and actor are allowed, in their declared order; the first
refusal wins. ``allowed_actions`` and ``can`` do not consult them (they need the facts
of one request).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, Literal, TypeVar

from tongban.errors import Conflict, DomainError, FieldError, ValidationFailed

S = TypeVar("S", bound=Enum)
A = TypeVar("A", bound=Enum)

#: A guard: takes the caller's facts, returns None to allow, or a refusal: a Chinese
#: sentence (an IllegalTransition) or a typed failure raised as it is.
Guard = Callable[[Any], str | DomainError | None]

#: Why a step was refused: the state does not allow it, the actor may not take it, or
#: a guard said no.
Refusal = Literal["state", "actor", "guard"]


class IllegalTransition(Conflict):
    """An action that the state machine does not allow; `detail` says why, in Chinese.

    A Conflict, so a service may let it propagate: the web layer renders it as a 409
    problem+json of type ``illegal-transition``."""

    type = "illegal-transition"

    def __init__(self, state: Any, action: Any, detail: str, why: Refusal = "state") -> None:
        super().__init__(detail)
        self.state = state
        self.action = action
        self.why = why


@dataclass(frozen=True)
class Rule(Generic[S]):
    """One transition: where it goes and who may take it (None: anyone)."""

    target: S
    who: frozenset[Hashable] | None


class StateMachine(Generic[S, A]):
    """States `S`, actions `A`, the transitions between them, who may take each action
    and the guards that must allow it. Immutable once built."""

    def __init__(
        self,
        states: type[S],
        actions: type[A],
        transitions: Mapping[tuple[S, A], S | tuple[S, Iterable[Hashable]]],
        *,
        who: Mapping[A, Iterable[Hashable]] | None = None,
        guards: Mapping[A, Sequence[Guard]] | None = None,
        state_labels: Mapping[S, str] | None = None,
        action_labels: Mapping[A, str] | None = None,
        noun: str = "记录",
    ) -> None:
        self.states = states
        self.actions = actions
        per_action = {a: frozenset(w) for a, w in (who or {}).items()}
        rules: dict[tuple[S, A], Rule[S]] = {}
        for (state, action), value in transitions.items():
            if not isinstance(state, states) or not isinstance(action, actions):
                raise TypeError(f"transition {(state, action)!r} is not ({states}, {actions})")
            if isinstance(value, tuple):
                target, allowed = value
                rules[(state, action)] = Rule(target, frozenset(allowed))
            else:
                rules[(state, action)] = Rule(value, per_action.get(action))
        self.rules: Mapping[tuple[S, A], Rule[S]] = rules
        self.guards: Mapping[A, tuple[Guard, ...]] = {
            a: tuple(g) for a, g in (guards or {}).items()
        }
        self.state_labels: Mapping[S, str] = dict(state_labels or {})
        self.action_labels: Mapping[A, str] = dict(action_labels or {})
        self.noun = noun

    def state_label(self, state: S) -> str:
        return self.state_labels.get(state, str(state.value))

    def action_label(self, action: A) -> str:
        return self.action_labels.get(action, str(action.value))

    def rule(self, state: S, action: A) -> Rule[S] | None:
        """The transition of `action` from `state`, if there is one."""
        return self.rules.get((state, action))

    def next_state(self, state: S, action: A, actor: Hashable = None, facts: Any = None) -> S:
        """Where a record in `state` goes when `actor` takes `action`; raises
        IllegalTransition (state not allowing it, actor not entitled, or a guard's refusal
        in words), or the typed failure a guard returned."""
        rule = self.rules.get((state, action))
        if rule is None:
            raise IllegalTransition(
                state,
                action,
                f"{self.noun}当前状态为“{self.state_label(state)}”，"
                f"不能执行“{self.action_label(action)}”",
            )
        if rule.who is not None and actor not in rule.who:
            raise IllegalTransition(
                state, action, f"“{self.action_label(action)}”须由有权限的人员执行", "actor"
            )
        for guard in self.guards.get(action, ()):
            refusal = guard(facts)
            if isinstance(refusal, DomainError):
                raise refusal
            if refusal:
                raise IllegalTransition(state, action, refusal, "guard")
        return rule.target

    def can(self, state: S, action: A, actor: Hashable = None) -> bool:
        """Whether state and actor allow `action` (guards are not consulted)."""
        rule = self.rules.get((state, action))
        return rule is not None and (rule.who is None or actor in rule.who)

    def allowed_actions(self, state: S, actor: Hashable = None) -> list[A]:
        """The actions `actor` may take in `state`, in declaration order (guards are not
        consulted: they need the facts of one request)."""
        return [a for (s, a) in self.rules if s == state and self.can(s, a, actor)]

    def targets(self) -> dict[tuple[S, A], S]:
        """(state, action) -> target, for documentation and checks."""
        return {k: r.target for k, r in self.rules.items()}


def reason_required(action_label: str, field: str = "comment") -> Guard:
    """A guard every context uses the same way: the step's facts carry a reason
    (``facts.<field>``, not blank), else a 422 naming that field."""

    def guard(facts: Any) -> DomainError | None:
        if str(getattr(facts, field, "") or "").strip():
            return None
        return ValidationFailed(
            f"“{action_label}”须说明理由", errors=[FieldError(field, "请填写理由")]
        )

    return guard

"""Hand-overs between two `tongban serve --node …` processes (made by `tongban exchange
init-local` with the demo data: node-310000 serves 上海 and 浙江, node-320000 江苏 and
安徽) while nodes are killed (SIGKILL) at each step of the protocol. 上海 hands a close
contact over to 合肥.

Throughout, a poller asks both nodes' APIs about the hand-over (the receiver first, then
the sender, so that a receiver seen acting was seen before the sender was asked) and
the test checks that no moment shows two owners or none:

- the sender's node (the authority) always names exactly one owner, the sender's
  jurisdiction until it names the receiver's, and never goes back;
- the two nodes never both say their staff may act;
- the receiver's node may act only once the sender's node has stopped naming itself;
- every node that answers names an owner.

After every restart both nodes agree: one state, one owner, one node that may act, the
acceptance recorded once, no message dead."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from nodes import FAST_RETRIES, PeerNode, federation, wait_until
from tongban.devserver import ServerFailed

TIMEOUT = 60.0
RESTART_TIMEOUT = 180.0
SENDER_J, RECEIVER_J = "310000", "340000"
SENDER_WHO, RECEIVER_WHO = "emergency-310000", "emergency-340100"
PERSON = {
    "name": "李密接",
    "id_number": "310101199001011234",
    "phone": "13800000000",
    "exposure_date": "2026-11-27",
    "destination_address": "合肥市蜀山区长江西路 1 号",
}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PeerNode]]:
    root = tmp_path_factory.mktemp("emergency-handover")
    with federation(root, 2, port_start=24700, port_step=37, env=FAST_RETRIES) as procs:
        assert sorted(procs) == ["310000", "320000"]
        yield procs


def _headers(http: httpx.Client, node: PeerNode, who: str) -> dict[str, str]:
    return node.token(http, who)


def _view(
    http: httpx.Client, node: PeerNode, who: str, hid: str, timeout: float = 2.0
) -> dict[str, Any] | None:
    """The hand-over as `node` answers it; None when the node is down (or too slow to
    answer within `timeout`) or holds none."""
    try:
        r = http.get(
            f"{node.url}/api/v1/emergency/handovers/{hid}",
            headers=_headers(http, node, who),
            timeout=timeout,
        )
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


@dataclass
class Poller:
    """Samples both nodes until stopped; keeps every round."""

    sender: PeerNode
    receiver: PeerNode
    hid: str
    rounds: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client() as http:
            for node, who in ((self.sender, SENDER_WHO), (self.receiver, RECEIVER_WHO)):
                with contextlib.suppress(AssertionError, httpx.HTTPError):
                    node.token(http, who)
            while not self.stop.is_set():
                got_r = _view(http, self.receiver, RECEIVER_WHO, self.hid)
                got_s = _view(http, self.sender, SENDER_WHO, self.hid)
                self.rounds.append((got_s, got_r))
                time.sleep(0.05)

    def check(self) -> None:
        """No round shows two owners or none (see the module's docstring)."""
        owners_seen: list[str] = []
        for got_s, got_r in self.rounds:
            for got in (got_s, got_r):
                if got is not None:
                    assert got["owner_jurisdiction"] in (SENDER_J, RECEIVER_J), got
            if got_s is not None:
                assert got_s["authoritative"] is True
                owners_seen.append(got_s["owner_jurisdiction"])
                assert got_s["may_act"] == (got_s["owner_jurisdiction"] == SENDER_J), got_s
            if got_r is not None:
                assert got_r["authoritative"] is False
                assert got_r["may_act"] == (got_r["owner_jurisdiction"] == RECEIVER_J), got_r
                if got_r["may_act"]:
                    assert got_r["state"] == "transferred"
            assert not (got_s and got_r and got_s["may_act"] and got_r["may_act"]), (got_s, got_r)
            if got_r is not None and got_r["may_act"] and got_s is not None:
                assert got_s["owner_jurisdiction"] == RECEIVER_J
        # The authority names the sender, then (perhaps) the receiver, and never goes back.
        changes = [o for i, o in enumerate(owners_seen) if i == 0 or owners_seen[i - 1] != o]
        assert changes in ([SENDER_J], [SENDER_J, RECEIVER_J], [RECEIVER_J]), changes


def _offer(http: httpx.Client, sender: PeerNode, note: str) -> dict[str, Any]:
    r = http.post(
        f"{sender.url}/api/v1/emergency/handovers",
        headers=_headers(http, sender, SENDER_WHO),
        json={
            "sender_city": "310000",
            "receiver_city": "340100",
            "purpose": "close_contact",
            "reason": f"密接人员前往合肥（{note}）",
            "subject": PERSON,
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["owner_jurisdiction"] == SENDER_J and body["may_act"] is True
    return dict(body)


def _answer(http: httpx.Client, receiver: PeerNode, hid: str, accept: bool = True) -> None:
    r = http.post(
        f"{receiver.url}/api/v1/emergency/handovers/{hid}/answer",
        headers=_headers(http, receiver, RECEIVER_WHO),
        json={"accept": accept, "note": "" if accept else "不在本市"},
    )
    assert r.status_code == 202, r.text
    assert r.json()["may_act"] is False  # answered, not yet owner


def _restart(node: PeerNode) -> None:
    node.start()
    try:  # a busy machine (two cores, other suites) can make a restart slow
        node.server.wait_ready(timeout=RESTART_TIMEOUT)
    except ServerFailed as e:
        pytest.fail(str(e))


def _kill(node: PeerNode) -> None:
    node.stop(signal.SIGKILL)
    assert node.proc is not None and node.proc.returncode == -9


def _settled(
    http: httpx.Client, sender: PeerNode, receiver: PeerNode, hid: str, state: str
) -> Callable[[], bool]:
    def probe() -> bool:
        s = _view(http, sender, SENDER_WHO, hid)
        r = _view(http, receiver, RECEIVER_WHO, hid)
        return bool(s and r and s["state"] == state and r["state"] == state)

    return probe


def _final(nodes: dict[str, PeerNode], number: str, state: str) -> None:
    """Both databases: one row each, the same state and owner, each event once."""
    owner = RECEIVER_J if state == "transferred" else SENDER_J
    for node in nodes.values():
        rows = node.sql(
            "SELECT state, owner_jurisdiction FROM emergency_handover WHERE number = :n",
            n=number,
        )
        accepts = node.sql(
            "SELECT count(*) FROM emergency_handover_event e JOIN emergency_handover h "
            "ON h.id = e.handover_id WHERE h.number = :n AND e.action = 'accept'",
            n=number,
        )
        assert accepts == [(1 if state == "transferred" else 0,)], (node.node_id, accepts)
        assert [tuple(r) for r in rows] == [(state, owner)], (node.node_id, rows)
        dead = node.sql("SELECT type, last_error FROM outbox_message WHERE status = 'dead'")
        assert dead == [], dead


def _scenario(
    nodes: dict[str, PeerNode],
    name: str,
    steps: Callable[[httpx.Client, PeerNode, PeerNode, str], str],
) -> None:
    sender, receiver = nodes[SENDER_J], nodes["320000"]
    with httpx.Client(timeout=30) as http:
        offered = _offer(http, sender, name)
        hid, number = offered["id"], offered["number"]
        poller = Poller(sender, receiver, hid)
        thread = threading.Thread(target=poller.run, daemon=True)
        thread.start()
        try:
            state = steps(http, sender, receiver, hid)
            wait_until(
                f"{name}: both nodes {state}",
                _settled(http, sender, receiver, hid, state),
                TIMEOUT,
                lambda: sender.server.log_tail() + receiver.server.log_tail(),
            )
            # A few more rounds in the settled state (counted, not timed: a loaded
            # machine answers each round slowly), and enough rounds in all.
            settled = len(poller.rounds)
            wait_until(
                f"{name}: more rounds sampled",
                lambda: len(poller.rounds) >= max(settled + 3, 11),
                TIMEOUT,
            )
        finally:
            poller.stop.set()
            thread.join(timeout=10)
        poller.check()
        assert len(poller.rounds) > 10
        s = _view(http, sender, SENDER_WHO, hid, timeout=30.0)
        r = _view(http, receiver, RECEIVER_WHO, hid, timeout=30.0)
        assert s is not None and r is not None
        assert [e["seq"] for e in s["events"]] == [e["seq"] for e in r["events"]][
            : len(s["events"])
        ]
        assert [e["action"] for e in s["events"]].count("accept") <= 1
        assert s["may_act"] != r["may_act"]  # exactly one node acts
    _final(nodes, number, state)


def _accepted(
    http: httpx.Client, sender: PeerNode, receiver: PeerNode, hid: str, *, committed: bool
) -> None:
    """Once the receiver's node holds the copy, its coordinator accepts; with `committed`,
    until the sender's node has committed the transfer."""
    wait_until("the copy", lambda: _view(http, receiver, RECEIVER_WHO, hid), TIMEOUT)
    _answer(http, receiver, hid)
    if committed:

        def done() -> bool:
            got = _view(http, sender, SENDER_WHO, hid)
            return bool(got and got["state"] == "transferred")

        wait_until("the transfer committed", done, TIMEOUT)


def _bounce(node: PeerNode) -> None:
    """`node` killed, down a second, restarted."""
    _kill(node)
    time.sleep(1.0)
    _restart(node)


def test_receiver_down_at_the_offer(nodes: dict[str, PeerNode]) -> None:
    def steps(http: httpx.Client, sender: PeerNode, receiver: PeerNode, hid: str) -> str:
        _bounce(receiver)  # the offer's delivery fails while it is down
        _accepted(http, sender, receiver, hid, committed=False)
        return "transferred"

    _scenario(nodes, "offer", steps)


def test_sender_killed_right_after_the_answer(nodes: dict[str, PeerNode]) -> None:
    def steps(http: httpx.Client, sender: PeerNode, receiver: PeerNode, hid: str) -> str:
        _accepted(http, sender, receiver, hid, committed=False)
        _bounce(sender)  # the answer may or may not have reached it
        return "transferred"

    _scenario(nodes, "answer-sender", steps)


def test_receiver_killed_right_after_answering(nodes: dict[str, PeerNode]) -> None:
    def steps(http: httpx.Client, sender: PeerNode, receiver: PeerNode, hid: str) -> str:
        _accepted(http, sender, receiver, hid, committed=False)
        _bounce(receiver)  # its answer is in its outbox, delivered or not
        return "transferred"

    _scenario(nodes, "answer-receiver", steps)


def test_sender_killed_when_it_committed_the_transfer(nodes: dict[str, PeerNode]) -> None:
    def steps(http: httpx.Client, sender: PeerNode, receiver: PeerNode, hid: str) -> str:
        _accepted(http, sender, receiver, hid, committed=True)
        _bounce(sender)  # telling the receiver may not have happened
        return "transferred"

    _scenario(nodes, "commit-sender", steps)


def test_receiver_killed_while_being_told(nodes: dict[str, PeerNode]) -> None:
    def steps(http: httpx.Client, sender: PeerNode, receiver: PeerNode, hid: str) -> str:
        _accepted(http, sender, receiver, hid, committed=True)
        _bounce(receiver)
        return "transferred"

    _scenario(nodes, "tell-receiver", steps)


def test_withdrawal_racing_an_acceptance_with_the_receiver_down(
    nodes: dict[str, PeerNode],
) -> None:
    def steps(http: httpx.Client, sender: PeerNode, receiver: PeerNode, hid: str) -> str:
        _accepted(http, sender, receiver, hid, committed=False)
        _kill(receiver)
        r = http.post(
            f"{sender.url}/api/v1/emergency/handovers/{hid}/withdraw",
            headers=_headers(http, sender, SENDER_WHO),
            json={"note": "人员行程取消"},
        )
        # The acceptance arrived first (409: too late to withdraw) or not (withdrawn).
        assert r.status_code in (200, 409), r.text
        _restart(receiver)
        return "withdrawn" if r.status_code == 200 else "transferred"

    _scenario(nodes, "withdraw", steps)

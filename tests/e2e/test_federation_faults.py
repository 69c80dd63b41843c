"""Four nodes as four `tongban serve --node …` processes on 127.0.0.1, one jurisdiction
each, made by `tongban exchange init-local`. A bounded stream of cross-node applications
goes in through the API of different nodes; one competent node is killed with SIGKILL
half-way and restarted. Afterwards every case exists exactly once on its competent node,
no message is dead, and the officers' steps (taken over the API) reach the applicant's
view on the receiving node.

Everything is bounded: 40 cases, fixed timeouts; the processes are stopped at the end."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nodes import FAST_RETRIES, PEOPLE, PeerNode, federation, submit_case, wait_until

CASES = 40
#: Seconds allowed for every outbox to drain after the restart.
DRAIN_TIMEOUT = 60.0
VICTIM = "320000"  # the node killed half-way


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PeerNode]]:
    root = tmp_path_factory.mktemp("federation")
    with federation(root, 4, port_start=21000, port_step=37, env=FAST_RETRIES) as procs:
        assert sorted(procs) == sorted(PEOPLE)
        yield procs


def _submit(http: httpx.Client, node: PeerNode, target: str) -> dict[str, Any]:
    return {**submit_case(http, node, target), "receiving": node.jurisdiction, "competent": target}


def _wait_drained(nodes: dict[str, PeerNode]) -> None:
    def pending() -> list[tuple[str, int]]:
        query = "SELECT count(*) FROM outbox_message WHERE status = 'pending'"
        return [(j, n) for j, p in nodes.items() for (n,) in p.sql(query) if n]

    wait_until("every outbox drained", lambda: not pending(), DRAIN_TIMEOUT, lambda: str(pending()))


def test_four_nodes_survive_a_sigkill_and_lose_nothing(nodes: dict[str, PeerNode]) -> None:
    order = sorted(PEOPLE)
    submitted: list[dict[str, Any]] = []
    with httpx.Client(timeout=30) as http:
        for i in range(CASES):
            if i == CASES // 2:
                nodes[VICTIM].stop(signal.SIGKILL)
                assert nodes[VICTIM].proc is not None and nodes[VICTIM].proc.returncode == -9
            alive = [j for j in order if nodes[j].proc and nodes[j].proc.poll() is None]
            receiving = alive[i % len(alive)]
            # Half of the cases go to the victim's jurisdiction, the rest elsewhere.
            target = VICTIM if i % 2 == 0 and receiving != VICTIM else None
            if target is None:
                others = [j for j in order if j != receiving]
                target = others[i % len(others)]
            submitted.append(_submit(http, nodes[receiving], target))
        assert sum(c["competent"] == VICTIM for c in submitted[CASES // 2 :]) >= 5
        nodes[VICTIM].start()
        nodes[VICTIM].wait_ready()
        _wait_drained(nodes)

        for j, p in nodes.items():
            dead = p.sql("SELECT id, type, last_error FROM outbox_message WHERE status = 'dead'")
            assert dead == [], (j, dead)
        for c in submitted:
            competent = nodes[c["competent"]]
            rows = competent.sql(
                "SELECT handoff, count(*) FROM service_case WHERE number = :n GROUP BY handoff",
                n=c["number"],
            )
            assert rows == [("delivered", 1)], (c["number"], rows)
            mine = nodes[c["receiving"]].sql(
                "SELECT handoff FROM service_case WHERE number = :n", n=c["number"]
            )
            assert mine == [("delivered",)], (c["number"], mine)

        # Officers act on every fourth case on the competent node, over the API.
        acted = submitted[::4]
        for c in acted:
            competent = nodes[c["competent"]]
            officer = competent.token(http, f"{PEOPLE[c['competent']][1]}-housing_fund-reviewer")
            for action in ("accept", "start_review"):
                r = http.post(
                    f"{competent.url}/api/v1/cases/{c['id']}/actions",
                    json={"action": action},
                    headers=officer,
                )
                assert r.status_code == 200, r.text
        _wait_drained(nodes)
        for c in acted:
            receiving = nodes[c["receiving"]]
            username, _ = PEOPLE[c["receiving"]]
            r = http.get(
                f"{receiving.url}/api/v1/cases/{c['id']}", headers=receiving.token(http, username)
            )
            assert r.status_code == 200, r.text
            view = r.json()
            assert view["state"] == "under_review", view
            actions = [e["action"] for e in view["events"]]
            assert actions == ["submit", "forwarded", "accept", "start_review"], actions

"""Mutual aid between two `tongban serve --node …` processes on 127.0.0.1, made by
`tongban exchange init-local` with the demo data (node-310000 serves 上海 and 浙江,
node-320000 江苏 and 安徽): 合肥's coordinator asks 上海 for test kits and protective
suits over node-320000's API; 上海's coordinator commits over node-310000's; node-320000
is killed (SIGKILL) and 上海 ships while it is down; once it is restarted the shipment
reaches it, 合肥 receives it, and the receipt goes back. Afterwards the shipment exists
once on each node and was received exactly once, the commitment is fulfilled and the
request closed on both nodes, no message is dead, and each stock moved by exactly the
shipment: what left 上海's store is in 合肥's."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nodes import FAST_RETRIES, PeerNode, federation, wait_until

TIMEOUT = 60.0
LINES = {"TST-AG": 2000, "PPE-SUIT": 500}
STOCK = (
    "SELECT coalesce(sum(l.quantity), 0) FROM emergency_lot l "
    "JOIN emergency_point p ON p.id = l.point_id WHERE p.code = :point AND l.item_code = :item"
)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PeerNode]]:
    root = tmp_path_factory.mktemp("emergency-fed")
    with federation(root, 2, port_start=23400, port_step=41, env=FAST_RETRIES) as procs:
        assert sorted(procs) == ["310000", "320000"]
        yield procs


def _stock(node: PeerNode, point: str) -> dict[str, int]:
    return {item: int(node.sql(STOCK, point=point, item=item)[0][0]) for item in LINES}


def _get(http: httpx.Client, node: PeerNode, who: str, path: str) -> Any:
    r = http.get(f"{node.url}/api/v1/emergency{path}", headers=node.token(http, who))
    return r.json() if r.status_code == 200 else None


def _drained(nodes: dict[str, PeerNode]) -> None:
    query = "SELECT count(*) FROM outbox_message WHERE status = 'pending'"

    def pending() -> list[tuple[str, int]]:
        return [(j, n) for j, p in nodes.items() for (n,) in p.sql(query) if n]

    wait_until("every outbox drained", lambda: not pending(), TIMEOUT, lambda: str(pending()))


def test_hefei_asks_shanghai_and_receives_exactly_once_across_a_restart(
    nodes: dict[str, PeerNode],
) -> None:
    shanghai, anhui = nodes["310000"], nodes["320000"]
    hefei, sh_staff = "emergency-340100", "emergency-310000"
    before_sh, before_hf = _stock(shanghai, "310000-01"), _stock(anhui, "340100-01")
    assert all(before_sh[i] >= q for i, q in LINES.items()), before_sh

    with httpx.Client(timeout=30) as http:
        r = http.post(
            f"{anhui.url}/api/v1/emergency/requests",
            headers=anhui.token(http, hefei),
            json={
                "city_code": "340100",
                "destination_code": "340100-01",
                "urgency": "immediate",
                "title": "合肥市聚集性疫情筛查",
                "lines": [{"item_code": i, "quantity": q} for i, q in LINES.items()],
                "targets": ["310000"],
            },
        )
        assert r.status_code == 201, r.text
        req = r.json()
        wait_until(
            "the request on 上海's node",
            lambda: _get(http, shanghai, sh_staff, f"/requests/{req['id']}"),
            TIMEOUT,
            lambda: anhui.server.log_tail() + shanghai.server.log_tail(),
        )
        r = http.post(
            f"{shanghai.url}/api/v1/emergency/requests/{req['id']}/commitments",
            headers=shanghai.token(http, sh_staff),
            json={"lines": [{"item_code": i, "quantity": q} for i, q in LINES.items()]},
        )
        assert r.status_code == 201, r.text
        commitment = r.json()

        anhui.stop(signal.SIGKILL)  # 合肥's node dies; 上海 ships anyway
        assert anhui.proc is not None and anhui.proc.returncode == -9
        r = http.post(
            f"{shanghai.url}/api/v1/emergency/commitments/{commitment['id']}/shipments",
            headers=shanghai.token(http, sh_staff),
            json={
                "point_code": "310000-01",
                "vehicle": "沪A·D1234",
                "driver": "李师傅",
                "lines": [
                    {"item_code": "TST-AG", "quantity": 2000, "per_box": 500},
                    {"item_code": "PPE-SUIT", "quantity": 500, "per_box": 250},
                ],
            },
        )
        assert r.status_code == 201, r.text
        shipment = r.json()
        assert len(shipment["boxes"]) == 6
        anhui.start()
        anhui.wait_ready()
        anhui.tokens.clear()  # a new process: tokens are still valid, sign in anyway

        seen = wait_until(
            "the shipment on 合肥's node",
            lambda: _get(http, anhui, hefei, f"/shipments/{shipment['id']}"),
            TIMEOUT,
            lambda: shanghai.server.log_tail() + anhui.server.log_tail(),
        )
        assert seen["state"] == "in_transit"
        counts = {b["code"]: b["quantity"] for b in seen["boxes"]}
        r = http.post(
            f"{anhui.url}/api/v1/emergency/shipments/{shipment['id']}/receipt",
            headers=anhui.token(http, hefei),
            json={"counts": counts},
        )
        assert r.status_code == 200, r.text
        again = http.post(
            f"{anhui.url}/api/v1/emergency/shipments/{shipment['id']}/receipt",
            headers=anhui.token(http, hefei),
            json={"counts": counts},
        )
        assert again.status_code == 409

        def closed_everywhere() -> bool:
            views = [
                _get(http, node, who, f"/requests/{req['id']}")
                for node, who in ((anhui, hefei), (shanghai, sh_staff))
            ]
            return all(
                v and v["state"] == "closed" and v["commitments"][0]["state"] == "fulfilled"
                for v in views
            )

        wait_until(
            "the request closed on both nodes",
            closed_everywhere,
            TIMEOUT,
            lambda: shanghai.server.log_tail() + anhui.server.log_tail(),
        )
        _drained(nodes)

    for j, node in nodes.items():
        dead = node.sql("SELECT type, last_error FROM outbox_message WHERE status = 'dead'")
        assert dead == [], (j, dead)
        rows = node.sql(
            "SELECT s.state, count(*) FROM emergency_shipment s WHERE s.number = :n GROUP BY s.state",
            n=shipment["number"],
        )
        assert rows == [("received", 1)], (j, rows)
        received = node.sql(
            "SELECT count(*) FROM emergency_shipment_event e JOIN emergency_shipment s "
            "ON s.id = e.shipment_id WHERE s.number = :n AND e.action = 'receive'",
            n=shipment["number"],
        )
        assert received == [(1,)], (j, received)
    after_sh, after_hf = _stock(shanghai, "310000-01"), _stock(anhui, "340100-01")
    for item, quantity in LINES.items():
        assert before_sh[item] - after_sh[item] == quantity, (item, before_sh, after_sh)
        assert after_hf[item] - before_hf[item] == quantity, (item, before_hf, after_hf)

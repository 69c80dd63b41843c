"""The four-node drill: four `tongban serve --node …` processes on 127.0.0.1, one
jurisdiction each (`tongban exchange init-local --nodes 4`, demo data). 合肥 asks 上海 and
浙江 for 10,000 antigen test kits; 上海 commits 6,000 and 浙江 4,000; 上海 ships its first
half, then its node is killed (SIGKILL) and restarted before it ships the rest; 合肥
receives every shipment as it arrives. Afterwards every shipment exists once on its
giver's and on 合肥's node and was received exactly once, the commitments are fulfilled
and the request closed on all three nodes involved (and nothing of it is on 江苏's), no
message is dead, and every stock adds up to the last unit: what left 上海's and 杭州's
stores is in 合肥's."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nodes import FAST_RETRIES, PeerNode, federation, wait_until

TIMEOUT = 90.0
ITEM = "TST-AG"
STOCK = (
    "SELECT coalesce(sum(l.quantity), 0) FROM emergency_lot l "
    "JOIN emergency_point p ON p.id = l.point_id WHERE p.code = :point AND l.item_code = :item"
)
HEFEI, SHANGHAI, HANGZHOU = "emergency-340100", "emergency-310000", "emergency-330100"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PeerNode]]:
    root = tmp_path_factory.mktemp("emergency-drill")
    with federation(root, 4, port_start=23600, port_step=43, env=FAST_RETRIES) as procs:
        assert sorted(procs) == ["310000", "320000", "330000", "340000"]
        yield procs


def _held(node: PeerNode, point: str) -> int:
    return int(node.sql(STOCK, point=point, item=ITEM)[0][0])


def _api(http: httpx.Client, node: PeerNode, who: str, method: str, path: str, **kw: Any) -> Any:
    r = http.request(
        method, f"{node.url}/api/v1/emergency{path}", headers=node.token(http, who), **kw
    )
    return r


def _seen(http: httpx.Client, node: PeerNode, who: str, path: str) -> Any:
    r = _api(http, node, who, "GET", path)
    return r.json() if r.status_code == 200 else None


def _logs(*nodes: PeerNode) -> Any:
    return lambda: "\n".join(n.server.log_tail(3000) for n in nodes)


def test_hefei_gets_ten_thousand_kits_from_shanghai_and_zhejiang(
    nodes: dict[str, PeerNode],
) -> None:
    shanghai, zhejiang, anhui = (nodes[j] for j in ("310000", "330000", "340000"))
    stores = {
        "sh": (shanghai, "310000-01"),
        "hz": (zhejiang, "330100-01"),
        "hf": (anhui, "340100-01"),
    }
    before = {k: _held(node, point) for k, (node, point) in stores.items()}
    assert before["sh"] >= 6000 and before["hz"] >= 4000, before
    logs = _logs(shanghai, zhejiang, anhui)

    with httpx.Client(timeout=30) as http:
        r = _api(
            http,
            anhui,
            HEFEI,
            "POST",
            "/requests",
            json={
                "city_code": "340100",
                "destination_code": "340100-01",
                "urgency": "immediate",
                "title": "合肥市全员抗原筛查（演练）",
                "lines": [{"item_code": ITEM, "quantity": 10000}],
                "targets": ["310000", "330000"],
            },
        )
        assert r.status_code == 201, r.text
        req = r.json()
        for node, who in ((shanghai, SHANGHAI), (zhejiang, HANGZHOU)):
            wait_until(
                f"the request on {node.node_id}",
                lambda n=node, w=who: _seen(http, n, w, f"/requests/{req['id']}"),
                TIMEOUT,
                logs,
            )
        commitments = {}
        for key, node, who, quantity in (
            ("sh", shanghai, SHANGHAI, 6000),
            ("hz", zhejiang, HANGZHOU, 4000),
        ):
            r = _api(
                http,
                node,
                who,
                "POST",
                f"/requests/{req['id']}/commitments",
                json={"lines": [{"item_code": ITEM, "quantity": quantity}]},
            )
            assert r.status_code == 201, r.text
            commitments[key] = r.json()

        def ship(
            key: str, node: PeerNode, who: str, point: str, quantity: int, per_box: int
        ) -> dict[str, Any]:
            r = _api(
                http,
                node,
                who,
                "POST",
                f"/commitments/{commitments[key]['id']}/shipments",
                json={
                    "point_code": point,
                    "vehicle": f"{key.upper()}-{quantity}",
                    "lines": [{"item_code": ITEM, "quantity": quantity, "per_box": per_box}],
                },
            )
            assert r.status_code == 201, r.text
            return dict(r.json())

        shipments = [
            ship("sh", shanghai, SHANGHAI, "310000-01", 3000, 500),
            ship("hz", zhejiang, HANGZHOU, "330100-01", 4000, 1000),
        ]
        shanghai.stop(signal.SIGKILL)  # mid-way: 上海's node dies after its first shipment
        assert shanghai.proc is not None and shanghai.proc.returncode == -9

        def receive(sh: dict[str, Any]) -> None:
            seen = wait_until(
                f"shipment {sh['number']} on 合肥's node",
                lambda: _seen(http, anhui, HEFEI, f"/shipments/{sh['id']}"),
                TIMEOUT,
                logs,
            )
            counts = {b["code"]: b["quantity"] for b in seen["boxes"]}
            r = _api(
                http,
                anhui,
                HEFEI,
                "POST",
                f"/shipments/{sh['id']}/receipt",
                json={"counts": counts},
            )
            assert r.status_code == 200, r.text

        receive(shipments[1])  # 浙江's arrives while 上海's node is down
        shanghai.start()
        shanghai.wait_ready()
        shanghai.tokens.clear()
        receive(shipments[0])  # 上海's first, delivered after the restart
        shipments.append(ship("sh", shanghai, SHANGHAI, "310000-01", 3000, 1000))
        receive(shipments[2])

        def closed_everywhere() -> bool:
            # 合肥's node holds both commitments; a giver's node its own one.
            for node, who, expected in (
                (anhui, HEFEI, ["fulfilled", "fulfilled"]),
                (shanghai, SHANGHAI, ["fulfilled"]),
                (zhejiang, HANGZHOU, ["fulfilled"]),
            ):
                view = _seen(http, node, who, f"/requests/{req['id']}")
                if not view or view["state"] != "closed":
                    return False
                if sorted(c["state"] for c in view["commitments"]) != expected:
                    return False
            return True

        wait_until("the request closed on the three nodes", closed_everywhere, TIMEOUT, logs)

        query = "SELECT count(*) FROM outbox_message WHERE status = 'pending'"

        def pending() -> list[tuple[str, int]]:
            return [(j, n) for j, p in nodes.items() for (n,) in p.sql(query) if n]

        wait_until("every outbox drained", lambda: not pending(), TIMEOUT, lambda: str(pending()))

    for j, node in nodes.items():
        dead = node.sql("SELECT type, last_error FROM outbox_message WHERE status = 'dead'")
        assert dead == [], (j, dead)
    numbers = [sh["number"] for sh in shipments]
    for j, node in nodes.items():
        rows = node.sql("SELECT number, state FROM emergency_shipment ORDER BY number")
        mine = [(n, s) for n, s in rows if n in numbers]
        if j == "340000":
            assert sorted(mine) == sorted((n, "received") for n in numbers), mine
        elif j in ("310000", "330000"):
            giver = [sh["number"] for sh in shipments if sh["giver_jurisdiction"] == j]
            assert sorted(mine) == sorted((n, "received") for n in giver), (j, mine)
        else:
            assert mine == [] and node.sql(
                "SELECT count(*) FROM emergency_request WHERE number = :n", n=req["number"]
            ) == [(0,)]
        receipts = node.sql(
            "SELECT s.number, count(*) FROM emergency_shipment_event e JOIN emergency_shipment s "
            "ON s.id = e.shipment_id WHERE e.action = 'receive' GROUP BY s.number"
        )
        assert all(n == 1 for number, n in receipts if number in numbers), (j, receipts)
    after = {k: _held(node, point) for k, (node, point) in stores.items()}
    assert before["sh"] - after["sh"] == 6000, (before, after)
    assert before["hz"] - after["hz"] == 4000, (before, after)
    assert after["hf"] - before["hf"] == 10000, (before, after)

"""Cross-region settlement end to end: the demo hospital settles a demo resident's claim
over HTTP against the real server, `tongban medical clear` clears the period from the
command line (twice, with the same digest), and the insured side's agency downloads
its statement."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

import httpx


def test_settle_over_http_then_clear_on_the_command_line(
    http: httpx.Client,
    node: Any,
    demo_accounts: list[dict[str, Any]],
    login: Callable[[str], dict[str, str]],
) -> None:
    wangfang = next(a for a in demo_accounts if a["username"] == "wangfang")
    h = login("hospital-H310000001")
    e = http.post(
        "/api/v1/medical/eligibility", headers=h, json={"id_number": wangfang["id_number"]}
    )
    assert e.status_code == 200, e.text
    assert e.json()["may_settle"] and e.json()["filing_present"]
    v = http.post(
        "/api/v1/medical/visits",
        headers=h,
        json={"id_number": wangfang["id_number"], "visit_no": "E2E-1"},
    )
    assert v.status_code == 201, v.text
    vid = v.json()["id"]
    items = {"items": [{"code": "T0006", "quantity": 1, "unit_price": 350_000}]}
    assert http.put(f"/api/v1/medical/visits/{vid}/items", headers=h, json=items).status_code == 200
    s = http.post(
        "/api/v1/medical/settlements", headers=h, json={"visit_id": vid, "txn_id": "E2E-T1"}
    )
    assert s.status_code == 201, s.text
    fund, period = s.json()["split"]["fund"], s.json()["period"]
    assert fund > 0
    out1 = node.cli("medical", "clear", "--period", period).stdout
    out2 = node.cli("medical", "clear", "--period", period).stdout
    assert "安徽省" in out1 and "上海市" in out1
    yuan = f"{fund // 100}.{fund % 100:02d}"
    assert yuan in out1
    d1 = re.search(r"digest\s+([0-9a-f]{64})", out1.replace("\n", " "))
    d2 = re.search(r"digest\s+([0-9a-f]{64})", out2.replace("\n", " "))
    assert d1 and d2 and d1.group(1) == d2.group(1)
    ah = login("340000-medical_insurance-reviewer")
    c = http.get(f"/api/v1/medical/clearing/{period}/statements.csv", headers=ah)
    assert c.status_code == 200, c.text
    rows = list(csv.reader(io.StringIO(c.content.decode("utf-8-sig"))))
    pair = next(r for r in rows[1:] if (r[1], r[3]) == ("310000", "340000"))
    assert int(pair[8]) >= fund  # 安徽 owes 上海 at least this claim's fund share

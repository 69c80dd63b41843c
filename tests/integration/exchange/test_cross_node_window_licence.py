"""免提交 at the window with a licence another node issued: a 苏州 clerk on node B
(江苏) pastes the presentation an 安徽 resident's wallet shows, a licence node A issued
and B does not store. B verifies it with what the federation sent it (A's keys, A's
status list) and records it with the case as a presented licence; it refuses, in
Chinese and on the material, an unknown issuer (before A's keys arrive), a tampered
presentation, another person's licence, one not disclosing the holder's ID number, a
revoked or expired one (SQLite and PostgreSQL, two nodes in one process over signed
HTTP)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tongban.cases.models import Case
from tongban.db import utcnow
from tongban.keys import service as keys
from tongban.licences import service as licences
from tongban.licences.models import Licence, LicenceUse
from tongban.regions import service as regions

from builders import csrf_of, make_clerk, make_licence, make_officer, make_resident, sign_in

MATTER = "YRD-GA-0002"  # 户籍类证明开具: the ID card (resident_id_card) required


def _form(csrf: str, holder_id: str, name: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "competent_jurisdiction": "320000",
        "competent_city": "320500",
        "mode": "proxy",
        "delivery_method": "window",
        "consent": "1",
        "proof_type": "亲属关系证明",
        "subject_name": "王小明",
        "subject_id_number": "340102199003071232",
        "purpose": "办理入学",
        "applicant_type": "resident",
        "applicant_name": name,
        "applicant_identifier": holder_id,
        "identity_verified": "1",
        "materials_checked": "1",
    }


def _tampered(compact: str) -> str:
    """The presentation with one character of the issuer's signature changed."""
    jws, rest = compact.split("~", 1)
    head, payload, sig = jws.split(".")
    i = len(sig) // 2
    sig = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1 :]
    return f"{head}.{payload}.{sig}~{rest}"


def _material_error(html: str) -> str:
    """The message shown under the ID card's input."""
    found = re.search(r'id="material_id_card-error"[^>]*>(.*?)<', html, re.S)
    assert found, "no error under the material"
    return found.group(1)


def test_a_licence_issued_on_a_stands_in_at_a_window_on_b(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    with a.session() as s:
        keys.rotate(s, "licence", "340000")  # a key B cannot know yet
        holder, stranger = make_resident(s, "340100"), make_resident(s, "340100")
        lic, other = make_licence(s, holder), make_licence(s, stranger)
        now = utcnow()
        stale = licences.issue_as(
            s,
            regions.authority_by_code(s, "340100-public_security"),
            licences.IssueRequest(
                "resident_id_card",
                holder.id_number or "",
                holder.display_name,
                dict(lic.claims),
                valid_from=now - timedelta(days=30),
                valid_until=now - timedelta(days=1),
            ),
            source="direct",
        )
        # What the wallet shows when the holder discloses only the name: no ID number.
        anonymous = licences.present(s, holder, lic.id, ["name"]).compact
        s.commit()
        holder_id, name = holder.id_number or "", holder.display_name
    with b.session() as s:
        clerk = make_clerk(s, "320500")
        s.commit()
        username, clerk_id = clerk.username, clerk.id
        assert s.scalar(select(Licence).where(Licence.identifier == lic.identifier)) is None

    web = hosts.apps["node-b.test"]
    sign_in(web, username)
    page = web.get(f"/window/new/{MATTER}")
    data = _form(csrf_of(page.text), holder_id, name)

    def submit(presentation: str) -> Any:
        return web.post(
            f"/window/new/{MATTER}",
            data={**data, "presented_id_card": presentation},
            follow_redirects=False,
        )

    r = submit(lic.compact)  # A's keys have not reached B
    assert r.status_code == 422 and "未知签发方" in _material_error(r.text)

    tools.drain(a, b)
    r = submit(_tampered(lic.compact))
    assert r.status_code == 422 and "签名无效" in _material_error(r.text)
    r = submit(other.compact)
    assert r.status_code == 422 and "不属于申请人" in _material_error(r.text)
    r = submit(stale.compact)
    assert r.status_code == 422 and "已过期" in _material_error(r.text)
    r = submit(anonymous)
    assert r.status_code == 422 and "未披露持证人证件号码" in _material_error(r.text)
    with b.session() as s:
        assert s.scalar(select(Case).where(Case.clerk_id == clerk_id)) is None

    r = submit(lic.compact)
    assert r.status_code == 303, r.text
    with b.session() as s:
        case = s.scalar(select(Case).where(Case.clerk_id == clerk_id))
        assert case is not None and not case.attachments  # the licence stands in
        [shown] = case.presented_licences
        assert (shown.material_code, shown.type_code) == ("id_card", "resident_id_card")
        assert shown.licence_id == lic.identifier and shown.result == "valid"
        assert "苏州" in shown.verified_by and shown.issuer
        assert len(shown.presentation_sha256) == 64
        # Not a licence use: B holds no licence row to name.
        assert s.scalar(select(LicenceUse).where(LicenceUse.case_id == case.id)) is None
    page = web.get(f"/window/cases/{case.id}")
    assert "免提交：" in page.text and lic.identifier in page.text

    # Revoked on A: once the status list reaches B, B's window refuses it.
    with a.session() as s:
        officer = make_officer(s, "340100-public_security")
        licences.change_status(s, officer, lic.id, "revoke", "以欺骗手段取得")
        s.commit()
    tools.drain(a, b)
    r = submit(lic.compact)
    assert r.status_code == 422 and "已撤销" in _material_error(r.text)

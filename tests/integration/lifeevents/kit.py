"""What the life-event tests share: a mother with her e-licences, the newborn bundle's
merged form, and one node's dispatcher and officers (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tongban.cases import service as cases
from tongban.cases.models import Case
from tongban.exchange.models import OutboxMessage
from tongban.exchange.service import apply_locally
from tongban.kernel import replication
from tongban.lifeevents import service
from tongban.lifeevents.models import Bundle

from builders import make_licence, make_officer, make_resident, upload

SHANGHAI, NANJING, HEFEI = "310000", "320100", "340100"


def pump(session: Any) -> int:
    """What the dispatcher does on one node: every pending message applied locally (the
    bundle's own cases are forwarded, their steps come back), until none is left."""
    n = 0
    for _ in range(30):
        replication.send_now(session)
        pending = list(
            session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending"))
        )
        if not pending:
            return n
        for msg in pending:
            apply_locally(session, msg)
            msg.status = "delivered"
            n += 1
        session.flush()
    raise AssertionError("messages keep coming")


def walk(session: Any, case_id: Any, *, deny: str | None = None) -> Case:
    """The competent authority's officer takes the case to delivery (or denies it)."""
    pump(session)
    case = session.get(Case, case_id)
    officer = make_officer(session, _code(session, case))
    for action, comment in (("accept", "材料齐全"), ("start_review", "")):
        cases.act(session, officer, case_id, action, comment)
    if deny:
        cases.act(session, officer, case_id, "deny", deny)
    else:
        cases.act(session, officer, case_id, "approve", "符合条件")
    cases.act(session, officer, case_id, "issue_result", "")
    case = cases.act(session, officer, case_id, "deliver", "")
    pump(session)
    return case


def _code(session: Any, case: Case) -> str:
    from tongban.regions import service as regions

    return regions.get_authority(session, case.authority_id).code


def mother(session: Any, city: str = HEFEI) -> Any:
    """王芳's like: 合肥 resident, proven, holding her ID card and her 户口簿 as e-licences."""
    m = make_resident(session, city, display_name="王芳")
    make_licence(session, m, "resident_id_card")
    make_licence(session, m, "household_register", household_head="王芳", relation_to_head="户主",
                 household_number="340100001", address="安徽省合肥市蜀山区长江西路100号")  # fmt: skip
    return m


def newborn_form(**over: Any) -> dict[str, Any]:
    """Born in 上海, the father registered in 南京 (江苏), the mother in 合肥 (安徽), the
    baby registered with the father, the family living in 上海."""
    form = {
        "child_name": "张小宝",
        "child_sex": "男",
        "birth_date": "2026-11-20",
        "birth_hospital": "上海市第一妇婴保健院",
        "birth_city": SHANGHAI,
        "mother_name": "王芳",
        "mother_id_number": "340102199003071283",
        "mother_hukou_city": HEFEI,
        "father_name": "张伟",
        "father_hukou_city": NANJING,
        "hukou_follows": "随父亲落户",
        "declarant_relation": "母亲",
        "hukou_address": "江苏省南京市玄武区中山路1号",
        "residence_city": SHANGHAI,
        "residence_address": "上海市浦东新区世纪大道100号",
        "ssc_bank": "中国银行",
        "ssc_pickup": "邮寄送达",
        "mailing_address": "上海市浦东新区世纪大道100号",
    }
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def submit_newborn(session: Any, applicant: Any, **over: Any) -> Bundle:
    photo = upload(session, applicant, "photo")
    return service.submit(
        session,
        applicant,
        service.BundleApplication(
            "newborn", newborn_form(**over), [photo.id], phone="13800000000", consent=True
        ),
    )

"""The version guard of licences: a status change decided on a licence that another
request changed meanwhile (its row version moved after it was read) is refused with a
409 `concurrent-change` instead of acting on the status it read."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tongban.errors import ConcurrentChange
from tongban.licences import status
from tongban.licences.models import Licence

from builders import make_licence, make_officer, make_resident


def test_a_stale_status_change_is_a_409_and_writes_nothing(session):
    officer = make_officer(session, "340100-public_security")
    lic = make_licence(session, make_resident(session))
    assert [e.seq for e in lic.events] == [1] and lic.event_seq == 1
    status.change_status(session, officer, lic.id, "suspend", "核查")
    assert [(e.seq, e.action, e.from_status, e.to_status) for e in lic.events] == [
        (1, "issue", None, "valid"),
        (2, "suspend", "valid", "suspended"),
    ]
    # Another request revokes it meanwhile (the row and its version move under us).
    session.execute(
        update(Licence)
        .where(Licence.id == lic.id)
        .values(status="revoked", row_version=Licence.row_version + 1)
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(ConcurrentChange) as e:
        status.change_status(session, officer, lic.id, "reinstate", "误操作")
    assert e.value.status == 409 and e.value.type == "concurrent-change"
    session.rollback()


def test_serials_come_from_the_kernel_numbering(session):
    from tongban.kernel import numbering
    from tongban.licences import issuing

    holder = make_resident(session)
    first = make_licence(session, holder)
    second = make_licence(session, make_resident(session))
    assert second.serial == first.serial + 1
    # The scope is the GB/T 36904 type code and the issuer's credit code.
    scope = f"licence:{issuing.get_type(first.type_code).type_code}:{first.issuer_code}"
    assert numbering.peek(session, scope) == second.serial

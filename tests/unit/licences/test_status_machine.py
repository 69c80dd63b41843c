"""The licence status machine on the kernel: suspend ⇄ reinstate, revoke from valid or
suspended, revoked is final."""

from __future__ import annotations

import pytest

from tongban.licences import domain
from tongban.licences.domain import LicenceAction as A
from tongban.licences.domain import LicenceStatus as S


def test_transitions():
    assert domain.next_status("valid", "suspend") is S.SUSPENDED
    assert domain.next_status(S.SUSPENDED, A.REINSTATE) is S.VALID
    assert domain.next_status(S.SUSPENDED, A.REVOKE) is S.REVOKED
    assert domain.allowed_actions(S.VALID) == [A.SUSPEND, A.REVOKE]
    assert domain.allowed_actions(S.REVOKED) == []


@pytest.mark.parametrize(
    ("status", "action"),
    [(S.REVOKED, A.REINSTATE), (S.VALID, A.REINSTATE), (S.REVOKED, A.SUSPEND), (S.VALID, A.BIND)],
)
def test_illegal_changes_are_refused_in_chinese(status, action):
    with pytest.raises(domain.IllegalStatusChange) as e:
        domain.next_status(status, action)
    assert str(e.value).startswith(f"证照当前状态为“{domain.STATUS_LABELS[status]}”")

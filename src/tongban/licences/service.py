"""Use cases of e-licences, as other contexts and the entry points call them. The work is
done in the service modules beside this one, one concept each:

- issuing.py — types, direct / bulk / case issuance, authorisation of issuers;
- status.py — suspend / reinstate / revoke, status lists, this node's StatusSource;
- trust.py — issuer metadata (JWKS), the signed federation trust list;
- verification.py — the one verification of a presentation;
- wallet.py — the holder's licences and presentations, the officer's list;
- binding.py — the holder's device keys, licences re-issued bound to them (cnf);
- usage.py — 免提交: licences standing in for case materials;
- federation.py / handlers.py — keys and status lists published to the other nodes.
"""

from __future__ import annotations

# Imported for their registrations: the key-change and commit listeners that publish
# keys and status lists to the other nodes, the handlers of those messages, and the
# subscribers to what cases announce (kernel.events).
from tongban.licences import federation as _federation  # noqa: F401
from tongban.licences import handlers as _handlers  # noqa: F401
from tongban.licences import subscribers as _subscribers  # noqa: F401
from tongban.licences.binding import current_key, list_keys, register_key, withdraw_key
from tongban.licences.issuing import (
    IssueRequest,
    bulk_issue,
    get_type,
    issue,
    issue_as,
    issue_for_case,
    list_types,
)
from tongban.licences.rejection import LicenceRejected
from tongban.licences.status import change_status, get_for_officer, status_list_token
from tongban.licences.trust import issuer_metadata, local_trust, root_keys, trust_list_token
from tongban.licences.trustlist import TrustList, verify_trust_list
from tongban.licences.usage import (
    LicenceChoice,
    check_for_application,
    check_presented,
    record_uses,
    reverify_for_decision,
    uses_for_case,
)
from tongban.licences.verification import (
    Verification,
    binding_policy,
    licence_for,
    verify_presentation,
    verify_stored,
)
from tongban.licences.wallet import (
    bound_presentation,
    choices_for_matter,
    get_mine,
    list_for_officer,
    list_mine,
    present,
)

__all__ = [
    "IssueRequest",
    "LicenceChoice",
    "LicenceRejected",
    "TrustList",
    "Verification",
    "binding_policy",
    "bound_presentation",
    "current_key",
    "list_keys",
    "register_key",
    "withdraw_key",
    "bulk_issue",
    "change_status",
    "check_for_application",
    "check_presented",
    "choices_for_matter",
    "get_for_officer",
    "get_mine",
    "get_type",
    "issue",
    "issue_as",
    "issue_for_case",
    "issuer_metadata",
    "licence_for",
    "list_for_officer",
    "list_mine",
    "list_types",
    "local_trust",
    "present",
    "record_uses",
    "reverify_for_decision",
    "root_keys",
    "status_list_token",
    "trust_list_token",
    "uses_for_case",
    "verify_presentation",
    "verify_stored",
    "verify_trust_list",
]

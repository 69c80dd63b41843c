"""Use cases of the card context, as other contexts and the entry points call them. The
work is done in the modules beside this one, one concept each:

- cards.py — cards and holders: issue, 挂失 / 解除挂失 / 补换 / 注销, who may act, demo;
- credentials.py — device credentials (enrolment, the daily renewal);
- revocations.py — each jurisdiction's signed revocation list;
- scanning.py — venue staff and their scans (this node as the venue's gate);
  figures.py — the operators' figures per city pair;
- usage.py, gateauth.py — gates' uploaded uses (stored and forwarded once), the gates'
  keys; benefits.py — same-city benefit rules and venues as data;
- federation.py / handlers.py — revocation lists published to and received from the
  other nodes;
- codec.py, verifier.py, devicekeys.py — the code's format and its offline verification
  (pure: what gates and the reference device use).
"""

from __future__ import annotations

# Imported for its registration: the handler of the other nodes' revocation lists.
from tongban.card import handlers as _handlers  # noqa: F401
from tongban.card.cards import (
    Holder,
    Outcome,
    act,
    actor_kind,
    allowed_actions,
    current_card,
    find_for_clerk,
    find_replacements,
    get_for,
    holder_of,
    issue,
    list_mine,
    load_demo_cards,
)
from tongban.card.credentials import CREDENTIAL_LIFETIME, CardNotUsable, Issued, enrol
from tongban.card.models import CardGate
from tongban.card.revocations import (
    Served,
    Since,
    list_bytes,
    list_or_delta,
    revocation_list,
    revoked_refs,
    served,
)
from tongban.card.scanning import load_demo_staff
from tongban.card.usage import Stored, history_of, seen_by_operator, store_uploaded

__all__ = [
    "load_demo_staff",
    "CardGate",
    "Stored",
    "history_of",
    "seen_by_operator",
    "store_uploaded",
    "CREDENTIAL_LIFETIME",
    "CardNotUsable",
    "Issued",
    "enrol",
    "Served",
    "list_bytes",
    "list_or_delta",
    "Since",
    "served",
    "revocation_list",
    "revoked_refs",
    "Holder",
    "Outcome",
    "act",
    "actor_kind",
    "allowed_actions",
    "current_card",
    "find_for_clerk",
    "find_replacements",
    "get_for",
    "holder_of",
    "issue",
    "list_mine",
    "load_demo_cards",
]

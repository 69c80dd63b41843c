"""Use cases of the card context, as other contexts and the entry points call them. The
work is done in the modules beside this one, one concept each:

- cards.py — cards and holders: issue, 挂失 / 解除挂失 / 补换 / 注销, who may act, demo.
"""

from __future__ import annotations

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

__all__ = [
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

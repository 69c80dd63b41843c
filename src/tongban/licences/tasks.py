"""Background jobs of e-licences: in a federation, send this node's licence keys and
status lists to the other nodes again before the copies they hold expire; and delete
expired verify short links."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.db import transaction
from tongban.kernel.registry import Job
from tongban.licences import federation, shortlinks
from tongban.licences.status import STATUS_LIST_LIFETIME

log = logging.getLogger(__name__)

#: A received list is valid STATUS_LIST_LIFETIME seconds after it was signed, and this
#: node re-signs after half of it: refreshing every quarter keeps every copy valid.
REFRESH_SECONDS = STATUS_LIST_LIFETIME / 4


def refresh_status_lists(factory: sessionmaker[Session], settings: Settings) -> int:
    """Queue this node's licence keys and every status list it publishes for the other
    nodes (nothing on the embedded single node); how many messages. The keys go too, so
    that a node which missed them (it joined later, or the keys were made before the
    federation file existed) can check the lists instead of refusing them forever."""
    if not federation.federated(settings):
        return 0
    with transaction(factory) as session:
        n_keys, n_lists = federation.publish_all(session)
    if n_keys or n_lists:
        log.info("queued %s key and %s status list message(s) for the other nodes", n_keys, n_lists)
    return n_keys + n_lists


#: A short link lives 30 minutes; purging expired ones hourly keeps the table small.
PURGE_SECONDS = 3600.0


def purge_short_links(factory: sessionmaker[Session], settings: Settings) -> int:
    """Delete the verify short links that have expired; how many."""
    with transaction(factory) as session:
        n = shortlinks.purge_expired(session)
    if n:
        log.info("deleted %s expired verify short link(s)", n)
    return n


JOBS = [
    Job("licences.status_list_refresh", REFRESH_SECONDS, refresh_status_lists),
    Job("licences.short_link_purge", PURGE_SECONDS, purge_short_links),
]

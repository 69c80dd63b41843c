"""Revocation deltas on the wire (SQLite and PostgreSQL, the app in-process): a gate that
holds a jurisdiction's list syncs again and gets a delta onto it — the card lost since is
refused after, with a fraction of the full list's bytes; the node falls back to the full
list when it cannot tell what the gate holds (wrong digest, a restarted sequence, a list
older than its lifetime); a gate refuses a forged, altered, cut short, wrongly based or
older delta, fetches the full list instead and keeps only what verifies."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tongban.card import codec, revdelta, service
from tongban.card import gate as gates
from tongban.card.device import Device
from tongban.card.verifier import Refusal

from .test_gates import URL, _gate, _senior

JS = "320000"
LIST = f"/api/v1/card/revocations/{JS}"


def _held(state: Path) -> codec.RevocationList:
    return codec.decode_revocations((state / gates.LISTS / f"{JS}.bin").read_bytes())


def _lost_after_a_sync(
    client: TestClient, session: Session, tmp_path: Path
) -> tuple[Path, Device, codec.RevocationList]:
    """A gate that synced once; then a 南京 card (its credential) is reported lost."""
    # Another holder who changed phones a few times: the list holds their old devices'
    # credentials, so that a delta is smaller than the list (it is not for 1-2 entries).
    other, _, _ = _senior(session)
    for _ in range(8):
        service.enrol(session, other, Device.generate("ES256").public_jwk())
    session.commit()
    holder, card, device = _senior(session)
    state = _gate(session, tmp_path, "hz-museum-01", "330100-museum")
    first = gates.sync(state, client=client)
    assert first.failures == [] and first.deltas == []  # nothing held yet: full lists
    # The revocation after the second the held list was signed in: that second (its
    # `iat`) is never before the issuing key's first whole second, so a list signed just
    # after the key was made can carry the next second; wait past it, not 1 s from now.
    time.sleep(max(0.0, _held(state).iat + 1.1 - time.time()))
    service.act(session, holder, card.id, "report_lost", "钱包被盗")
    session.commit()
    lost = service.revocation_list(session, JS)
    assert len(lost.refs) == 9
    return state, device, lost


def test_a_gate_syncs_a_delta_and_refuses_the_card_lost_since(
    client: TestClient, session: Session, tmp_path: Path
) -> None:
    state, device, lost = _lost_after_a_sync(client, session, tmp_path)
    full = len(client.get(LIST).content)
    report = gates.sync(state, client=client)
    assert report.failures == [] and report.refused_deltas == []
    assert JS in report.deltas and report.lists[JS] == 9
    held = _held(state)
    assert held.refs == lost.refs
    gate = gates.load(state)
    now = int(time.time())
    assert gate.check(device.qr_text(now), now).reason is Refusal.REVOKED
    gate.close()
    # Syncing again with nothing changed: a delta of no entries, smaller than the list.
    again = gates.sync(state, client=client)
    assert JS in again.deltas and _held(state).refs == lost.refs
    delta = client.get(
        LIST,
        params={
            "since_seq": _held(state).seq,
            "since_iat": _held(state).iat,
            "since_digest": revdelta.digest(_held(state).refs).hex(),
        },
    ).content
    assert revdelta.is_delta(delta) and len(delta) < full


def test_the_node_sends_the_full_list_when_it_cannot_make_a_delta(
    client: TestClient, session: Session, tmp_path: Path
) -> None:
    state, _, _ = _lost_after_a_sync(client, session, tmp_path)
    held = _held(state)
    good = {"since_seq": held.seq, "since_iat": held.iat}
    digest = revdelta.digest(held.refs).hex()
    assert revdelta.is_delta(client.get(LIST, params={**good, "since_digest": digest}).content)
    cases = [
        {**good, "since_digest": "00" * 8},  # the gate holds something else
        {**good, "since_seq": held.seq + 1000, "since_digest": digest},  # sequence restarted
        {"since_seq": held.seq, "since_iat": held.iat - 2 * 86400, "since_digest": digest},
    ]
    for params in cases:
        data = client.get(LIST, params=params).content
        assert not revdelta.is_delta(data), params
        assert codec.decode_revocations(data).jurisdiction == JS
    # Half a request is a field error, not a silent full list.
    r = client.get(LIST, params={"since_seq": 1})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"since_iat", "since_digest"}
    assert client.get(LIST, params={**good, "since_digest": "xyz"}).status_code == 422


def _tampering(client: TestClient, change: Callable[[bytes], bytes]) -> httpx.Client:
    """A client to the node whose delta answers pass through `change` (full lists do not)."""

    def handler(request: httpx.Request) -> httpx.Response:
        r = client.request(
            request.method,
            request.url.raw_path.decode(),
            content=request.content,
            headers=dict(request.headers),
        )
        body = r.content
        if request.url.path == LIST and revdelta.is_delta(body):
            body = change(body)
        headers = {k: v for k, v in r.headers.items() if k.lower() != "content-length"}
        return httpx.Response(r.status_code, content=body, headers=headers)

    return httpx.Client(base_url=URL, transport=httpx.MockTransport(handler))


def _flip(at: int) -> Callable[[bytes], bytes]:
    return lambda b: b[:at] + bytes([b[at] ^ 1]) + b[at + 1 :]


def _drop_added(b: bytes) -> bytes:
    """The lost card's reference taken out of the delta: the rest is left as it was."""
    d = revdelta.decode_delta(b)
    return revdelta.RevocationDelta(
        **{**{f: getattr(d, f) for f in d.__slots__}, "added": (), "count": d.count - 1}
    ).to_bytes()


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("forged signature", _flip(-1)),
        ("altered header (sequence)", _flip(44)),
        ("entry taken out", _drop_added),
        ("wrong base digest", _flip(30)),
        ("cut short", lambda b: b[:-10]),
        ("garbage after the magic", lambda b: b[:5] + b"\xff" * 60),
    ],
)
def test_a_gate_refuses_a_hostile_delta_and_takes_the_full_list(
    client: TestClient, session: Session, tmp_path: Path, name: str, change: Any
) -> None:
    state, device, lost = _lost_after_a_sync(client, session, tmp_path)
    with _tampering(client, change) as http:
        report = gates.sync(state, client=http)
    assert report.deltas == [] and len(report.refused_deltas) == 1, name
    assert report.failures == [] and report.lists[JS] == 9
    assert _held(state).refs == lost.refs  # the genuine full list, not the tampered delta
    gate = gates.load(state)  # what the gate keeps verifies
    now = int(time.time())
    assert gate.check(device.qr_text(now), now).reason is Refusal.REVOKED
    gate.close()


def test_a_gate_refuses_an_older_delta_replayed(
    client: TestClient, session: Session, tmp_path: Path
) -> None:
    state, _, lost = _lost_after_a_sync(client, session, tmp_path)
    before = _held(state)
    params = {
        "since_seq": before.seq,
        "since_iat": before.iat,
        "since_digest": revdelta.digest(before.refs).hex(),
    }
    old_delta = client.get(LIST, params=params).content
    assert revdelta.is_delta(old_delta)
    gates.sync(state, client=client)
    time.sleep(1.1)
    gates.sync(state, client=client)
    newer = _held(state)
    assert newer.iat > before.iat
    # A replay of the first delta: it names a base the gate no longer holds.
    with _tampering(client, lambda _b: old_delta) as http:
        report = gates.sync(state, client=http)
    assert report.deltas == [] and len(report.refused_deltas) == 1
    assert _held(state).iat >= newer.iat and _held(state).refs == lost.refs
    # A delta onto the list held but signed before it is older, and refused as such.
    d = revdelta.decode_delta(old_delta)
    older = revdelta.RevocationDelta(
        **{
            **{f: getattr(d, f) for f in d.__slots__},
            "base_seq": newer.seq,
            "base_iat": newer.iat,
            "base_digest": revdelta.digest(newer.refs),
        }
    )
    with pytest.raises(gates.GateError, match="旧"):
        gates._apply_delta(older.to_bytes(), newer, {})

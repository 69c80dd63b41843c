"""The audit chain's rules: canonical encoding, entry hashes, checkpoint statements and
the verification of a whole chain. Pure: no SQLAlchemy, no FastAPI; the service feeds it.

An entry's hash is ``H(prev_hash || canonical(entry))`` where ``prev_hash`` is the
previous entry's hash as 32 raw bytes (32 zero bytes before the first entry) and
``canonical(entry)`` is the UTF-8 encoding of the JSON object::

    {"actor":…,"alg":…,"at":…,"body":<body text verbatim>,"kind":…,"seq":…,"subject":…}

with the keys in that (sorted) order, no whitespace, non-ASCII characters unescaped,
``at`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, always 6 fractional digits) and ``body``
the stored canonical JSON text of the body inserted as is (see `canonical_json`). H is
SHA-256 or SM3, named per entry by ``alg`` ("sha-256" | "sm3"). docs/audit.md says more.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any
from uuid import UUID

from tongban.crypto.signing import digest

HASH_ALGS = ("sha-256", "sm3")
#: The hash "before" the first entry.
GENESIS = "0" * 64
#: `typ` of a signed checkpoint statement (so that an audit signature means one thing).
CHECKPOINT_TYP = "tongban-audit-checkpoint/v1"


# ---------------------------------------------------------------------------------------
# Canonical encoding


def _plain(value: Any) -> Any:
    """`value` as JSON-native data: UUIDs, times, decimals and enums become strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("audit body: NaN and infinities have no canonical JSON form")
        return value
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("audit body: naive datetime")
        return format_at(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError("audit body: object keys must be strings")
            out[k] = _plain(v)
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    raise ValueError(f"audit body: {type(value).__name__} has no canonical JSON form")


def canonical_json(value: Any) -> str:
    """The one text of `value`: sorted keys, no whitespace, UTF-8 (non-ASCII unescaped);
    UUID, datetime (UTC, ``…ffffffZ``), date, Decimal and Enum become strings, bytes
    base64url."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_at(at: datetime) -> str:
    """An instant as it is hashed: UTC, microseconds, ``Z``."""
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def field_digest(alg: str, value: Any) -> str:
    """Hex digest of a value's canonical JSON: lets an entry pin a field (a comment, a
    message payload) without copying personal data into the chain."""
    return digest(alg, canonical_json(value).encode()).hex()


# ---------------------------------------------------------------------------------------
# Entries


@dataclass(frozen=True)
class Entry:
    """One row of the chain, as stored."""

    seq: int
    at: datetime
    kind: str
    subject: str
    actor: str
    body: str
    alg: str
    prev_hash: str
    hash: str
    #: The typed columns as stored (`typed_fields`' keys), when read from the table;
    #: None where they were not read (an entry from elsewhere). Not part of the content.
    typed: dict[str, Any] | None = field(default=None, compare=False)


def encode(
    seq: int, at: datetime, kind: str, subject: str, actor: str, body: str, alg: str
) -> bytes:
    """The canonical encoding of an entry's content (everything but the hashes)."""
    j = json.dumps
    text = (
        f'{{"actor":{j(actor, ensure_ascii=False)},"alg":{j(alg)},"at":{j(format_at(at))},'
        f'"body":{body},"kind":{j(kind, ensure_ascii=False)},"seq":{int(seq)},'
        f'"subject":{j(subject, ensure_ascii=False)}}}'
    )
    return text.encode("utf-8")


def entry_hash(
    alg: str, prev_hash: str, seq: int, at: datetime, kind: str, subject: str, actor: str, body: str
) -> str:
    """``H(prev_hash || canonical(entry))`` as lowercase hex."""
    if alg not in HASH_ALGS:
        raise ValueError(f"unknown audit hash {alg}")
    try:
        prev = bytes.fromhex(prev_hash)
    except (ValueError, TypeError):
        prev = str(prev_hash).encode()  # a mangled prev_hash still yields a (wrong) hash
    return digest(alg, prev + encode(seq, at, kind, subject, actor, body, alg)).hex()


def recompute(entry: Entry, prev_hash: str | None = None) -> str:
    """The hash `entry` should carry, linked to `prev_hash` (default: its own)."""
    try:
        return entry_hash(
            entry.alg,
            entry.prev_hash if prev_hash is None else prev_hash,
            entry.seq,
            entry.at,
            entry.kind,
            entry.subject,
            entry.actor,
            entry.body,
        )
    except ValueError:
        return ""  # unknown alg or unencodable: matches no stored hash


def make_entry(
    prev_seq: int,
    prev_hash: str,
    at: datetime,
    kind: str,
    subject: str,
    actor: str,
    body: Any,
    alg: str = "sha-256",
) -> Entry:
    """The entry that follows (prev_seq, prev_hash)."""
    body_text = body if isinstance(body, str) else canonical_json(body)
    seq = prev_seq + 1
    h = entry_hash(alg, prev_hash, seq, at, kind, subject, actor, body_text)
    return Entry(seq, at, kind, subject, actor, body_text, alg, prev_hash, h)


#: The longest `action` / `to_state` a typed column keeps (longer: NULL).
TYPED_TEXT_MAX = 40
#: The typed columns of a stored entry, as `typed_fields` names them.
TYPED_COLUMNS = ("action", "to_state", "occurred_at", "subject_id")
_HEX = frozenset("0123456789abcdefABCDEF")


def _typed_text(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= TYPED_TEXT_MAX else None


def _typed_at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
        return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # no instant, or one outside datetime's range in UTC
        return None


def subject_uuid(subject: str) -> UUID | None:
    """The uuid a subject "<type>:<uuid>" names, only in the canonical form (8-4-4-4-12
    hex digits, any case) after its first colon; else None."""
    _, sep, raw = subject.partition(":")
    if not sep or len(raw) != 36 or raw.count("-") != 4:
        return None
    if any(raw[i] != "-" for i in (8, 13, 18, 23)):
        return None
    if not _HEX.issuperset(raw.replace("-", "")):
        return None
    return UUID(raw)


def typed_fields(subject: str, body: str) -> dict[str, Any]:
    """An entry's typed columns (migration 0058), derived from what its hash covers: the
    body's top-level `action` and `to_state` (strings of at most TYPED_TEXT_MAX
    characters, else None), its `at` (an ISO-8601 instant, as UTC; naive taken as UTC;
    else None) as `occurred_at`, and the uuid its subject names (`subject_uuid`) as
    `subject_id`. A copy for readers in SQL (the dashboard's refresh), which would
    otherwise parse every body; a body that is not a JSON object gives None for all three
    of its fields. Not hashed, but verified: `verify_chain` compares the stored columns
    with this derivation, so a column altered in the table (which would change what the
    dashboard publishes) is found as an altered entry."""
    try:
        fields = json.loads(body)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        fields = {}
    return {
        "action": _typed_text(fields.get("action")),
        "to_state": _typed_text(fields.get("to_state")),
        "occurred_at": _typed_at(fields.get("at")),
        "subject_id": subject_uuid(subject),
    }


# ---------------------------------------------------------------------------------------
# Checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the chain of `node_id` had hash `hash` at `seq`."""

    seq: int
    hash: str
    at: datetime
    node_id: str
    kid: str
    alg: str
    signature: str  # base64url


def checkpoint_statement(node_id: str, seq: int, hash_: str, at: datetime) -> bytes:
    """The bytes an audit key signs for a checkpoint."""
    return canonical_json(
        {"typ": CHECKPOINT_TYP, "node": node_id, "seq": int(seq), "hash": hash_, "at": at}
    ).encode("utf-8")


# ---------------------------------------------------------------------------------------
# Verification


class Problem(StrEnum):
    ALTERED = "altered"
    REMOVED = "removed"
    REORDERED = "reordered"
    CHECKPOINT_SIGNATURE = "checkpoint signature invalid"
    CHECKPOINT_MISMATCH = "checkpoint mismatch"
    TRUNCATED = "truncated"
    HEAD_MISMATCH = "head mismatch"
    COSIGNED_MISMATCH = "cosigned checkpoint mismatch"
    COSIGNATURE_INVALID = "cosignature invalid"


@dataclass(frozen=True)
class Finding:
    problem: Problem
    seq: int
    detail: str


@dataclass(frozen=True)
class Head:
    """The head row (last seq, last hash) as read before the walk, and `stray_seq`: the
    first entry found past the head row as it stood at the end of the walk (rows nobody
    appended through the head; None when there is none)."""

    seq: int
    hash: str
    stray_seq: int | None = None


@dataclass
class Report:
    entries: int = 0
    checkpoints: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    last_checkpoint: int | None = None
    finding: Finding | None = None
    cosignatures: int = 0
    #: The highest seq whose cosignature(s) verified against the chain.
    last_cosigned: int | None = None
    algs: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return self.finding is None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "last_checkpoint": self.last_checkpoint,
            "hash_algs": sorted(self.algs),
            "cosignatures": self.cosignatures,
            "last_cosigned": self.last_cosigned,
        }
        if self.finding is not None:
            out["problem"] = str(self.finding.problem)
            out["seq"] = self.finding.seq
            out["detail"] = self.finding.detail
        return out


#: Checks a checkpoint's signature; the service binds it to the node's audit keys.
SignatureCheck = Callable[[Checkpoint], bool]


def _classify_break(entry: Entry, expected: int, prev: str, rest: Iterator[Entry]) -> Finding:
    """The entry at `expected` does not link to its predecessor (hash `prev`): say why.

    - its stored prev_hash alone was changed (it links once the right one is put back):
      altered;
    - its own hash is right, so the predecessor it names was rewritten (and rehashed):
      the predecessor is altered, unless that predecessor turns up later: reordered;
    - its own hash is wrong too (its seq or content moved): reordered when the entry it
      names as predecessor turns up later in the chain, otherwise entries were removed
      and the rest renumbered.
    Looking ahead consumes `rest` keeping one hash in memory."""
    if recompute(entry, prev) == entry.hash:
        return Finding(Problem.ALTERED, expected, "prev_hash changed")
    wanted = entry.prev_hash
    found_later = any(e.hash == wanted for e in rest)
    if recompute(entry) == entry.hash:
        if found_later:
            return Finding(Problem.REORDERED, expected, "entry out of order")
        return Finding(
            Problem.ALTERED,
            max(expected - 1, 1),
            f"entry {expected} links to a different entry {max(expected - 1, 1)}",
        )
    if found_later:
        return Finding(Problem.REORDERED, expected, "entry out of order")
    return Finding(Problem.REMOVED, expected, "entries removed and the rest renumbered")


def verify_chain(
    entries: Iterable[Entry],
    checkpoints: Iterable[Checkpoint],
    check_signature: SignatureCheck,
    head: Head | None = None,
    *,
    start: tuple[int, str] = (0, GENESIS),
    cosignatures: Iterable[Cosignature] = (),
    check_cosignature: CosignatureCheck | None = None,
) -> Report:
    """Walk `entries` (in seq order, streamed) and the checkpoints; return the counts and
    the first problem found, in seq order.

    Per entry: seq contiguous from 1 (a gap: removed), prev_hash equal to the previous
    entry's hash (else reordered / altered, see `_classify_break`), hash recomputed
    (altered), and the typed columns, where read from the table, equal to those its
    content gives (`typed_fields`; else altered). Per checkpoint: signature (checkpoint signature invalid), hash equal to
    the chain's hash at its seq (checkpoint mismatch: a rewritten chain), and the chain
    reaching it (truncated). With `head`: the chain ends exactly at the head row
    (shorter: truncated; different hash or rows past it: head mismatch). `start` (seq,
    hash) verifies only the part after a known-good point (the entries fed then begin at
    seq + 1).

    Per cosignature (a peer node's witness of this chain at a seq): the chain's hash at
    its seq equals the hash the witness cosigned (else cosigned checkpoint mismatch: the
    history under it was rewritten, even when the node's own checkpoints were re-signed)
    and its signature verifies (cosignature invalid)."""
    cps = sorted(checkpoints, key=lambda c: c.seq)
    report = Report(checkpoints=len(cps))
    by_seq: dict[int, list[Checkpoint]] = {}
    for cp in cps:
        by_seq.setdefault(cp.seq, []).append(cp)
    bad_sig = {cp.seq for cp in cps if not _safe_check(check_signature, cp)}
    for cp in cps:
        if cp.seq < 1:
            report.finding = Finding(Problem.CHECKPOINT_MISMATCH, cp.seq, "checkpoint before seq 1")
            return report
    cos = sorted(cosignatures, key=lambda c: (c.seq, c.witness))
    report.cosignatures = len(cos)
    cos_by_seq: dict[int, list[Cosignature]] = {}
    for cs in cos:
        cos_by_seq.setdefault(cs.seq, []).append(cs)

    expected = start[0] + 1
    prev = start[1]
    report.last_seq, report.last_hash = start
    it = iter(entries)
    for entry in it:
        report.algs.add(entry.alg)
        if entry.seq > expected:
            report.finding = Finding(
                Problem.REMOVED,
                expected,
                f"entries {expected}..{entry.seq - 1} missing"
                if entry.seq - 1 > expected
                else f"entry {expected} missing",
            )
            return report
        if entry.seq < expected:  # only when the feed is not ordered/unique
            report.finding = Finding(Problem.REORDERED, entry.seq, "seq repeated or out of order")
            return report
        if entry.prev_hash != prev:
            report.finding = _classify_break(entry, expected, prev, it)
            return report
        if recompute(entry) != entry.hash:
            report.finding = Finding(Problem.ALTERED, expected, "content does not match its hash")
            return report
        if entry.typed is not None and entry.typed != typed_fields(entry.subject, entry.body):
            report.finding = Finding(
                Problem.ALTERED, expected, "typed columns do not match the entry's content"
            )
            return report
        for cp in by_seq.get(expected, ()):
            if expected in bad_sig:
                report.finding = Finding(
                    Problem.CHECKPOINT_SIGNATURE, expected, f"checkpoint key {cp.kid}"
                )
                return report
            if cp.hash != entry.hash:
                report.finding = Finding(
                    Problem.CHECKPOINT_MISMATCH,
                    expected,
                    "the chain up to here was rewritten after this checkpoint",
                )
                return report
            report.last_checkpoint = expected
        for cs in cos_by_seq.get(expected, ()):
            when = datetime.fromtimestamp(cs.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if cs.hash != entry.hash:
                report.finding = Finding(
                    Problem.COSIGNED_MISMATCH,
                    expected,
                    f"the chain at the checkpoint of seq {expected} is not what witness "
                    f"{cs.witness} cosigned at {when} (root {cs.hash[:16]}…): history rewritten",
                )
                return report
            if check_cosignature is None or not _safe_check(check_cosignature, cs):
                report.finding = Finding(
                    Problem.COSIGNATURE_INVALID,
                    expected,
                    f"cosignature of witness {cs.witness} (key {cs.kid}) does not verify",
                )
                return report
            report.last_cosigned = expected
        prev = entry.hash
        report.entries += 1
        report.last_seq = expected
        report.last_hash = entry.hash
        expected += 1

    beyond_cs = [cs for cs in cos if cs.seq > report.last_seq]
    beyond = [cp for cp in cps if cp.seq > report.last_seq]
    if beyond_cs and not beyond:
        cs = beyond_cs[-1]
        report.finding = Finding(
            Problem.TRUNCATED,
            report.last_seq + 1,
            f"chain ends at {report.last_seq}, witness {cs.witness} cosigned {cs.seq}",
        )
        return report
    if beyond:
        cp = beyond[-1]
        report.finding = Finding(
            Problem.TRUNCATED,
            report.last_seq + 1,
            f"chain ends at {report.last_seq}, a checkpoint covers {cp.seq}",
        )
        return report
    if head is not None:
        if head.seq > report.last_seq:
            report.finding = Finding(
                Problem.TRUNCATED,
                report.last_seq + 1,
                f"chain ends at {report.last_seq}, the head row says {head.seq}",
            )
        elif head.seq < report.last_seq or head.hash != report.last_hash:
            report.finding = Finding(
                Problem.HEAD_MISMATCH, head.seq, "the head row does not match the chain"
            )
        elif head.stray_seq is not None:
            report.finding = Finding(
                Problem.HEAD_MISMATCH, head.stray_seq, "entry past the head row (not appended)"
            )
    return report


def _safe_check(check: Callable[[Any], bool], item: Any) -> bool:
    try:
        return bool(check(item))
    except Exception:  # noqa: BLE001 - a malformed signature is simply invalid
        return False


def describe(report: Report) -> str:
    """One line for people: OK with counts, or the first problem."""
    if report.finding is None:
        cp = f", last checkpoint at {report.last_checkpoint}" if report.last_checkpoint else ""
        if report.cosignatures:
            cp += (
                f", {report.cosignatures} cosignature(s) by peer nodes"
                f" (last cosigned at {report.last_cosigned})"
            )
        return (
            f"OK: {report.entries} entries, {report.checkpoints} checkpoint(s){cp}; "
            f"head {report.last_seq} {report.last_hash[:16]}…"
        )
    f = report.finding
    return f"FAILED: entry {f.seq}: {f.problem} ({f.detail}); {report.entries} entries verified before it"


# ---------------------------------------------------------------------------------------
# Witnessing: checkpoints as C2SP notes, cosignatures, consistency of a hash chain
#
# A peer node (a witness) keeps the last (size, head hash) it cosigned for each origin.
# The chain is a hash chain, not a Merkle tree: the proof that a new head extends the
# old one is the entries between the two sizes; the witness recomputes the chain from
# the head it holds (docs/audit.md, "Witnessing by peer nodes").

#: First line of the message a witness signs (c2sp.org/tlog-cosignature).
COSIGNATURE_HEADER = "cosignature/v1"
#: C2SP signed-note signature types: Ed25519 cosignature/v1 is 0x04; SM2 has no
#: registered type, tongban uses 0xff with the same key-hash construction.
_NOTE_SIG_TYPE = {"EdDSA": b"\x04", "SM2": b"\xff"}


def origin_of(node_id: str) -> str:
    """The log origin of a node's chain (first line of its checkpoint notes)."""
    return f"tongban.{node_id}/audit"


def witness_name(node_id: str) -> str:
    """The name a node cosigns under."""
    return f"tongban.{node_id}/witness"


def checkpoint_note(origin: str, size: int, hash_hex: str) -> str:
    """The body of a checkpoint in the c2sp.org/tlog-checkpoint shape: origin, tree size
    (the chain's last seq) and root hash (the chain's head hash), base64, one per line."""
    root = base64.b64encode(bytes.fromhex(hash_hex)).decode("ascii")
    return f"{origin}\n{int(size)}\n{root}\n"


def cosignature_message(note: str, timestamp: int) -> bytes:
    """What a witness signs (c2sp.org/tlog-cosignature): a header, the time in seconds
    since the epoch, then the checkpoint note."""
    return f"{COSIGNATURE_HEADER}\ntime {int(timestamp)}\n{note}".encode()


def note_key_hash(name: str, alg: str, public_raw: bytes) -> bytes:
    """The 4-byte key id of a signed-note signature line: the first bytes of
    SHA-256(name || 0x0A || type || public key)."""
    sig_type = _NOTE_SIG_TYPE.get(alg, b"\xff")
    return digest("sha-256", name.encode() + b"\n" + sig_type + public_raw)[:4]


def cosignature_line(name: str, key_hash: bytes, timestamp: int, signature: bytes) -> str:
    """A signed-note signature line carrying a cosignature: ``— name base64(key id ||
    timestamp (8 bytes, big-endian) || signature)``."""
    blob = key_hash + int(timestamp).to_bytes(8, "big") + signature
    return f"\u2014 {name} {base64.b64encode(blob).decode('ascii')}\n"


@dataclass(frozen=True)
class Cosignature:
    """A witness's statement that it saw the chain of this node at (seq, hash)."""

    seq: int
    hash: str
    witness: str  # node id of the witness
    kid: str
    alg: str
    timestamp: int  # seconds since the epoch
    signature: str  # base64url


#: Checks a cosignature's signature; the service binds it to the witnesses' audit keys.
CosignatureCheck = Callable[[Cosignature], bool]


class Verdict(StrEnum):
    """What a witness makes of a new checkpoint of an origin."""

    FIRST = "first"  # nothing seen before for this origin: accepted as is
    CONSISTENT = "consistent"  # extends the head cosigned before
    SAME = "same"  # the head cosigned before, again
    INCONSISTENT = "inconsistent"  # contradicts what was cosigned: an alarm, no cosignature
    NEED_EARLIER = "need-earlier"  # the proof starts past what this witness holds
    STALE = "stale"  # older than what was cosigned, and not held: nothing to check


@dataclass(frozen=True)
class Consistency:
    verdict: Verdict
    detail: str = ""


def check_consistency(
    known: tuple[int, str] | None,
    seq: int,
    hash_: str,
    proof_from: int,
    proof: Iterable[Entry],
    held: Callable[[int], str | None] = lambda seq: None,
) -> Consistency:
    """Whether the checkpoint (seq, hash_) is consistent with `known`, the last (seq,
    hash) this witness cosigned for the origin (None: never).

    `proof` holds the origin's entries proof_from+1..seq; the witness recomputes the
    chain from its own known hash over the entries after its known seq (the earlier ones
    are skipped) and needs to arrive at `hash_`. `held(seq)` is the hash of an older
    checkpoint this witness cosigned at that seq, if any (for a checkpoint older than
    `known`)."""
    if known is None:
        return Consistency(Verdict.FIRST)
    k_seq, k_hash = known
    if seq < k_seq:
        older = held(seq)
        if older is None:
            return Consistency(Verdict.STALE, f"older than the cosigned size {k_seq}")
        if older != hash_:
            return Consistency(
                Verdict.INCONSISTENT,
                f"size {seq} was cosigned with root {older[:16]}…, now {hash_[:16]}…",
            )
        return Consistency(Verdict.SAME)
    if seq == k_seq:
        if hash_ != k_hash:
            return Consistency(
                Verdict.INCONSISTENT,
                f"size {seq} was cosigned with root {k_hash[:16]}…, now {hash_[:16]}…",
            )
        return Consistency(Verdict.SAME)
    if proof_from > k_seq:
        return Consistency(
            Verdict.NEED_EARLIER, f"proof starts at {proof_from}, cosigned size is {k_seq}"
        )
    running = k_hash
    expected = k_seq + 1
    for entry in proof:
        if entry.seq <= k_seq:
            continue
        if entry.seq != expected:
            return Consistency(
                Verdict.INCONSISTENT, f"proof entry {expected} missing (got {entry.seq})"
            )
        if entry.prev_hash != running or recompute(entry, running) != entry.hash:
            return Consistency(
                Verdict.INCONSISTENT,
                f"entry {entry.seq} does not extend the chain cosigned at size {k_seq}"
                if expected == k_seq + 1
                else f"entry {entry.seq} does not link to entry {entry.seq - 1}",
            )
        running = entry.hash
        if expected == seq:
            break
        expected += 1
    else:
        return Consistency(Verdict.INCONSISTENT, f"proof ends before size {seq}")
    if running != hash_:
        return Consistency(Verdict.INCONSISTENT, f"the proof does not end at root {hash_[:16]}…")
    return Consistency(Verdict.CONSISTENT)


def is_witness_traffic(entry: Entry) -> bool:
    """An entry recording a witnessing message (sent or applied): the checkpoint job does
    not sign a checkpoint for those alone, or two nodes would witness each other's
    witnessing forever."""
    if entry.kind not in ("message.sent", "message.applied"):
        return False
    try:
        body = json.loads(entry.body)
    except ValueError:
        return False
    return isinstance(body, dict) and str(body.get("type", "")).startswith("audit.")

"""Typed payloads of the audit context's messages between nodes (witnessing).

`audit.checkpoint` (origin -> witness): the origin's signed checkpoint, its note, its
audit public key and the entries since the head the witness last cosigned (the
consistency proof of a hash chain, attached when the message leaves the node).
`audit.cosigned` (witness -> origin): the witness's cosignature and its audit public key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field

from tongban.audit import domain
from tongban.exchange.service import Payload

Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
NodeId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Kid = Annotated[str, Field(min_length=1, max_length=64)]
SigAlg = Literal["EdDSA", "SM2"]
B64u = Annotated[str, Field(min_length=1, max_length=400, pattern=r"^[A-Za-z0-9_-]+$")]
#: Entries a proof may carry (bounded: a message is at most 64 MiB anyway).
MAX_PROOF_ENTRIES = 50_000


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time zone is required")
    return value


Instant = Annotated[datetime, AfterValidator(_aware)]


class _Strict(Payload):
    """Unknown fields refused, no coercion (the exchange's base of every payload)."""


class ProofEntry(_Strict):
    """One entry of the origin's chain, as stored (everything its hash covers)."""

    seq: int = Field(ge=1)
    at: Instant
    kind: str = Field(max_length=40)
    subject: str = Field(max_length=120)
    actor: str = Field(max_length=120)
    body: str = Field(max_length=1_000_000)
    alg: Literal["sha-256", "sm3"]
    prev_hash: Hex64
    hash: Hex64

    def entry(self) -> domain.Entry:
        return domain.Entry(
            self.seq,
            self.at,
            self.kind,
            self.subject,
            self.actor,
            self.body,
            self.alg,
            self.prev_hash,
            self.hash,
        )


class PublicJwk(_Strict):
    """An audit public key (Ed25519 OKP or SM2 EC), as keys.public_key(row).jwk()."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    kty: Literal["OKP", "EC"]


class CheckpointMessage(_Strict):
    """`audit.checkpoint`: a checkpoint for a witness to check and cosign."""

    origin: str = Field(max_length=80)
    node: NodeId
    seq: int = Field(ge=1)
    hash: Hex64
    at: Instant
    kid: Kid
    alg: SigAlg
    signature: B64u
    #: domain.checkpoint_note(origin, seq, hash)
    note: str = Field(max_length=300)
    key: PublicJwk
    #: The proof holds the entries proof_from+1..seq.
    proof_from: int = Field(ge=0)
    proof: list[ProofEntry] = Field(default_factory=list, max_length=MAX_PROOF_ENTRIES)


class CosignedMessage(_Strict):
    """`audit.cosigned`: a witness's cosignature of one of the receiver's checkpoints."""

    origin: str = Field(max_length=80)
    node: NodeId  # the origin node (the receiver)
    seq: int = Field(ge=1)
    hash: Hex64
    witness: NodeId
    witness_name: str = Field(max_length=80)
    timestamp: int = Field(ge=0)
    kid: Kid
    alg: SigAlg
    signature: B64u
    key: PublicJwk

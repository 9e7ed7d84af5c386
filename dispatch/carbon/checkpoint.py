"""Signed checkpoints of the carbon ledger: what a prefix of the chain was, provably.

Role: build, sign (Ed25519) and check a checkpoint, and find where a ledger stops extending
one. A checkpoint kept off the box proves the ledger's first ``records`` rows: a forger with
file access can rewrite the tail and the head row, but not the checkpoint taken before. The
one home of ``cryptography``. Pure: no I/O, no wall clock (the caller passes the time and the
key bytes); imports ``dispatch.types`` and the standard library.

A checkpoint document (JSON)::

    {"checkpoint": BODY, "signature": HEX}

    BODY = {"format": FORMAT, "created_utc": "YYYY-MM-DDTHH:MM:SSZ", "public_key": HEX,
            "chains": {NAME: {"records": n, "head": HASH, "end_utc": TEXT or null,
                              "fingerprints": BASE64}}}

``signature`` is Ed25519 over ``canonical(BODY)`` (sorted-key JSON without spaces, UTF-8).
``fingerprints`` holds the first ``FINGERPRINT_BYTES`` bytes of every row's ``record_hash``
in order: the full ``head`` proves the prefix, the fingerprints name the first row where a
ledger departs from it (a rewritten row, not the last one).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dispatch.types import InputError

FORMAT = "dispatch-carbon-checkpoint/1"
FINGERPRINT_BYTES = 8

__all__ = [
    "FORMAT",
    "Divergence",
    "canonical",
    "divergence",
    "generate_key",
    "ledger_chains",
    "make_checkpoint",
    "private_key",
    "public_key_hex",
    "read_checkpoint",
]


def canonical(body: Mapping[str, Any]) -> bytes:
    """Sorted-key JSON without spaces, UTF-8: the bytes that are signed."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def generate_key() -> bytes:
    """A new Ed25519 private key as unencrypted PKCS#8 PEM bytes."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key(pem: bytes, where: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM bytes read from ``where``.

    Raises
    ------
    InputError
        Naming ``where`` when the bytes are not an unencrypted Ed25519 PEM key.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{where}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{where}: the key is not Ed25519 (make one with dispatch carbon keygen)")
    return key


def public_key_hex(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key of ``key`` as 64 hex digits."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def fingerprints(hashes: Sequence[str]) -> str:
    """Base64 of the first ``FINGERPRINT_BYTES`` bytes of each hex hash, concatenated."""
    n = 2 * FINGERPRINT_BYTES
    return base64.b64encode(bytes.fromhex("".join(h[:n] for h in hashes))).decode()


def chain_state(hashes: Sequence[str], end_utc: str | None) -> dict[str, Any]:
    """The checkpoint entry of one chain from its rows' ``record_hash`` in order."""
    return {
        "records": len(hashes),
        "head": hashes[-1] if hashes else "",
        "end_utc": end_utc,
        "fingerprints": fingerprints(hashes),
    }


def ledger_chains(
    intervals: Sequence[Mapping[str, Any]], instruments: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The checkpoint entries of both chains from their stored rows in order.

    Parameters
    ----------
    intervals : sequence of mapping
        The ledger's rows (``record_hash``, ``end_utc``), as ``Store.ledger()`` gives them.
    instruments : sequence of mapping
        The carbon instruments' rows (``record_hash``, ``recorded_utc``).

    Returns
    -------
    dict
        ``{"intervals": chain_state(...), "instruments": chain_state(...)}``; a chain's
        ``end_utc`` is its last row's ``end_utc`` (intervals: where the daemon resumes) or
        ``recorded_utc`` (instruments), None when empty.
    """
    end = str(intervals[-1]["end_utc"]) if intervals else None
    inst_end = str(instruments[-1]["recorded_utc"]) if instruments else None
    return {
        "intervals": chain_state([str(r["record_hash"]) for r in intervals], end),
        "instruments": chain_state([str(r["record_hash"]) for r in instruments], inst_end),
    }


def make_checkpoint(
    chains: Mapping[str, dict[str, Any]], created_utc: str, key: Ed25519PrivateKey
) -> dict[str, Any]:
    """A signed checkpoint document.

    Parameters
    ----------
    chains : mapping
        Chain name (``"intervals"``, ``"instruments"``) -> ``chain_state(...)``.
    created_utc : str
        When it was taken, ``YYYY-MM-DDTHH:MM:SSZ``.
    key : Ed25519PrivateKey
        The signing key (kept outside the state directory).
    """
    body = {
        "format": FORMAT,
        "created_utc": created_utc,
        "public_key": public_key_hex(key),
        "chains": {k: dict(v) for k, v in sorted(chains.items())},
    }
    return {"checkpoint": body, "signature": key.sign(canonical(body)).hex()}


def read_checkpoint(text: str, where: str, trusted_key: str | None = None) -> dict[str, Any]:
    """The body of a checkpoint document whose signature checks out.

    Parameters
    ----------
    text : str
        The document (JSON).
    where : str
        Its file name, for messages.
    trusted_key : str, optional
        64 hex digits: the signature must be by this key (else by the key the body names).

    Raises
    ------
    InputError
        Naming ``where`` for text that is not a checkpoint, a bad or foreign signature.
    """
    try:
        doc = json.loads(text)
        body, signature = doc["checkpoint"], bytes.fromhex(doc["signature"])
        key_hex = body["public_key"]
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex))
        if body["format"] != FORMAT:
            raise ValueError(f"format {body['format']!r} is not {FORMAT!r}")
        for name, state in body["chains"].items():
            _check_state(name, state)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise InputError(f"{where}: not a carbon-ledger checkpoint ({exc!r})") from None
    if trusted_key is not None and key_hex != trusted_key.lower():
        raise InputError(
            f"{where}: signed by key {key_hex[:16]}..., not the trusted key {trusted_key[:16]}..."
        )
    try:
        key.verify(signature, canonical(body))
    except InvalidSignature:
        raise InputError(f"{where}: the signature does not match: the file was edited") from None
    return body


def _check_state(name: str, state: Mapping[str, Any]) -> None:
    n = state["records"]
    if not isinstance(n, int) or n < 0 or not isinstance(state["head"], str):
        raise ValueError(f"chain {name!r}: records and head must be a count and a hash")
    if len(base64.b64decode(state["fingerprints"], validate=True)) != n * FINGERPRINT_BYTES:
        raise ValueError(f"chain {name!r}: {n} records need {n * FINGERPRINT_BYTES} bytes")


@dataclass(frozen=True)
class Divergence:
    """Where a chain stops extending a checkpoint.

    Attributes
    ----------
    index : int
        Position of the first row that differs from the checkpoint, or the number of rows
        when rows it proves are missing at the end.
    kind : str
        ``"rewritten"`` (a row differs) or ``"truncated"`` (rows are missing).
    reason : str
        What differs, naming the checkpoint's time.
    """

    index: int
    kind: str
    reason: str


def divergence(hashes: Sequence[str], state: Mapping[str, Any], created: str) -> Divergence | None:
    """First row of a chain (``record_hash`` in order) that departs from a checkpoint entry.

    None when the chain extends it: its first ``records`` rows have the checkpoint's
    fingerprints and the row at ``records - 1`` has the checkpoint's head.
    """
    n = int(state["records"])
    proved = base64.b64decode(state["fingerprints"])
    have = bytes.fromhex("".join(h[: 2 * FINGERPRINT_BYTES] for h in hashes[:n]))
    w = FINGERPRINT_BYTES
    for i in range(min(n, len(hashes))):
        if have[i * w : (i + 1) * w] != proved[i * w : (i + 1) * w]:
            return Divergence(i, "rewritten", f"differs from the checkpoint of {created}")
    if len(hashes) < n:
        return Divergence(
            len(hashes),
            "truncated",
            f"the checkpoint of {created} proves {n} rows, the ledger has {len(hashes)}",
        )
    if n and hashes[n - 1] != state["head"]:  # fingerprints collided: the full head decides
        return Divergence(n - 1, "rewritten", f"differs from the head of the checkpoint {created}")
    return None

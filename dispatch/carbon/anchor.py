"""Anchoring the ledger off the box: keys, signed checkpoint files, the stored ledger's audit.

Role: the ``dispatch carbon keygen`` and ``dispatch carbon checkpoint`` commands, reading
checkpoint files for ``verify --checkpoint``, and ``check_store`` (the audit of what a store
holds, shared by ``verify``, ``report`` and ``checkpoint``). Reads and writes files and the
wall clock; imports ``dispatch.carbon``'s ``audit`` and ``checkpoint``, ``store``, ``config``
and ``types``; never ``daemon``.

The signing key must live outside the state directory (and outside the store's folder):
whoever can edit the ledger there could otherwise sign a forged checkpoint too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dispatch.carbon import audit, checkpoint
from dispatch.config import SiteConfig, load_config
from dispatch.store import Store, state_dir
from dispatch.types import InputError

EXIT_TAMPERED = 3
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

__all__ = ["EXIT_TAMPERED", "add_commands", "check_store", "load_checkpoints", "open_store"]


def now_utc() -> str:
    """The wall clock as ledger text ``YYYY-MM-DDTHH:MM:SSZ``."""
    return dt.datetime.now(dt.UTC).strftime(TIME_FORMAT)


def open_store(config: SiteConfig, must_exist: bool = True) -> Store:
    """The site's store; one that is not there yet is opened (created) only to add offsets:
    verifying or reporting on a new empty store would report nothing as intact."""
    return Store.from_config(config, state_dir(), must_exist)


def check_store(
    store: Store,
    noted_head: str | None = None,
    checkpoints: Sequence[Mapping[str, Any]] = (),
) -> audit.LedgerCheck:
    """The stored ledger checked against its chain, head row, triggers, the clock and the
    given checkpoint bodies (and a head noted elsewhere)."""
    return audit.verify_rows(
        store.ledger(with_seq=True),
        head=store.ledger_head(),
        noted_head=noted_head,
        checkpoints=checkpoints,
        missing_triggers=store.missing_triggers(),
        now_utc=now_utc(),
    )


def load_checkpoints(paths: Sequence[str], trusted_key: str | None) -> list[dict[str, Any]]:
    """The signature-checked bodies of checkpoint files (``InputError`` naming a bad one)."""
    out = []
    for p in paths:
        try:
            text = Path(p).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"checkpoint {p}: cannot read it ({exc.strerror})") from None
        out.append(checkpoint.read_checkpoint(text, f"checkpoint {p}", trusted_key))
    return out


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _signing_key(config: SiteConfig, flag: str | None, store: Store) -> Any:
    """The private key named by ``--key`` or ``[carbon] checkpoint_key_path``, refused when it
    lies in the state directory or beside the store."""
    name = flag or config.carbon.checkpoint_key_path
    if not name:
        raise InputError(
            "checkpoint: no signing key: pass --key FILE or set [carbon] checkpoint_key_path "
            "(make one with `dispatch carbon keygen --out FILE`, outside the state directory)"
        )
    path = Path(name).expanduser().resolve()
    homes = [Path(store.path).resolve().parent]
    if state_dir():
        homes.append(Path(str(state_dir())).resolve())
    for home in homes:
        if _inside(path, home):
            raise InputError(
                f"checkpoint: key {path} lies in {home}, beside the ledger: whoever can edit "
                "the ledger could sign a forged checkpoint; keep the key elsewhere"
            )
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise InputError(f"checkpoint: key {path}: cannot read it ({exc.strerror})") from None
    return checkpoint.private_key(pem, f"key {path}")


def cmd_keygen(args: argparse.Namespace) -> int:
    """Write a new Ed25519 private key (mode 0600) and print its public key."""
    out = Path(args.out)
    if out.exists():
        raise InputError(f"keygen: {out} exists; a key is never overwritten")
    pem = checkpoint.generate_key()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = checkpoint.public_key_hex(checkpoint.private_key(pem, str(out)))
    print(json.dumps({"key": str(out), "public_key": public}))
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    """Sign a checkpoint of the verified ledger (records, head, per-row fingerprints)."""
    config = load_config(args.config)
    with open_store(config) as store:
        key = _signing_key(config, args.key, store)
        check = check_store(store)
        if not check.ok:
            print(
                f"dispatch: refusing to checkpoint a ledger that does NOT verify "
                f"({check.kind} at row {check.index}: {check.reason})",
                file=sys.stderr,
            )
            return EXIT_TAMPERED
        held = audit.verify_instruments(store.instruments(), store.instruments_head())
        if not held.ok:
            print(
                f"dispatch: refusing to checkpoint carbon instruments that do NOT verify "
                f"({held.kind} at record {held.index}: {held.reason})",
                file=sys.stderr,
            )
            return EXIT_TAMPERED
        rows, inst = store.ledger(), store.instruments()
    hashes = [str(r["record_hash"]) for r in rows]
    doc = checkpoint.make_checkpoint(checkpoint.ledger_chains(rows, inst), now_utc(), key)
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    if args.out:
        out = Path(args.out)
        if out.exists():
            raise InputError(f"checkpoint: {out} exists; write each checkpoint to a new file")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        head = hashes[-1] if hashes else ""
        public = doc["checkpoint"]["public_key"]
        print(json.dumps({"out": str(out), "records": len(hashes), "head": head,
                          "public_key": public}))
    else:
        sys.stdout.write(text)
    return 0


def add_commands(csub: Any) -> None:
    """The ``keygen`` and ``checkpoint`` actions of ``dispatch carbon``."""
    key = csub.add_parser(
        "keygen",
        help="make the Ed25519 key that signs ledger checkpoints",
        description="Writes a new private key (PEM, mode 0600; never overwrites) and prints "
        "its public key. Keep it outside the state directory; pin the public key in "
        "[carbon] checkpoint_public_key where the ledger is verified.",
    )
    key.add_argument("--out", required=True, help="key file to create")
    key.set_defaults(func=cmd_keygen)
    cp = csub.add_parser(
        "checkpoint",
        help="sign a checkpoint of the verified ledger, to keep off the box",
        description="Exit 0 and the checkpoint (JSON: records, head hash, per-row "
        "fingerprints, time, public key, Ed25519 signature); exit 3 if the ledger does not "
        "verify. `verify --checkpoint FILE` later proves the ledger still extends it.",
    )
    cp.add_argument("--config", required=True, help="site configuration (TOML)")
    cp.add_argument("--key", help="private key file (default: [carbon] checkpoint_key_path)")
    cp.add_argument("--out", help="file to write (default: standard output)")
    cp.set_defaults(func=cmd_checkpoint)

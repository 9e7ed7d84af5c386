"""Signed ledger checkpoints: the pure signing and divergence rules, ``keygen`` and
``checkpoint`` on a real SQLite store, and the head-row and trigger checks of ``verify``."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
from pathlib import Path

import pytest

from dispatch.__main__ import main
from dispatch.carbon import checkpoint
from dispatch.config import load_config
from dispatch.types import InputError
from tests import test_cli_carbon as cli_site

HASHES = [f"{i:02x}" * 32 for i in range(10)]
site = cli_site.site  # the fixture: a store with 8 recorded intervals
grow = cli_site.grow


def signed(hashes: list[str], key=None) -> tuple[dict, object]:
    key = key or checkpoint.private_key(checkpoint.generate_key(), "test key")
    state = checkpoint.chain_state(hashes, "2026-06-01T02:00:00Z")
    return checkpoint.make_checkpoint({"intervals": state}, "2026-06-01T02:01:00Z", key), key


def test_a_checkpoint_round_trips_and_any_edit_breaks_its_signature():
    doc, key = signed(HASHES)
    text = json.dumps(doc)
    body = checkpoint.read_checkpoint(text, "cp.json", checkpoint.public_key_hex(key))
    state = body["chains"]["intervals"]
    assert (state["records"], state["head"]) == (10, HASHES[-1])
    assert len(base64.b64decode(state["fingerprints"])) == 10 * checkpoint.FINGERPRINT_BYTES
    doc["checkpoint"]["chains"]["intervals"]["records"] = 9
    doc["checkpoint"]["chains"]["intervals"]["fingerprints"] = checkpoint.fingerprints(HASHES[:9])
    with pytest.raises(InputError, match=r"cp.json: the signature does not match"):
        checkpoint.read_checkpoint(json.dumps(doc), "cp.json")


def test_a_checkpoint_by_another_key_is_refused_when_a_key_is_pinned():
    doc, _ = signed(HASHES)
    other = checkpoint.private_key(checkpoint.generate_key(), "other")
    with pytest.raises(InputError, match="not the trusted key"):
        checkpoint.read_checkpoint(json.dumps(doc), "cp.json", checkpoint.public_key_hex(other))
    with pytest.raises(InputError, match=r"cp\.json: not a carbon-ledger checkpoint"):
        checkpoint.read_checkpoint('{"checkpoint": {}}', "cp.json")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (HASHES, None),  # the same ledger
        ([*HASHES, "ff" * 32], None),  # grown: it extends the checkpoint
        ([*HASHES[:4], "ee" * 32, *HASHES[5:]], (4, "rewritten")),  # row 4 rewritten
        (HASHES[:7], (7, "truncated")),  # rows 7.. gone
        (["dd" * 32, *HASHES], (0, "rewritten")),  # a row in front: row 0 differs
    ],
)
def test_divergence_names_the_first_row_that_differs(now, expected):
    state = checkpoint.chain_state(HASHES, "t")
    d = checkpoint.divergence(now, state, "2026-06-01T02:01:00Z")
    assert (None if d is None else (d.index, d.kind)) == expected


def test_fingerprints_that_collide_still_leave_the_full_head_to_decide():
    state = checkpoint.chain_state(HASHES, "t")
    forged = [*HASHES[:-1], HASHES[-1][:16] + "0" * 48]  # same first 8 bytes, other hash
    d = checkpoint.divergence(forged, state, "then")
    assert (d.index, d.kind) == (9, "rewritten")


# ------------------------------------------------------------------------------ the CLI
@pytest.fixture
def key(tmp_path: Path, capsys: pytest.CaptureFixture) -> tuple[Path, str]:
    """A signing key outside the store's folder (tmp_path) and its public key."""
    path = tmp_path.parent / f"{tmp_path.name}-keys" / "ledger.pem"
    assert main(["carbon", "keygen", "--out", str(path)]) == 0
    public = json.loads(capsys.readouterr().out)["public_key"]
    return path, public


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(key, capsys):
    path, public = key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(public) == 64
    assert main(["carbon", "keygen", "--out", str(path)]) == 1
    assert "exists; a key is never overwritten" in capsys.readouterr().err


def test_a_key_beside_the_ledger_is_refused(site: Path, tmp_path: Path, capsys):
    inside = tmp_path / "ledger.pem"  # the store is tmp_path / site.sqlite3
    assert main(["carbon", "keygen", "--out", str(inside)]) == 0
    capsys.readouterr()
    assert main(["carbon", "checkpoint", "--config", str(site), "--key", str(inside)]) == 1
    assert "beside the ledger" in capsys.readouterr().err


def test_checkpoint_then_verify_a_grown_ledger(site: Path, key, tmp_path: Path, capsys):
    path, public = key
    out = tmp_path / "cp" / "2026-06-01.json"
    assert (
        main(["carbon", "checkpoint", "--config", str(site), "--key", str(path), "--out", str(out)])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert (summary["records"], summary["public_key"]) == (8, public)
    assert (
        main(["carbon", "checkpoint", "--config", str(site), "--key", str(path), "--out", str(out)])
        == 1
    )
    assert "exists" in capsys.readouterr().err
    grow(site, 3)
    args = ["carbon", "verify", "--config", str(site), "--checkpoint", str(out)]
    assert main([*args, "--public-key", public, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ok"], doc["records"], doc["checkpoints"][0]["pinned"]) == (True, 11, True)
    stranger = checkpoint.public_key_hex(checkpoint.private_key(checkpoint.generate_key(), "x"))
    assert main([*args, "--public-key", stranger]) == 1
    assert "not the trusted key" in capsys.readouterr().err


def raw(cfg: Path, *statements: str) -> None:
    conn = sqlite3.connect(load_config(cfg).store.path, isolation_level=None)
    for sql in statements:
        conn.execute(sql)
    conn.close()


@pytest.mark.parametrize(
    ("statements", "kind", "index", "words"),
    [
        (["UPDATE ledger_head SET records = 9"], "truncated", 8, "the head row counts 9"),
        (["UPDATE ledger_head SET records = 7"], "appended", 7, "added without the daemon"),
        (
            ["UPDATE ledger_head SET end_utc = '2026-06-01T01:00:00Z'"],
            "head",
            8,
            "where the daemon resumes",
        ),
        (["UPDATE ledger_head SET record_hash = 'ab'"], "rewritten", 7, "it was rewritten"),
        (["DROP TRIGGER ledger_no_update"], "unprotected", None, "ledger_no_update are missing"),
    ],
)
def test_verify_checks_the_head_row_and_the_triggers(
    site: Path, statements, kind, index, words, capsys
):
    raw(site, *statements)
    assert main(["carbon", "verify", "--config", str(site), "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert (doc["kind"], doc["index"]) == (kind, index) and words in doc["reason"]


def test_checkpoint_refuses_a_ledger_that_does_not_verify(site: Path, key, capsys):
    raw(site, "DROP TRIGGER ledger_no_delete")
    assert main(["carbon", "checkpoint", "--config", str(site), "--key", str(key[0])]) == 3
    assert "refusing to checkpoint" in capsys.readouterr().err

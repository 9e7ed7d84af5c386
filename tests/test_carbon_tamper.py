"""The tamper table of issue 24: every tamper of a real SQLite store, made after a signed
checkpoint was taken, is detected by ``dispatch carbon verify --checkpoint`` with exit 3 and
the first row that differs named (not one late).

The store holds 8 intervals of 15 min (seq 1..8, index 0..7) from 2026-06-01T00:00Z and four
carbon instruments (seq 1..4, index 0..3: a CCER purchase, its partial retirement, a GEC
certificate, the utility bill's June). A forger has the file: triggers are dropped before
editing and, where the row says so, hashes are recomputed with the ledger's own code and the
head row is moved to match.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from dispatch.__main__ import main
from dispatch.carbon import chain, compose
from dispatch.config import load_config
from dispatch.store import Store
from tests import test_carbon_instruments as cases
from tests import test_cli_carbon as cli_site

site = cli_site.site  # the fixture: a store with 8 recorded intervals


def connect(cfg: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(load_config(cfg).store.path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS ledger_no_update")
    conn.execute("DROP TRIGGER IF EXISTS ledger_no_delete")
    return conn


def restore_triggers(conn: sqlite3.Connection) -> None:
    """The forger puts the append-only triggers back (the schema's own statements)."""
    for name in ("update", "delete"):
        conn.execute(
            f"CREATE TRIGGER ledger_no_{name} BEFORE {name.upper()} ON ledger_intervals "
            "BEGIN SELECT RAISE(ABORT, 'ledger_intervals is append-only'); END"
        )


def records(cfg: Path) -> list[chain.IntervalRecord]:
    with Store.from_config(load_config(cfg)) as store:
        return compose.records_from_rows(store.ledger())


def write(conn: sqlite3.Connection, seq: int, rec: chain.IntervalRecord) -> None:
    cols = ", ".join(("seq", *chain.RECORD_FIELDS))
    marks = ", ".join("?" * (1 + len(chain.RECORD_FIELDS)))
    conn.execute(f"INSERT OR REPLACE INTO ledger_intervals ({cols}) VALUES ({marks})", (seq, *rec))


def move_head(conn: sqlite3.Connection) -> None:
    """The head row made to match the last row, as the daemon's append would."""
    conn.execute(
        "UPDATE ledger_head SET record_hash = (SELECT record_hash FROM ledger_intervals ORDER "
        "BY seq DESC LIMIT 1), end_utc = (SELECT end_utc FROM ledger_intervals ORDER BY seq "
        "DESC LIMIT 1), records = (SELECT count(*) FROM ledger_intervals)"
    )


def rechain_from(cfg: Path, k: int, edit: Callable[[chain.IntervalRecord], chain.IntervalRecord]):
    """Edit row index ``k`` and recompute every hash from it to the end, head row included."""
    recs = records(cfg)
    recs[k] = edit(recs[k])
    tail = chain.chain(recs[k:], recs[k - 1].record_hash if k else chain.GENESIS)
    conn = connect(cfg)
    for i, rec in enumerate(tail, start=k):
        write(conn, i + 1, rec)
    move_head(conn)
    restore_triggers(conn)
    conn.close()


def edit_input(cfg: Path) -> None:
    connect(cfg).execute("UPDATE ledger_intervals SET import_kwh = 99.0 WHERE seq = 3")


def edit_derived(cfg: Path) -> None:
    connect(cfg).execute("UPDATE ledger_intervals SET location_kg_co2 = 0.0 WHERE seq = 3")


def delete(cfg: Path) -> None:
    connect(cfg).execute("DELETE FROM ledger_intervals WHERE seq = 4")


def swap(cfg: Path) -> None:
    recs = records(cfg)
    conn = connect(cfg)
    write(conn, 4, recs[4])
    write(conn, 5, recs[3])


def insert_before_first(cfg: Path) -> None:
    first = records(cfg)[0]
    forged = first._replace(start_utc="2026-05-31T23:45:00Z", end_utc="2026-06-01T00:00:00Z")
    write(connect(cfg), 0, chain.chain([forged])[0])


def recompute_one_row(cfg: Path) -> None:
    recs = records(cfg)
    edited = recs[2]._replace(location_kg_co2=0.0)
    write(connect(cfg), 3, chain.chain([edited], recs[1].record_hash)[0])


def rewrite_tail_with_head(cfg: Path) -> None:
    rechain_from(cfg, 2, lambda r: r._replace(import_kwh=1.0, location_kg_co2=0.5703))


def truncate_with_head(cfg: Path) -> None:
    conn = connect(cfg)
    conn.execute("DELETE FROM ledger_intervals WHERE seq >= 7")
    move_head(conn)
    restore_triggers(conn)


def append_with_head(cfg: Path, start: str, end: str) -> None:
    recs = records(cfg)
    forged = recs[-1]._replace(start_utc=start, end_utc=end)
    conn = connect(cfg)
    write(conn, len(recs) + 1, chain.chain([forged], recs[-1].record_hash)[0])
    move_head(conn)
    restore_triggers(conn)


def append_backdated(cfg: Path) -> None:  # an interval before the ledger began
    append_with_head(cfg, "2026-05-31T23:00:00Z", "2026-05-31T23:15:00Z")


def append_from_the_future(cfg: Path) -> None:
    append_with_head(cfg, "2099-01-01T00:00:00Z", "2099-01-01T00:15:00Z")


def drop_triggers(cfg: Path) -> None:
    connect(cfg).close()


def instrument_conn(cfg: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(load_config(cfg).store.path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS instruments_no_update")
    conn.execute("DROP TRIGGER IF EXISTS instruments_no_delete")
    return conn


def restore_instrument_triggers(conn: sqlite3.Connection) -> None:
    """The forger puts the instruments' append-only triggers back."""
    for name in ("update", "delete"):
        conn.execute(
            f"CREATE TRIGGER instruments_no_{name} BEFORE {name.upper()} ON carbon_instruments "
            "BEGIN SELECT RAISE(ABORT, 'carbon_instruments is append-only'); END"
        )
    conn.close()


def instrument_rows(cfg: Path) -> list[dict]:
    with Store.from_config(load_config(cfg)) as store:
        return store.instruments()


def edit_offset(cfg: Path) -> None:  # the retirement's 50 t made 120 t, hashes left alone
    conn = instrument_conn(cfg)
    body = json.loads(instrument_rows(cfg)[1]["body_json"])
    conn.execute(
        "UPDATE carbon_instruments SET body_json = ? WHERE seq = 2",
        (json.dumps({**body, "tonnes": 120.0}, sort_keys=True),),
    )
    restore_instrument_triggers(conn)


def insert_forged_offset(cfg: Path, recorded: str, move_head: bool) -> None:
    rows = instrument_rows(cfg)
    forged = cases.retirement(tonnes=70.0, cancellation_number="CN-X")
    rec = cases.instruments.chained("retirement", recorded, forged, rows[-1]["record_hash"])
    conn = instrument_conn(cfg)
    conn.execute(
        "INSERT INTO carbon_instruments (kind, recorded_utc, body_json, prev_hash, "
        "record_hash) VALUES (?, ?, ?, ?, ?)",
        (
            rec.kind,
            rec.recorded_utc,
            json.dumps(forged, sort_keys=True),
            rec.prev_hash,
            rec.record_hash,
        ),
    )
    if move_head:
        conn.execute(
            "UPDATE instruments_head SET record_hash = ?, recorded_utc = ?, records = records + 1",
            (rec.record_hash, recorded),
        )
    restore_instrument_triggers(conn)


def insert_forged_offset_by_sql(cfg: Path) -> None:
    insert_forged_offset(cfg, "2026-06-21T00:00:00Z", move_head=False)


def insert_forged_offset_backdated(cfg: Path) -> None:  # head moved, dated before the last
    insert_forged_offset(cfg, "2026-06-01T00:00:00Z", move_head=True)


def edit_bill_row(cfg: Path) -> None:  # June's billed 800 kWh made 1000 kWh, hashes left
    conn = instrument_conn(cfg)
    body = json.loads(instrument_rows(cfg)[3]["body_json"])
    conn.execute(
        "UPDATE carbon_instruments SET body_json = ? WHERE seq = 4",
        (json.dumps({**body, "import_kwh": 1000.0}, sort_keys=True),),
    )
    restore_instrument_triggers(conn)


def edit_certificate(cfg: Path) -> None:  # 0.4 MWh made 0.8 MWh; hashes from it and head
    rows = instrument_rows(cfg)  # recomputed (the bill record after it rechained too)
    conn = instrument_conn(cfg)
    prev = rows[1]["record_hash"]
    for row in rows[2:]:
        body = json.loads(row["body_json"])
        if row["kind"] == "certificate":
            body["mwh"] = 0.8
        rec = cases.instruments.chained(row["kind"], row["recorded_utc"], body, prev)
        conn.execute(
            "UPDATE carbon_instruments SET body_json = ?, prev_hash = ?, record_hash = ? "
            "WHERE seq = ?",
            (json.dumps(body, sort_keys=True), prev, rec.record_hash, row["seq"]),
        )
        prev = rec.record_hash
    conn.execute("UPDATE instruments_head SET record_hash = ?", (prev,))
    restore_instrument_triggers(conn)


#: tamper -> (its chain, index of the first row that differs, its seq, kind); None: no row
#: differs. ``intervals`` is the ledger (``verify``'s top level), ``instruments`` the carbon
#: instruments (its ``instruments`` part; the ledger stays intact).
TABLE = {
    "edit input": (edit_input, "intervals", 2, 3, "edited"),
    "edit derived": (edit_derived, "intervals", 2, 3, "edited"),
    "delete": (delete, "intervals", 3, 5, "deleted"),
    "swap": (swap, "intervals", 3, 4, "reordered"),
    "insert before first": (insert_before_first, "intervals", 0, 0, "inserted"),
    "recompute one row's hashes": (recompute_one_row, "intervals", 2, 3, "edited"),
    "rewrite the tail with the head": (rewrite_tail_with_head, "intervals", 2, 3, "rewritten"),
    "truncate with the head": (truncate_with_head, "intervals", 6, None, "truncated"),
    "append with the head (back-dated)": (append_backdated, "intervals", 8, 9, "misdated"),
    "append with the head (future)": (append_from_the_future, "intervals", 8, 9, "misdated"),
    "drop the triggers": (drop_triggers, "intervals", None, None, "unprotected"),
    "edit an offset": (edit_offset, "instruments", 1, 2, "edited"),
    "insert a forged offset (SQL, head kept)": (
        insert_forged_offset_by_sql, "instruments", 4, 5, "appended"),
    "insert a forged offset (head moved, back-dated)": (
        insert_forged_offset_backdated, "instruments", 4, 5, "misdated"),
    "edit a certificate (hashes and head recomputed)": (
        edit_certificate, "instruments", 2, 3, "rewritten"),
    "edit a bill row": (edit_bill_row, "instruments", 3, 4, "edited"),
}


#: The utility bill's June as ``dispatch carbon bill import`` stores it (the ledger's 800 kWh).
BILL = {"month": "2026-06", "import_kwh": 800.0, "source_file": "bill.csv",
        "source_sha256": "0" * 64}


@pytest.fixture
def signed_site(site: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    """The site with four instruments, its checkpoint file (taken before any tamper) and the
    pinned public key."""
    with Store.from_config(load_config(site)) as store:
        cases.append(store, "purchase", cases.purchase(), "2026-06-20T00:00:00Z")
        cases.append(store, "retirement", cases.retirement(), "2026-06-20T00:01:00Z")
        cases.append(store, "certificate", cases.certificate(), "2026-06-20T00:02:00Z")
        cases.append(store, "bill", BILL, "2026-06-20T00:03:00Z")
    key = tmp_path.parent / f"{tmp_path.name}-key.pem"
    assert main(["carbon", "keygen", "--out", str(key)]) == 0
    public = json.loads(capsys.readouterr().out)["public_key"]
    out = tmp_path.parent / f"{tmp_path.name}-checkpoint.json"
    assert (
        main(["carbon", "checkpoint", "--config", str(site), "--key", str(key), "--out", str(out)])
        == 0
    )
    capsys.readouterr()
    yield site, out, public
    key.unlink()
    out.unlink()


def verify_json(cfg: Path, checkpoint_file: Path, public: str, capsys) -> tuple[int, dict]:
    """``dispatch carbon verify --checkpoint FILE --public-key KEY --json``: code, outcome."""
    code = main(["carbon", "verify", "--config", str(cfg), "--checkpoint", str(checkpoint_file),
                 "--public-key", public, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("tamper", list(TABLE))
def test_every_tamper_is_detected_at_its_first_row(signed_site, tamper: str, capsys):
    cfg, checkpoint_file, public = signed_site
    how, part, index, seq, kind = TABLE[tamper]
    how(cfg)
    code, doc = verify_json(cfg, checkpoint_file, public, capsys)
    assert (code, doc["ok"]) == (3, False)
    if part == "instruments":
        assert doc["kind"] == "ok"  # the interval ledger is intact
        doc = doc["instruments"]
    assert (doc["index"], doc["seq"], doc["kind"]) == (index, seq, kind), doc.get(
        "findings", doc["reason"])


def test_without_the_checkpoint_a_rewritten_tail_passes(site: Path, capsys):
    """Why checkpoints are kept off the box: the chain and head row alone are consistent."""
    rewrite_tail_with_head(site)
    assert main(["carbon", "verify", "--config", str(site)]) == 0
    assert "ledger intact: 8 records" in capsys.readouterr().out

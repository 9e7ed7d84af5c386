"""Carbon instruments in the chain: purchases, partial retirements and certificates as chained
records on a real SQLite store; their checks; the migration of a v7 offsets table; reports
that net them."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dispatch.__main__ import main
from dispatch.carbon import audit, compose, instruments
from dispatch.store import Store, migrate
from dispatch.store.chain_migration import GENESIS_HASH
from tests import test_cli_carbon as cli_site

site = cli_site.site  # the fixture: a store with 8 recorded intervals (800 kWh, 456.24 kg)
TODAY = dt.date(2026, 12, 7)


def purchase(batch: str = "CCER:C-1", tonnes: float = 120.0, **kw: Any) -> dict[str, Any]:
    body = {
        "batch": batch,
        "credit_type": batch.split(":")[0],
        "registry": "national CCER registry",
        "project_id": "P-1",
        "methodology": "CCER-14-001-V01",
        "vintage_year": 2025,
        "monitoring_from": "2025-01-01",
        "monitoring_to": "2025-12-31",
        "serial_first": batch.split(":")[1],
        "serial_last": "C-120",
        "tonnes": tonnes,
        "purchased_on": "2026-03-01",
    }
    return {**body, **kw}


def retirement(batch: str = "CCER:C-1", tonnes: float = 50.0, **kw: Any) -> dict[str, Any]:
    body = {
        "batch": batch,
        "tonnes": tonnes,
        "retired_on": "2026-06-10",
        "cancellation_number": "CN-7",
        "beneficiary": "Suzhou plant",
        "claimed_from": "2026-01-01",
        "claimed_to": "2026-12-31",
    }
    return {**body, **kw}


def certificate(**kw: Any) -> dict[str, Any]:
    body = {
        "certificate_id": "GEC-1",
        "scheme": "GEC",
        "registry": "China GEC platform",
        "project_id": "WF-9",
        "generation_from": "2026-05-01",
        "generation_to": "2026-05-31",
        "serial_first": "G1",
        "serial_last": "G400",
        "mwh": 0.4,
        "ci_g_per_kwh": 0.0,
        "claimant": "Suzhou plant",
        "market_boundary": "China mainland",
        "claimed_from": "2026-06-01",
        "claimed_to": "2026-06-30",
        "cancellation_number": "",
    }
    return {**body, **kw}


def append(store: Store, kind: str, body: dict[str, Any], recorded: str = "2026-06-20T00:00:00Z"):
    """Chain a record on the stored head and append it (what the CLI does)."""
    rec = instruments.chained(kind, recorded, body, store.instruments_head().record_hash)
    store.append_instrument(
        {
            "kind": kind,
            "recorded_utc": recorded,
            "body": body,
            "prev_hash": rec.prev_hash,
            "record_hash": rec.record_hash,
        }
    )
    return rec


def chain(*items: tuple[str, dict[str, Any]]) -> list[instruments.Instrument]:
    out, head = [], instruments.GENESIS
    for kind, body in items:
        out.append(instruments.chained(kind, "2026-06-20T00:00:00Z", body, head))
        head = out[-1].record_hash
    return out


def test_a_partial_retirement_leaves_the_rest_held():
    recs = chain(("purchase", purchase()), ("retirement", retirement()))
    assert instruments.problems(recs, TODAY) == []
    view = instruments.offset_view(recs)
    assert [(o.serial, o.tonnes, o.retired_on) for o in view] == [
        ("C-1#CN-7", 50.0, dt.date(2026, 6, 10)),
        ("C-1", 70.0, None),
    ]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            [("purchase", purchase()), ("retirement", retirement(tonnes=121.0))],
            "retires 121.0 t but only 120 t of the batch are held",
        ),
        (
            [("purchase", purchase()), ("retirement", retirement(retired_on="2099-01-01"))],
            "retired_on 2099-01-01 lies after today",
        ),
        ([("retirement", retirement())], "no purchase of batch 'CCER:C-1' before it"),
        ([("purchase", purchase(tonnes=-3.0))], "tonnes = -3.0 must be > 0"),
        (
            [("purchase", purchase(purchased_on="last spring"))],
            "instrument record 0 (purchase 'CCER:C-1'): purchased_on = 'last spring' is not a date",
        ),
        ([("purchase", purchase(vintage_year="2025"))], "vintage_year = '2025' must be a year"),
        (
            [("purchase", {k: v for k, v in purchase().items() if k != "registry"})],
            "registry is missing",
        ),
        (
            [("certificate", certificate(claimed_to="2026-05-01"))],
            "claimed_from 2026-06-01 is after claimed_to 2026-05-01",
        ),
        ([("certificate", certificate(scheme="REC"))], "scheme must be one of"),
        ([("purchase", purchase()), ("purchase", purchase())], "batch listed twice"),
    ],
)
def test_a_malformed_or_impossible_record_is_named(items, message):
    found = instruments.problems(chain(*items), TODAY)
    assert any(message in p for p in found), found


def test_the_store_keeps_instruments_append_only_and_chained(tmp_path: Path):
    with Store(tmp_path / "s.sqlite3") as store:
        first = append(store, "purchase", purchase())
        append(store, "retirement", retirement())
        with pytest.raises(Exception, match="does not continue the head"):
            store.append_instrument(
                {
                    "kind": "purchase",
                    "recorded_utc": "x",
                    "body": {},
                    "prev_hash": GENESIS_HASH,
                    "record_hash": "f" * 64,
                }
            )
        for sql in ("UPDATE carbon_instruments SET kind = 'x'", "DELETE FROM carbon_instruments"):
            with pytest.raises(Exception, match="append-only"), store.transaction() as conn:
                conn.execute(sql)
        rows = store.instruments()
        recs = compose.instruments_from_rows(rows)
        assert recs[0].record_hash == first.record_hash and recs[1].seq == 2
        assert audit.verify_instruments(rows, store.instruments_head()).ok
        assert store.missing_triggers() == []


def test_a_v7_offsets_table_is_moved_into_the_chain(tmp_path: Path):
    path = tmp_path / "v7.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path), target=7)
    conn.execute(
        "INSERT INTO offsets (credit_type, serial, vintage_year, tonnes, purchased_on, "
        "retired_on, registry) VALUES ('CCER', 'B-1', 2025, 12.5, '2026-03-01', "
        "'2026-06-30', 'CEEX'), ('GS', 'G-2', 2024, 3.0, '2026-04-01', NULL, '')"
    )
    conn.close()
    with Store(path) as store:
        rows, head = store.instruments(), store.instruments_head()
        # in recorded order: bought 03-01, bought 04-01, retired 06-30
        assert [r["kind"] for r in rows] == ["purchase", "purchase", "retirement"]
        check = audit.verify_instruments(rows, head, today=TODAY)  # the core's hash rule
        assert check.ok, check.reason
        view = instruments.offset_view(compose.instruments_from_rows(rows))
    assert sorted((o.credit_type, o.tonnes, o.retired_on) for o in view) == [
        ("CCER", 12.5, dt.date(2026, 6, 30)),
        ("GS", 3.0, None),
    ]
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "offsets" not in tables and "carbon_instruments" in tables


def test_cli_partial_retirement_and_a_certificate_reach_the_report(site: Path, capsys):
    def run(*args: str) -> int:
        return main(["carbon", *args, "--config", str(site)])

    assert (
        run(
            "offsets",
            "add",
            "--type",
            "CCER",
            "--serial",
            "C-1",
            "--vintage",
            "2025",
            "--tonnes",
            "0.3",
            "--purchased",
            "2026-03-01",
        )
        == 0
    )
    assert (
        run(
            "offsets",
            "retire",
            "--type",
            "CCER",
            "--serial",
            "C-1",
            "--tonnes",
            "0.1",
            "--on",
            "2026-06-10",
            "--cancellation",
            "CN-1",
        )
        == 0
    )
    assert (
        run(
            "certificates",
            "add",
            "--id",
            "GEC-1",
            "--scheme",
            "GEC",
            "--mwh",
            "0.4",
            "--generation-from",
            "2026-05-01",
            "--generation-to",
            "2026-05-31",
            "--serial-first",
            "G1",
            "--claimant",
            "Suzhou plant",
            "--boundary",
            "China mainland",
            "--claimed-from",
            "2026-06-01",
            "--claimed-to",
            "2026-06-30",
        )
        == 0
    )
    capsys.readouterr()
    assert run("report", "--period", "2026-06", "--format", "json") == 0
    t = json.loads(capsys.readouterr().out)["totals"]
    # 800 kWh imported at 570.3 g/kWh; 400 kWh covered by the certificate at 0 g/kWh:
    # market = 400 x 0.5703 = 228.12 kg; net = 0.22812 - 0.1 retired = 0.12812 t
    assert (t["location_kg_co2"], t["market_kg_co2"], t["offsets_retired_t_co2"]) == (
        456.24,
        228.12,
        0.1,
    )
    assert t["scope2_net_t_co2"] == pytest.approx(0.12812, abs=1e-12)
    assert run("offsets", "list", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["held_t_co2"], doc["retired_t_co2"]) == (pytest.approx(0.2), 0.1)
    assert run("verify") == 0
    assert "3 instrument records" in capsys.readouterr().out

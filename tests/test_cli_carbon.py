"""``dispatch carbon verify|report|offsets`` on a real SQLite store: tamper detection through a
subprocess, reports with hand-computed totals, offsets registry errors, help on every command."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dispatch.__main__ import main
from dispatch.config import load_config
from dispatch.daemon.ledger_job import LedgerBook, append_completed
from dispatch.store import Store
from dispatch.types import Setpoints, Snapshot

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.UTC)  # 08:00 in Suzhou (Asia/Shanghai)
N = 8  # intervals of 15 min, 400 kW import each: 100 kWh x 570.3 g/kWh = 57.03 kg


def write_config(tmp_path: Path) -> Path:
    text = (ROOT / "configs" / "suzhou-factory.toml").read_text(encoding="utf-8")
    assert text.count("\n[carbon]\n") == 1
    text = text.replace("\n[carbon]\n", "\n[carbon]\nneutrality_target_year = 2030\n")
    text += f"\n[store]\npath = '{tmp_path / 'site.sqlite3'}'\n"
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config whose store holds N recorded intervals."""
    cfg = write_config(tmp_path)
    config = load_config(cfg)
    with Store.from_config(config) as store:
        for k in range(N * 3):  # three cycle samples per interval
            t = T0 + dt.timedelta(minutes=5 * k)
            snap = Snapshot(time=t, p_grid_kw=400.0, p_pv_kw=0.0, p_batt_kw=0.0,
                            p_load_kw=400.0, soc_frac=0.5)  # fmt: skip
            store.record_cycle(snap, Setpoints(0.0, "t"), t)
        done = append_completed(store, config, T0 + dt.timedelta(minutes=15 * N),
                                LedgerBook(dt.timedelta(minutes=15)))  # fmt: skip
        assert done.records == N
    return cfg


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatch", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)  # fmt: skip


def tamper(cfg: Path, *statements: str) -> None:
    conn = sqlite3.connect(load_config(cfg).store.path, isolation_level=None)
    conn.execute("DROP TRIGGER ledger_no_update")
    conn.execute("DROP TRIGGER ledger_no_delete")
    for sql in statements:
        conn.execute(sql)
    conn.close()


def swap_rows(cfg: Path, a: int, b: int) -> None:
    conn = sqlite3.connect(load_config(cfg).store.path, isolation_level=None)
    conn.execute("DROP TRIGGER ledger_no_delete")
    rows = {r[0]: r[1:] for r in conn.execute(
        f"SELECT * FROM ledger_intervals WHERE seq IN ({a}, {b})")}  # fmt: skip
    conn.execute(f"DELETE FROM ledger_intervals WHERE seq IN ({a}, {b})")
    marks = ", ".join("?" * (1 + len(rows[a])))
    conn.execute(f"INSERT INTO ledger_intervals VALUES ({marks})", (a, *rows[b]))
    conn.execute(f"INSERT INTO ledger_intervals VALUES ({marks})", (b, *rows[a]))
    conn.close()


def test_verify_an_intact_ledger(site: Path):
    out = cli("carbon", "verify", "--config", str(site))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ledger intact: 8 records, 2026-06-01T00:00:00Z .. "
                                 "2026-06-01T02:00:00Z; head ")  # fmt: skip


@pytest.mark.parametrize(
    ("how", "kind", "index", "seq"),
    [
        ("edit", "edited", 2, 3),
        ("delete", "deleted", 3, 5),
        ("swap", "reordered", 3, 4),
        ("truncate", "truncated", 7, None),
    ],
)
def test_verify_names_the_first_bad_row_and_the_tamper(site: Path, how: str, kind: str,
                                                       index: int, seq: int | None,
                                                       capsys: pytest.CaptureFixture):  # fmt: skip
    if how == "edit":
        tamper(site, "UPDATE ledger_intervals SET import_kwh = 99.0 WHERE seq = 3")
    elif how == "delete":
        tamper(site, "DELETE FROM ledger_intervals WHERE seq = 4")
    elif how == "swap":
        swap_rows(site, 4, 5)
    else:
        tamper(site, "DELETE FROM ledger_intervals WHERE seq = 8")
    out = cli("carbon", "verify", "--config", str(site))
    assert out.returncode == 3
    assert f"does NOT verify ({kind})" in out.stderr
    if seq is not None:
        assert f"first bad row {index} (seq {seq}, interval 2026-06-01T" in out.stderr
    else:
        assert f"after the last row (index {index})" in out.stderr
    assert main(["carbon", "verify", "--config", str(site), "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ok"], doc["kind"], doc["index"], doc["seq"]) == (False, kind, index, seq)


def grow(cfg: Path, n: int) -> None:
    """Record ``n`` more intervals after the first ``N`` (the daemon carrying on)."""
    config = load_config(cfg)
    with Store.from_config(config) as store:
        for k in range(N * 3, (N + n) * 3):
            t = T0 + dt.timedelta(minutes=5 * k)
            snap = Snapshot(
                time=t, p_grid_kw=400.0, p_pv_kw=0.0, p_batt_kw=0.0, p_load_kw=400.0, soc_frac=0.5
            )
            store.record_cycle(snap, Setpoints(0.0, "t"), t)
        end = T0 + dt.timedelta(minutes=15 * (N + n))
        done = append_completed(store, config, end, LedgerBook(dt.timedelta(minutes=15)))
        assert done.records == n


def test_verify_against_a_head_noted_elsewhere(site: Path, capsys: pytest.CaptureFixture):
    with Store.from_config(load_config(site)) as store:
        noted = store.ledger_head().record_hash
    grow(site, 4)  # an intact ledger that has grown still passes through the noted head
    assert main(["carbon", "verify", "--config", str(site), "--head", noted]) == 0
    assert "ledger intact: 12 records" in capsys.readouterr().out
    assert main(["carbon", "verify", "--config", str(site), "--head", "ab" * 32]) == 3
    assert "no row has the noted head abababababab" in capsys.readouterr().err


def test_report_totals_are_hand_computed(site: Path, capsys: pytest.CaptureFixture):
    assert main(["carbon", "offsets", "add", "--config", str(site), "--type", "CCER",
                 "--serial", "CCER-2025-0001", "--vintage", "2025", "--tonnes", "0.2",
                 "--purchased", "2026-05-20", "--retired", "2026-06-10"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["carbon", "report", "--config", str(site), "--period", "2026-06",
                 "--format", "json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    t = report["totals"]
    assert (t["intervals"], t["import_kwh"], t["location_kg_co2"]) == (8, 800.0, 456.24)
    assert (t["market_kg_co2"], t["scope2_basis_t_co2"], t["offsets_retired_t_co2"]) == (
        456.24, 0.45624, 0.2)
    assert t["scope2_net_t_co2"] == pytest.approx(0.25624, abs=1e-12)
    assert report["factors"]["intensity_sources"] == {"config_factor": 8}
    assert report["scope2_target"]["target_year"] == 2030
    assert main(["carbon", "report", "--config", str(site), "--period", "2026-Q2",
                 "--format", "json"]) == 0  # fmt: skip
    q = json.loads(capsys.readouterr().out)
    assert q["totals"]["location_kg_co2"] == 456.24 and len(q["months"]) == 3


def test_report_files_in_every_format(site: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    for fmt in ("csv", "json", "html"):
        out = tmp_path / f"r.{fmt}"
        assert main(["carbon", "report", "--config", str(site), "--period", "2026",
                     "--format", fmt, "--out", str(out)]) == 0  # fmt: skip
        assert json.loads(capsys.readouterr().out)["records"] == 8
    last = (tmp_path / "r.csv").read_text().splitlines()[-1]
    assert last.startswith("total,8,800.000000,0.000000,")  # intervals, load_kwh, pv_kwh
    assert "<svg" in (tmp_path / "r.html").read_text()
    again = tmp_path / "again.json"
    main(["carbon", "report", "--config", str(site), "--period", "2026", "--format", "json",
          "--out", str(again)])  # fmt: skip
    assert again.read_text() == (tmp_path / "r.json").read_text()  # same ledger, same text


def test_report_refuses_a_tampered_ledger_and_a_bad_period(
    site: Path, capsys: pytest.CaptureFixture
):
    assert main(["carbon", "report", "--config", str(site), "--period", "2026-13"]) == 1
    assert "month 13 must be 01..12" in capsys.readouterr().err
    tamper(site, "UPDATE ledger_intervals SET location_kg_co2 = 0 WHERE seq = 1")
    assert main(["carbon", "report", "--config", str(site), "--period", "2026"]) == 1
    assert "does not verify (edited at row 0" in capsys.readouterr().err


def offsets(site: Path, *args: str) -> list[str]:
    return ["carbon", "offsets", *args[:1], "--config", str(site), *args[1:]]


def test_offsets_add_retire_list_and_errors(site: Path, capsys: pytest.CaptureFixture):
    add = ("add", "--type", "carbon_inclusive", "--serial", "SZ-PH-7", "--vintage", "2025",
           "--tonnes", "12.5", "--purchased", "2026-03-01")  # fmt: skip
    assert main(offsets(site, *add)) == 0
    assert main(offsets(site, *add)) == 1
    assert "listed twice" in capsys.readouterr().err
    bad = {"--tonnes": "-3", "--purchased": "2026-02-30", "--vintage": "2027"}
    messages = ["tonnes = -3.0 must be > 0", "'2026-02-30' is not a date", "vintage 2027"]
    for (key, value), message in zip(bad.items(), messages, strict=True):
        args = list(add)
        args[args.index(key) + 1] = value
        args[args.index("--serial") + 1] = "other"
        if key == "--vintage":
            args += ["--retired", "2026-04-01"]
        assert main(offsets(site, *args)) == 1
        assert message in capsys.readouterr().err
    retire = ("retire", "--type", "carbon_inclusive", "--serial", "SZ-PH-7")
    assert main(offsets(site, *retire, "--on", "2026-02-01")) == 1
    assert "before purchased_on" in capsys.readouterr().err
    assert main(offsets(site, *retire, "--on", "2026-06-30")) == 0
    assert main(offsets(site, *retire, "--on", "2026-07-01")) == 1
    assert "already retired on 2026-06-30 (a double retirement)" in capsys.readouterr().err
    assert main(offsets(site, "retire", "--type", "CCER", "--serial", "nope")) == 1
    assert "no CCER batch 'nope'" in capsys.readouterr().err
    assert main(offsets(site, "list", "--format", "json")) == 0
    doc = json.loads(capsys.readouterr().out)
    (line,) = doc["offsets"]  # one line: the whole batch retired
    assert line["serial"].startswith("SZ-PH-7#")  # the batch's first serial and the record
    assert {k: v for k, v in line.items() if k != "serial"} == {
        "credit_type": "carbon_inclusive", "vintage_year": 2025, "tonnes": 12.5,
        "purchased_on": "2026-03-01", "retired_on": "2026-06-30",
        "registry": "city carbon-inclusive platform (e.g. Suzhou PHCER)"}
    assert (doc["held_t_co2"], doc["retired_t_co2"]) == (0, 12.5)
    assert main(offsets(site, "list")) == 0
    assert "1 lines; held 0 t CO2e, retired 12.5 t CO2e" in capsys.readouterr().out


@pytest.mark.parametrize(
    "command",
    [[], ["verify"], ["report"], ["checkpoint"], ["offsets"], ["offsets", "add"],
     ["offsets", "retire"],
     ["offsets", "list"]],
)
def test_every_carbon_command_has_help(command: list[str], capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exc:
        main(["carbon", *command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: dispatch carbon {' '.join(command)}".rstrip())
    assert "--config" in text or command in ([], ["offsets"])


def test_verify_and_report_on_a_missing_store_refuse_and_create_nothing(tmp_path: Path):
    cfg = write_config(tmp_path)
    path = Path(load_config(cfg).store.path)
    assert not path.exists()
    for command in (["verify"], ["report", "--period", "2026-06"], ["offsets", "list"]):
        out = cli("carbon", *command, "--config", str(cfg))
        assert out.returncode == 78, (command, out.stdout, out.stderr)
        assert "no store there" in out.stderr and "intact" not in out.stdout
        assert not path.exists()  # no empty store made to report on


def test_a_purchase_or_retirement_after_today_is_refused(site: Path, capsys):
    ahead = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    add = ("add", "--type", "CCER", "--serial", "CC-1", "--vintage", "2025", "--tonnes", "120",
           "--purchased", "2026-03-01")
    assert main(offsets(site, *add, "--retired", "2099-01-01")) == 1
    assert "--retired 2099-01-01 lies after today" in capsys.readouterr().err
    bought_ahead = list(add)
    bought_ahead[-1] = ahead
    assert main(offsets(site, *bought_ahead)) == 1
    assert f"--purchased {ahead} lies after today" in capsys.readouterr().err
    assert main(offsets(site, *add)) == 0
    assert main(offsets(site, "retire", "--type", "CCER", "--serial", "CC-1", "--on", ahead)) == 1
    assert "lies after today" in capsys.readouterr().err
    assert main(offsets(site, "retire", "--type", "CCER", "--serial", "CC-1")) == 0  # today


def test_a_malformed_instrument_record_is_named_not_a_traceback(site: Path, capsys):
    from tests.test_carbon_instruments import append, purchase

    with Store.from_config(load_config(site)) as store:  # a writer that skipped the checks
        append(store, "purchase", purchase("CCER:CC-9", purchased_on="last spring"))
    capsys.readouterr()
    for command in (offsets(site, "list"), ["carbon", "report", "--config", str(site),
                                            "--period", "2026"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert "instrument record 0 (purchase 'CCER:CC-9'): purchased_on = 'last spring'" in err
    assert main(["carbon", "verify", "--config", str(site), "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)["instruments"]
    assert (doc["kind"], doc["index"], doc["seq"]) == ("malformed", 0, 1)
    conn = sqlite3.connect(load_config(site).store.path, isolation_level=None)
    conn.execute("DROP TRIGGER instruments_no_update")
    conn.execute("UPDATE carbon_instruments SET body_json = '{not json' WHERE seq = 1")
    conn.close()
    assert main(offsets(site, "list")) == 1
    assert "instrument record 0 (seq 1) is malformed" in capsys.readouterr().err

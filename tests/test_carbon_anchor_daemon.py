"""The daemon's ledger anchor off the box: the chain head at ``GET /api/v1/carbon/head``
after each append, the daily checkpoint it signs (and ``verify --checkpoint`` accepts), the
refusals of a key or folder beside the ledger, on real SQLite stores."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dispatch.__main__ import main
from dispatch.carbon import checkpoint
from dispatch.config import ConfigError, load_config, parse_config
from dispatch.daemon import Clock, Daemon, Notifier
from dispatch.daemon.carbon_anchor import HEAD_FORMAT, load_signer
from dispatch.types import Setpoints, Snapshot

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.UTC)  # 08:00 in Suzhou (Asia/Shanghai)


def site_files(tmp_path: Path, **carbon: str) -> Path:
    """A site config (TOML, store in ``tmp_path``) with extra ``[carbon]`` keys."""
    text = (ROOT / "configs" / "suzhou-factory.toml").read_text(encoding="utf-8")
    keys = "".join(f"{k} = '{v}'\n" for k, v in carbon.items())
    text = text.replace("\n[carbon]\n", "\n[carbon]\n" + keys)
    text += f"\n[store]\npath = '{tmp_path / 'site.sqlite3'}'\n"
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def daemon(cfg: Path, now: dt.datetime) -> Daemon:
    data = load_config(cfg).model_dump()
    data["http"] = {"port": 0}
    data["forecast"] = {"load_kw": 500.0}
    data["carbon"].pop("certificates", None)
    return Daemon(parse_config(data), Clock(now, 1.0, monotonic=lambda: 0.0), notifier=Notifier(""))


def record(d: Daemon, intervals: int, first: dt.datetime = T0) -> None:
    """Cycle samples of ``intervals`` 15-min intervals from ``first`` (400 kW import)."""
    for k in range(intervals * 3):
        t = first + dt.timedelta(minutes=5 * k)
        snap = Snapshot(
            time=t, p_grid_kw=400.0, p_pv_kw=0.0, p_batt_kw=0.0, p_load_kw=400.0, soc_frac=0.5
        )
        d.store.record_cycle(snap, Setpoints(0.0, "t"), t)


def close(d: Daemon) -> None:
    d.store_pool.shutdown()
    d.worker.shutdown()
    d.store.close()


@pytest.fixture
def keyfile(tmp_path: Path, capsys: pytest.CaptureFixture) -> tuple[Path, str]:
    """A signing key outside the store's folder (tmp_path) and its public key."""
    path = tmp_path.parent / f"{tmp_path.name}-keys" / "ledger.pem"
    assert main(["carbon", "keygen", "--out", str(path)]) == 0
    return path, json.loads(capsys.readouterr().out)["public_key"]


def test_the_rest_api_serves_the_chain_head_after_each_append(tmp_path: Path):
    d = daemon(site_files(tmp_path), T0 + dt.timedelta(hours=2))
    try:
        with TestClient(d.http.app) as client:
            empty = client.get("/api/v1/carbon/head").json()
            record(d, 8)  # 00:00 .. 02:00 UTC: 8 intervals
            assert asyncio.run(d.guarded("ledger", d._ledger))
            head = client.get("/api/v1/carbon/head").json()
        hashes = [r["record_hash"] for r in d.store.ledger()]
    finally:
        close(d)
    assert empty["chains"]["intervals"] == {
        "records": 0,
        "head": "",
        "end_utc": None,
        "fingerprints": "",
    }
    assert (head["format"], head["time_utc"]) == (HEAD_FORMAT, "2026-06-01T02:00:00Z")
    assert head["chains"]["intervals"] == {
        "records": 8,
        "head": hashes[-1],
        "end_utc": "2026-06-01T02:00:00Z",
        "fingerprints": checkpoint.fingerprints(hashes),
    }
    assert d.anchor.head == head  # what the ledger job published (MQTT when enabled)
    assert head["chains"]["instruments"]["records"] == 0


def test_the_daemon_signs_one_checkpoint_a_day_that_verify_accepts(
    tmp_path: Path, keyfile, capsys: pytest.CaptureFixture
):
    key, public = keyfile
    folder = tmp_path.parent / f"{tmp_path.name}-cp"
    cfg = site_files(tmp_path, checkpoint_key_path=str(key), checkpoint_dir=str(folder))
    d = daemon(cfg, T0 + dt.timedelta(hours=2))
    try:
        record(d, 8)
        assert asyncio.run(d.guarded("ledger", d._ledger))
        made = folder / "checkpoint-2026-06-01.json"  # the site-local date (UTC+8)
        assert sorted(p.name for p in folder.iterdir()) == [made.name]
        signer = d.anchor.signer
        assert not signer.due(T0 + dt.timedelta(hours=15, minutes=59))  # 23:59 local
        assert signer.due(T0 + dt.timedelta(hours=16))  # local midnight: 2026-06-02
    finally:
        close(d)
    body = checkpoint.read_checkpoint(made.read_text(), str(made), public)
    assert body["created_utc"] == "2026-06-01T02:00:00Z"
    assert body["chains"]["intervals"]["records"] == 8
    record_more = daemon(cfg, T0 + dt.timedelta(hours=3))
    try:
        assert record_more.anchor.signer.due(T0 + dt.timedelta(hours=3)) is False  # the file
        record(record_more, 4, T0 + dt.timedelta(hours=2))
        assert asyncio.run(record_more.guarded("ledger", record_more._ledger))
        assert record_more.store.ledger_head().records == 12
    finally:
        close(record_more)
    args = ["carbon", "verify", "--config", str(cfg), "--checkpoint", str(made)]
    assert main([*args, "--public-key", public, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ok"], doc["records"], doc["checkpoints"][0]["pinned"]) == (True, 12, True)
    conn = sqlite3.connect(tmp_path / "site.sqlite3", isolation_level=None)
    conn.execute("DROP TRIGGER ledger_no_update")
    conn.execute("UPDATE ledger_intervals SET import_kwh = 1.0 WHERE seq = 3")
    conn.close()
    assert main([*args, "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ok"], doc["index"]) == (False, 2)


def test_a_ledger_that_does_not_verify_is_never_signed(tmp_path: Path, keyfile):
    folder = tmp_path.parent / f"{tmp_path.name}-cp"
    cfg = site_files(tmp_path, checkpoint_key_path=str(keyfile[0]), checkpoint_dir=str(folder))
    d = daemon(cfg, T0 + dt.timedelta(hours=2))
    try:
        d.store.missing_triggers = lambda: ["ledger_no_delete"]  # as if dropped
        record(d, 8)
        assert asyncio.run(d.guarded("ledger", d._ledger))
        events = d.store.rows("events")
    finally:
        close(d)
    assert not folder.exists()
    failed = [e for e in events if e["kind"] == "checkpoint_failed"]
    assert len(failed) == 1 and "the ledger does NOT verify (unprotected" in failed[0]["message"]


@pytest.mark.parametrize("key", ["checkpoint_key_path", "checkpoint_dir"])
def test_a_key_or_folder_beside_the_ledger_is_refused(tmp_path: Path, keyfile, key: str):
    inside = {"checkpoint_key_path": str(keyfile[0]), key: str(tmp_path / "anchor")}
    config = load_config(site_files(tmp_path, **inside))
    with pytest.raises(ConfigError, match=r"lies in .* beside the ledger") as err:
        load_signer(config, tmp_path / "site.sqlite3", None)
    assert f"carbon.{key}" in str(err.value)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-state"
    config = load_config(site_files(tmp_path, checkpoint_key_path=str(keyfile[0])))
    with pytest.raises(ConfigError, match="beside the ledger"):
        load_signer(config, tmp_path / "site.sqlite3", keyfile[0].parent)  # the state dir
    assert load_signer(config, elsewhere / "site.sqlite3", None) is not None


def test_an_unreadable_key_means_no_checkpoints_and_a_bad_one_is_a_config_error(
    tmp_path: Path,
):
    keys = tmp_path.parent / f"{tmp_path.name}-keys"
    keys.mkdir()
    config = load_config(site_files(tmp_path, checkpoint_key_path=str(keys / "none.pem")))
    assert load_signer(config, tmp_path / "site.sqlite3", None) is None
    (keys / "bad.pem").write_text("not a key\n")
    config = load_config(site_files(tmp_path, checkpoint_key_path=str(keys / "bad.pem")))
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        load_signer(config, tmp_path / "site.sqlite3", None)

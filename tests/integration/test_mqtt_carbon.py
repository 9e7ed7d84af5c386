"""The carbon ledger's head and daily checkpoint retained on a real Mosquitto broker: a client
that connects after the daemon published still gets both, and the checkpoint it got verifies
the ledger with ``dispatch carbon verify --checkpoint``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path

import pytest

from dispatch.__main__ import main
from dispatch.carbon import checkpoint
from tests.integration.conftest import Mosquitto
from tests.integration.test_mqtt import Listener
from tests.test_carbon_anchor_daemon import T0, close, daemon, record, site_files

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        Mosquitto.BINARY is None,
        reason="mosquitto not installed (Debian package 'mosquitto'): MQTT not tested",
    ),
]


def wait_for(what, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (got := what()) is not None:
            return got
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s")


def test_head_and_checkpoint_are_retained_on_the_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    broker = Mosquitto(tmp_path).start()
    key = tmp_path.parent / f"{tmp_path.name}-keys" / "ledger.pem"
    assert main(["carbon", "keygen", "--out", str(key)]) == 0
    public = json.loads(capsys.readouterr().out)["public_key"]
    cfg = site_files(tmp_path, checkpoint_key_path=str(key))  # no folder: MQTT only
    text = cfg.read_text() + f"\n[mqtt]\nenabled = true\nport = {broker.port}\n"
    cfg.write_text(text)
    d = daemon(cfg, T0 + dt.timedelta(hours=2))
    listener = None
    try:
        d.mqtt.start()
        wait_for(lambda: True if d.mqtt.connected else None)
        record(d, 8)
        assert asyncio.run(d.guarded("ledger", d._ledger))
        hashes = [r["record_hash"] for r in d.store.ledger()]
        prefix = d.mqtt.prefix
        listener = Listener(broker.port)  # connects after the publish: retained messages
        head = wait_for(lambda: listener.json(f"{prefix}/carbon/head"))
        doc = wait_for(lambda: listener.json(f"{prefix}/carbon/checkpoint"))
    finally:
        if listener is not None:
            listener.close()
        if d.mqtt is not None:
            d.mqtt.stop()
        close(d)
        broker.stop()
    assert head["chains"]["intervals"] == checkpoint.chain_state(hashes, "2026-06-01T02:00:00Z")
    body = checkpoint.read_checkpoint(json.dumps(doc), "the MQTT checkpoint", public)
    assert body["chains"] == head["chains"]
    saved = tmp_path.parent / f"{tmp_path.name}-keys" / "from-mqtt.json"
    saved.write_text(json.dumps(doc))
    args = ["carbon", "verify", "--config", str(cfg), "--checkpoint", str(saved)]
    assert main([*args, "--public-key", public]) == 0
    assert "ledger intact: 8 records" in capsys.readouterr().out

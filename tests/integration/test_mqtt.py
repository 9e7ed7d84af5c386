"""MQTT against a real Mosquitto broker on 127.0.0.1: Home Assistant discovery, state,
commands through the operator's write path, and a daemon that runs on while the broker is
down and connects when it comes."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from dispatch.store import Store
from tests.integration.conftest import Mosquitto, Run, free_port, run_daemon

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        Mosquitto.BINARY is None,
        reason="mosquitto not installed (Debian "
        "package 'mosquitto', .ci/run installs it): MQTT not tested",
    ),
]
WHO = {"who": "home assistant", "why": "test"}


class Listener:
    """A second MQTT client that keeps the last payload of every topic under ``#``."""

    def __init__(self, port: int) -> None:
        self.seen: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="listener")
        self.c.on_connect = lambda c, *_: c.subscribe("#", 1)
        self.c.on_message = self._message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.seen[msg.topic] = msg.payload

    def json(self, topic: str) -> object:
        with self.lock:
            raw = self.seen.get(topic)
        return None if raw is None else json.loads(raw)

    def publish(self, topic: str, doc: object) -> None:
        self.c.publish(topic, json.dumps(doc), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def test_discovery_state_and_commands_over_mosquitto(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    listener = Listener(broker.port)
    mqtt = {"enabled": True, "port": broker.port, "commands": True, "publish_s": 10.0}

    async def scenario(run: Run) -> None:
        await run.watch(1.5)
        prefix = run.daemon.mqtt.prefix
        ex = run.extra
        ex["prefix"], ex["node"] = prefix, run.daemon.mqtt.node
        ex["state"] = listener.json(f"{prefix}/state")
        listener.publish(
            f"{prefix}/cmd/mode", {"mode": "manual", "p_batt_kw": -40.0, "minutes": 10, **WHO}
        )
        await run.watch(0.5)
        ex["ok"] = listener.json(f"{prefix}/cmd/mode/result")
        ex["reason"] = run.daemon.last_cycle.setpoints.reason
        listener.publish(f"{prefix}/cmd/peak_target", {"peak_target_kw": 9e9, "minutes": 5, **WHO})
        listener.c.publish(f"{prefix}/cmd/reserve", b"not json", qos=1).wait_for_publish(5)
        await run.watch(0.5)
        ex["too_big"] = listener.json(f"{prefix}/cmd/peak_target/result")
        ex["not_json"] = listener.json(f"{prefix}/cmd/reserve/result")
        ex["mode_state"] = listener.json(f"{prefix}/state")["mode"]

    try:
        run = run_daemon(tmp_path, scenario, mqtt=mqtt)
        offline = listener.seen.get(f"{run.extra['prefix']}/availability")
    finally:
        listener.close()
        broker.stop()
    ex = run.extra
    prefix, node = ex["prefix"], ex["node"]
    state = ex["state"]
    assert 0.0 < state["soc_pct"] < 100.0 and state["plan_status"] == "optimal"
    assert state["mode"] == "auto" and state["safe_state"] is False
    soc = json.loads(listener.seen[f"homeassistant/sensor/{node}/soc_pct/config"])
    assert soc["state_topic"] == f"{prefix}/state" and soc["unit_of_measurement"] == "%"
    assert soc["value_template"] == "{{ value_json.soc_pct }}"
    assert soc["device_class"] == "battery" and soc["availability_topic"].endswith("availability")
    safe = json.loads(listener.seen[f"homeassistant/binary_sensor/{node}/safe_state/config"])
    assert safe["device_class"] == "problem"
    assert ex["ok"]["ok"] is True and ex["ok"]["override"]["value"] == -40.0
    assert ex["reason"].startswith("operator: manual -40.0 kW")
    assert ex["too_big"] == {
        "ok": False,
        "error": "peak_target_kw = 9e+09 kW > grid.import_max_kw 500 kW",
    }
    assert ex["not_json"]["ok"] is False and "not JSON" in ex["not_json"]["error"]
    assert ex["mode_state"] == "manual"
    assert offline == b"offline"  # said on stop
    with Store(tmp_path / "dispatch.sqlite3") as store:
        kinds = [e["kind"] for e in store.rows("events") if e["kind"].startswith("operator")]
    assert kinds == ["operator_mode", "operator_refused"]


def test_the_daemon_runs_while_the_broker_is_down_and_connects_when_it_comes(
    tmp_path: Path,
) -> None:
    port = free_port()
    broker = Mosquitto(tmp_path, port)

    async def scenario(run: Run) -> None:
        await run.watch(1.0)
        run.extra["cycles_down"] = run.daemon.cycles_completed
        run.extra["connected_down"] = run.daemon.mqtt.connected
        await asyncio.to_thread(broker.start)
        for _ in range(80):  # paho retries after 1 s, then 2 s, ...
            await run.watch(0.1)
            if run.daemon.mqtt.connected:
                break
        await run.watch(0.5)
        listener = Listener(port)  # the retained state is there for a new subscriber
        await asyncio.sleep(0.5)
        run.extra["state"] = listener.json(f"{run.daemon.mqtt.prefix}/state")
        listener.close()

    try:
        run = run_daemon(
            tmp_path, scenario, mqtt={"enabled": True, "port": port, "publish_s": 10.0}
        )
    finally:
        broker.stop()
    assert run.extra["cycles_down"] > 10 and run.extra["connected_down"] is False
    assert run.extra["state"] is not None and run.extra["state"]["plan_status"] == "optimal"

"""MQTT: the daemon's state to a broker with Home Assistant discovery, and operator commands.

Role: ``MqttLink`` keeps one paho-mqtt client in its own network thread. On every (re)connect
it publishes ``<prefix>/availability`` = ``online`` (the broker's last will says ``offline``),
one retained Home Assistant discovery config per entity (``ENTITIES``) and subscribes to
``<prefix>/cmd/<kind>`` (``mode``, ``reserve``, ``peak_target``: the JSON bodies of the REST
API's writes). A command goes through ``operator.Operator`` like the API's (validated, stored
as an event, expiring); the answer is published on ``<prefix>/cmd/<kind>/result``. With
``[mqtt] commands = false`` every command is answered read-only. The state (``state_doc``) is
published retained on ``<prefix>/state`` after a control cycle, at most every ``publish_s``.
A broker that is down never stops the daemon: paho reconnects on its own, and state published
meanwhile is dropped. ``publish_json`` publishes other retained documents (the carbon
ledger's head and daily checkpoint, ``carbon_anchor``), again on every reconnect.
Imports paho-mqtt and this package.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho

from dispatch.config import SiteConfig
from dispatch.daemon.operator import KINDS, CommandError, Operator, parse_command
from dispatch.types import ConfigError

if TYPE_CHECKING:
    from dispatch.daemon.core import Daemon

log = logging.getLogger("dispatch.mqtt")
KEEPALIVE_S = 30
RECONNECT_MAX_S = 60


@dataclass(frozen=True)
class Entity:
    """One Home Assistant entity read from a key of the state document."""

    key: str
    name: str
    unit: str | None = None
    device_class: str | None = None
    component: str = "sensor"

    def config(self, prefix: str, node: str, site: str) -> dict[str, Any]:
        """Its discovery config (the state topic, a template on ``key``, the device)."""
        doc: dict[str, Any] = {
            "name": self.name,
            "unique_id": f"{node}_{self.key}",
            "object_id": f"{node}_{self.key}",
            "state_topic": f"{prefix}/state",
            "availability_topic": f"{prefix}/availability",
            "value_template": "{{ value_json." + self.key + " }}",
            "device": {
                "identifiers": [node],
                "name": f"dispatch {site}",
                "manufacturer": "factory-dispatch",
                "model": "PV + storage dispatch",
            },
        }
        if self.component == "binary_sensor":  # HA's default payloads: ON / OFF
            doc["value_template"] = "{{ 'ON' if value_json." + self.key + " else 'OFF' }}"
        if self.unit is not None:
            doc |= {"unit_of_measurement": self.unit, "state_class": "measurement"}
        if self.device_class is not None:
            doc["device_class"] = self.device_class
        return doc


ENTITIES = (
    Entity("soc_pct", "Battery state of charge", "%", "battery"),
    Entity("p_batt_kw", "Battery power (+ discharge)", "kW", "power"),
    Entity("p_grid_kw", "Grid power (+ import)", "kW", "power"),
    Entity("p_pv_kw", "PV power", "kW", "power"),
    Entity("p_load_kw", "Site load", "kW", "power"),
    Entity("setpoint_kw", "Battery setpoint", "kW", "power"),
    Entity("month_peak_kw", "Month's import peak so far", "kW", "power"),
    Entity("peak_target_kw", "Peak target held", "kW", "power"),
    Entity("carbon_month_t_co2", "Scope 2 CO2 this month (location)", "t"),
    Entity("plan_status", "Plan status"),
    Entity("mode", "Operating mode"),
    Entity("site_level", "Fault level (ok, warning, fault)"),
    Entity("safe_state", "Safe state", device_class="problem", component="binary_sensor"),
    Entity("device_fault", "Device fault", device_class="problem", component="binary_sensor"),
)


def _num(x: Any, digits: int = 1) -> float | None:
    return round(float(x), digits) if isinstance(x, int | float) and math.isfinite(x) else None


def state_doc(d: Daemon) -> dict[str, Any]:
    """The ``<prefix>/state`` document: live powers, SoC, plan, peak, mode, faults, carbon."""
    now = d.clock.now()
    c, ps, st = d.last_cycle, d.plan_state, d.state
    force = d.operator.peek(now)
    mode = "pause" if force.paused else "manual" if force.manual_kw is not None else "auto"
    s = c.snapshot if c is not None else None
    figures = d.carbon_figures or {}
    doc = {
        "time": now.isoformat(timespec="seconds"),
        "soc_pct": _num(s.soc_frac * 100.0) if s is not None else None,
        "setpoint_kw": _num(c.setpoints.p_batt_kw) if c is not None else None,
        "reason": c.setpoints.reason if c is not None else None,
        "month_peak_kw": _num(st.peaks.get(d.month)) if st is not None else None,
        "peak_target_kw": _num(ps.peak_target_kw) if ps is not None else None,
        "plan_status": ps.plan.status if ps is not None else "none",
        "mode": mode,
        "overrides": [o.describe() for o in force.overrides],
        "safe_state": d.in_safe_state,
        "site_level": st.health.level if st is not None else "unknown",
        "device_fault": bool(s.faults) if s is not None else False,
        "failing": d.failures.failing(),
        "carbon_month_t_co2": _num(figures.get("location_t_co2"), 3),
    }
    for q in ("p_batt_kw", "p_grid_kw", "p_pv_kw", "p_load_kw"):
        doc[q] = _num(getattr(s, q)) if s is not None else None
    return doc


def node_id(site: str) -> str:
    """The site's name as a Home Assistant node id (letters, digits, underscores)."""
    return "dispatch_" + (re.sub(r"[^a-zA-Z0-9_]+", "_", site).strip("_").lower() or "site")


def read_password(path: str | None) -> str | None:
    """The broker password from ``[mqtt] password_file`` (ConfigError when unreadable)."""
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the MQTT password: {exc.strerror}", path) from None


class MqttLink:
    """The daemon's MQTT client.

    Parameters
    ----------
    config : SiteConfig
        ``[mqtt]`` and the site's name.
    operator : Operator
        Where commands go (only with ``[mqtt] commands = true``).
    """

    def __init__(self, config: SiteConfig, operator: Operator) -> None:
        m = config.mqtt
        self.config, self.operator = config, operator
        self.node = node_id(config.site.name)
        self.prefix = m.topic_prefix or f"dispatch/{self.node.removeprefix('dispatch_')}"
        self.password = read_password(m.password_file)
        self.last_publish_s: float | None = None
        self.client: paho.Client | None = None
        self.retained: dict[str, str] = {}  # topic suffix -> the last JSON published there

    @property
    def connected(self) -> bool:
        """Whether the client is connected to the broker now."""
        return self.client is not None and self.client.is_connected()

    def start(self) -> None:
        """Connect in the background (a broker that is down is retried, never raised)."""
        m = self.config.mqtt
        c = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=self.node, protocol=paho.MQTTv311
        )
        if m.username is not None:
            c.username_pw_set(m.username, self.password)
        c.will_set(f"{self.prefix}/availability", "offline", qos=1, retain=True)
        c.reconnect_delay_set(1, RECONNECT_MAX_S)
        c.on_connect, c.on_message = self._on_connect, self._on_message
        c.on_disconnect = self._on_disconnect
        self.client = c
        c.connect_async(m.host, m.port, KEEPALIVE_S)
        c.loop_start()
        log.info("mqtt: connecting to %s:%d, topics under %s", m.host, m.port, self.prefix)

    def stop(self) -> None:
        """Say ``offline``, disconnect and stop the network thread."""
        c, self.client = self.client, None
        if c is None:
            return
        if c.is_connected():
            info = c.publish(f"{self.prefix}/availability", "offline", qos=1, retain=True)
            info.wait_for_publish(2)
        c.disconnect()
        c.loop_stop()

    def due(self, now_s: float) -> bool:
        """Whether state is due at clock second ``now_s`` (``[mqtt] publish_s``)."""
        last = self.last_publish_s
        return last is None or now_s - last >= self.config.mqtt.publish_s

    def publish_state(self, doc: dict[str, Any], now_s: float) -> bool:
        """Publish the state retained; False (dropped) while not connected."""
        c = self.client
        if c is None or not c.is_connected():
            return False
        c.publish(f"{self.prefix}/state", json.dumps(doc), qos=0, retain=True)
        self.last_publish_s = now_s
        return True

    def publish_json(self, topic_suffix: str, doc: dict[str, Any]) -> bool:
        """Publish ``doc`` retained (QoS 1) on ``<prefix>/<topic_suffix>``; False while not
        connected. The last document of each topic is published again on every reconnect,
        so the broker keeps the latest even after an outage.

        Parameters
        ----------
        topic_suffix : str
            The topic under the prefix, e.g. ``"carbon/head"``.
        doc : dict
            A JSON-serialisable document.
        """
        payload = json.dumps(doc, sort_keys=True)
        self.retained[topic_suffix] = payload
        c = self.client
        if c is None or not c.is_connected():
            return False
        c.publish(f"{self.prefix}/{topic_suffix}", payload, qos=1, retain=True)
        return True

    # ----------------------------------------------------------- callbacks
    def _on_connect(self, c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.warning("mqtt: broker refused the connection: %s", rc)
            return
        log.info("mqtt: connected to %s:%d", self.config.mqtt.host, self.config.mqtt.port)
        c.publish(f"{self.prefix}/availability", "online", qos=1, retain=True)
        disc = self.config.mqtt.discovery_prefix
        for e in ENTITIES:
            topic = f"{disc}/{e.component}/{self.node}/{e.key}/config"
            doc = e.config(self.prefix, self.node, self.config.site.name)
            c.publish(topic, json.dumps(doc), qos=1, retain=True)
        for suffix, payload in list(self.retained.items()):
            c.publish(f"{self.prefix}/{suffix}", payload, qos=1, retain=True)
        c.subscribe([(f"{self.prefix}/cmd/{kind}", 1) for kind in KINDS])

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        log.warning("mqtt: disconnected (%s); reconnecting in the background", rc)

    def _on_message(self, c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        answer = self.command(kind, msg.payload)
        c.publish(f"{self.prefix}/cmd/{kind}/result", json.dumps(answer), qos=1)

    def command(self, kind: str, payload: bytes) -> dict[str, Any]:
        """Apply one command payload; the answer says ``ok`` and the override or the error."""
        if not self.config.mqtt.commands:
            return {"ok": False, "error": "read-only: [mqtt] commands = false"}
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            return {"ok": False, "error": f"{kind}: the payload is not JSON ({exc})"}
        try:
            new = self.operator.submit(parse_command(kind, doc), "mqtt")
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "override": new.as_dict() if new is not None else None}

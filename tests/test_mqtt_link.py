"""``MqttLink`` without a broker: topic names, discovery configs and command answers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from dispatch.config import ConfigError, load_config, parse_config
from dispatch.daemon.mqtt import ENTITIES, MqttLink, node_id
from dispatch.daemon.operator import Operator

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 6, 1, 4, tzinfo=dt.UTC)


def link(**mqtt: object) -> tuple[MqttLink, list[tuple]]:
    data = load_config(ROOT / "configs" / "suzhou-factory.toml").model_dump()
    data["mqtt"] = {"enabled": True, **mqtt}
    config = parse_config(data)
    events: list[tuple] = []
    return MqttLink(config, Operator(config, lambda: T0, lambda *e: events.append(e))), events


def test_node_ids_and_topics_come_from_the_site_name() -> None:
    assert node_id("Suzhou Factory #2") == "dispatch_suzhou_factory_2"
    assert node_id("***") == "dispatch_site"
    mq, _ = link()
    assert mq.prefix == "dispatch/" + mq.node.removeprefix("dispatch_")
    assert link(topic_prefix="plant/a")[0].prefix == "plant/a"


def test_every_entity_reads_a_key_of_the_state_and_ids_are_unique() -> None:
    mq, _ = link()
    configs = [e.config(mq.prefix, mq.node, "s") for e in ENTITIES]
    assert len({c["unique_id"] for c in configs}) == len(ENTITIES)
    for e, c in zip(ENTITIES, configs, strict=True):
        assert e.key in c["value_template"] and c["state_topic"] == f"{mq.prefix}/state"


def test_commands_are_read_only_unless_enabled_and_bad_payloads_are_answered() -> None:
    ro, events = link()
    body = json.dumps({"mode": "pause", "minutes": 5, "who": "ha", "why": "t"}).encode()
    assert ro.command("mode", body) == {"ok": False, "error": "read-only: [mqtt] commands = false"}
    assert events == []
    rw, events = link(commands=True)
    assert rw.command("mode", b"{")["error"].startswith("mode: the payload is not JSON")
    assert rw.command("boost", b"{}")["error"].startswith("unknown command 'boost'")
    answer = rw.command("mode", body)
    assert answer["ok"] is True and answer["override"]["value"] == "pause"
    assert [e[2] for e in events] == ["operator_mode"]


def test_an_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the MQTT password"):
        link(username="u", password_file=str(tmp_path / "missing"))


def test_a_topic_prefix_with_wildcards_is_refused() -> None:
    with pytest.raises(ConfigError, match="topic prefix"):
        link(topic_prefix="dispatch/#")

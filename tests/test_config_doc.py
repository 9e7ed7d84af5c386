"""``docs/config.md`` is generated from the pydantic models and must be current; every key of
every model has its row."""

from __future__ import annotations

from pathlib import Path

from dispatch.config import SiteConfig
from dispatch.config.doc import config_markdown
from dispatch.devices.doc import map_markdown
from dispatch.devices.registers import RegisterMap, shipped_maps

ROOT = Path(__file__).resolve().parents[1]


def test_the_checked_in_reference_is_current() -> None:
    assert (ROOT / "docs" / "config.md").read_text() == config_markdown(), "run `make config-doc`"


def test_every_key_of_every_section_has_a_row_under_its_table() -> None:
    text = config_markdown()
    schema = SiteConfig.model_json_schema()
    for name, model in schema["$defs"].items():
        for key in model.get("properties", {}):
            assert f"| `{key}` |" in text, f"{name}.{key} has no row"
    http = text.split("\n## [http]\n", 1)[1].split("\n## ", 1)[0]
    assert "| `token_file` | string or null | `null` |" in http
    assert "| `max_override_h` | number | `24.0` | > 0, <= 168 |" in http
    site = text.split("\n## [site]\n", 1)[1].split("\n## ", 1)[0]
    assert "| `latitude_deg` | number | **required** | >= -90, <= 90 |" in site


def test_the_register_map_reference_is_current_and_lists_every_shipped_map() -> None:
    text = map_markdown()
    assert (ROOT / "docs" / "register-maps.md").read_text() == text, "run `make config-doc`"
    for name in shipped_maps():
        assert f"| `{name}` |" in text
    for name, model in RegisterMap.model_json_schema()["$defs"].items():
        for key in model.get("properties", {}):
            assert f"| `{key}` |" in text, f"{name}.{key} has no row"
    assert "| `name` | string | **required** |" in text.split("## top-level keys", 1)[1]

"""The register-map reference (``docs/register-maps.md``), generated from the pydantic models
of the map files and from the shipped maps themselves.

Role: the list of shipped maps (vendor, kind, how the battery is commanded, whether the
device has a revert timer), how to write a map of one's own, and every key of a map file
(``dispatch.config.doc.schema_markdown``). ``make config-doc`` writes it and
``tests/test_config_doc.py`` checks the checked-in copy is current. Imports this package
and ``dispatch.config``.
"""

from __future__ import annotations

from dispatch.config.doc import schema_markdown
from dispatch.devices.registers import RegisterMap, load_map, shipped_maps

HEADER = """# Register maps

Generated from `dispatch/devices/registers.py` and the shipped maps by `make config-doc`; do
not edit. A `[[devices]]` entry's `register_map` is a shipped map's name or a path ending in
`.toml` to a map of your own (relative: beside the site config).

## Shipped maps

{shipped}

## Writing a map of your own

1. Start from the shipped map nearest to your device (`dispatch/devices/maps/NAME.toml` in
   the installed package) and keep its `[control]` kind if the device is commanded the same
   way (`signed`: one signed power register; `split`: charge and discharge registers or one
   magnitude with a command; `sunspec_124`: SunSpec 124 rates in % of `WChaMax`).
2. One `[[fields]]` per register: our `name` with its unit after scaling (`p_batt_kw`,
   `soc_frac`, `revert_timeout_s`), the vendor's `point` name and document page in `source`,
   `address`, `type`, `table` (holding or input), `scale` or a SunSpec `sf` field, and `sign`
   so that the value follows the site-bus convention (battery > 0 discharge, grid > 0
   import). Control registers are `access = "rw"`.
3. The fields the daemon needs: `p_grid_kw`, `p_batt_kw` (or PV and load, so the snapshot
   derives it), `soc_frac`, and in `[control]` the power registers, the mode with its active
   and default values, and a revert timer (`revert_field`) if the device has one: without it
   the device holds the last command when the daemon stops without its handback.
4. `dispatch check-config site.toml` loads it (errors name the key), `dispatch probe` reads
   every point from the device, `dispatch sim-device` serves it for a dry run, and `dispatch
   commission` walks the battery through hold, charge, discharge, revert and handback.
"""


def shipped_table() -> str:
    """One row per shipped map: name, kind, how it commands the battery, revert timer."""
    lines = ["| map | device | kind | command | revert timer |", "|---|---|---|---|---|"]
    for name in shipped_maps():
        m = load_map(name)
        c = m.control
        command = c.kind if c is not None else "read only"
        revert = "yes" if c is not None and c.revert_field else "no"
        lines.append(f"| `{name}` | {m.description} | {m.kind} | {command} | {revert} |")
    return "\n".join(lines)


def map_markdown() -> str:
    """The whole register-map reference as Markdown."""
    header = HEADER.format(shipped=shipped_table())
    keys = "## The keys of a map file\n\nEvery key of a map file, its type, default and range."
    return schema_markdown(RegisterMap.model_json_schema(), header + "\n" + keys + "\n")

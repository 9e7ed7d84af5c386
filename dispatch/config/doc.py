"""The configuration reference (``docs/config.md``), generated from the pydantic models.

Role: walk ``SiteConfig.model_json_schema()`` and write one Markdown section per TOML table
(``[site]``, ``[[devices]]``, ``[tariff.export]``, ...), each with its description and one row
per key: type, default, allowed range and description. ``make config-doc`` writes the file and
``tests/test_config_doc.py`` checks that the checked-in copy is current. Imports this package.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dispatch.config import SiteConfig

HEADER = """# Configuration reference

Generated from the pydantic models in `dispatch/config/` by `make config-doc`; do not edit.
A site is one TOML file; `dispatch check-config FILE` validates it and prints it normalised.
Every key has a default unless it is marked **required**. Unknown keys are errors.
"""
BOUNDS = (
    ("minimum", ">= {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "<= {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "length >= {}"),
    ("maxLength", "length <= {}"),
    ("minItems", ">= {} items"),
)


def _ref(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref") or (node.get("items") or {}).get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _type(node: dict[str, Any], anchors: dict[str, str]) -> str:
    """A short type name of a schema node (``number``, ``string or null``, a table link)."""
    if "anyOf" in node:
        return " or ".join(dict.fromkeys(_type(n, anchors) for n in node["anyOf"]))
    if "enum" in node:
        return " / ".join(f'`"{v}"`' if isinstance(v, str) else f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    name = _ref(node)
    if name is not None:
        link = f"[`{anchors[name]}`](#{_slug(anchors[name])})" if name in anchors else name
        return f"list of {link}" if node.get("type") == "array" else link
    t = node.get("type", "any")
    if t == "array":
        return f"list of {_type(node.get('items', {}), anchors)}"
    if t == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"table of {_type(node['additionalProperties'], anchors)}"
    return str(t)


def _bounds(node: dict[str, Any]) -> str:
    parts = [fmt.format(node[k]) for k, fmt in BOUNDS if k in node]
    for sub in node.get("anyOf", []):
        parts += [fmt.format(sub[k]) for k, fmt in BOUNDS if k in sub]
    return ", ".join(parts)


def _default(prop: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in prop:
        return ""
    value = prop["default"]
    if isinstance(value, dict | list) and len(json.dumps(value)) > 40:
        return "(see below)" if isinstance(value, dict) else "(a list)"
    return f"`{json.dumps(value)}`"


def _slug(title: str) -> str:
    return "".join(c for c in title.lower() if c.isalnum() or c in " -_").replace(" ", "-")


def _tables(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(TOML table title, model name) for every model, in the order a reader meets them."""
    defs, out, seen = schema["$defs"], [], set()

    def walk(model: str, title: str) -> None:
        if model in seen:
            return
        seen.add(model)
        out.append((title, model))
        for key, prop in defs[model].get("properties", {}).items():
            inner = title.strip("[]")
            for n in [prop, *prop.get("anyOf", [])]:
                name = _ref(n)
                keyed = n.get("additionalProperties")
                if name is not None:
                    many = n.get("type") == "array"
                    walk(name, f"[[{inner}.{key}]]" if many else f"[{inner}.{key}]")
                elif isinstance(keyed, dict):  # a table of tables (or of values)
                    for k in [keyed, *keyed.get("anyOf", [])]:
                        if _ref(k) is not None:
                            walk(_ref(k), f"[{inner}.{key}.NAME]")

    for key, prop in schema["properties"].items():
        name = _ref(prop) or _ref(next(iter(prop.get("anyOf", [])), {}))
        if name is not None:
            walk(name, f"[[{key}]]" if prop.get("type") == "array" else f"[{key}]")
    return out


def config_markdown() -> str:
    """The whole reference as Markdown."""
    schema = SiteConfig.model_json_schema()
    defs = schema["$defs"]
    tables = _tables(schema)
    anchors = {model: title for title, model in tables}
    lines = [HEADER]
    lines += ["| table | what it is |", "|---|---|"]
    for title, model in tables:
        text = " ".join(defs[model].get("description", "").split())
        first = re.split(r"(?<=[a-z)`])\. (?=[A-Z`])", text)[0]
        lines.append(f"| [`{title}`](#{_slug(title)}) | {first.rstrip('.')} |")
    for title, model in tables:
        d = defs[model]
        lines += ["", f"## {title}", "", " ".join(d.get("description", "").split()), ""]
        lines += ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
        required = set(d.get("required", []))
        for key, prop in d.get("properties", {}).items():
            desc = " ".join(prop.get("description", "").split())
            row = [
                f"`{key}`",
                _type(prop, anchors),
                _default(prop, key in required),
                _bounds(prop),
                desc,
            ]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines) + "\n"

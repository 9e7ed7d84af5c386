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

    def children(props: dict[str, Any], inner: str) -> None:
        for key, prop in props.items():
            path = f"{inner}.{key}" if inner else key
            for n in [prop, *prop.get("anyOf", [])]:
                name = _ref(n)
                keyed = n.get("additionalProperties")
                if name is not None:
                    walk(name, f"[[{path}]]" if n.get("type") == "array" else f"[{path}]")
                elif isinstance(keyed, dict):  # a table of tables (or of values)
                    for k in [keyed, *keyed.get("anyOf", [])]:
                        if _ref(k) is not None:
                            walk(_ref(k), f"[{path}.NAME]")

    def walk(model: str, title: str) -> None:
        if model not in seen:
            seen.add(model)
            out.append((title, model))
            children(defs[model].get("properties", {}), title.strip("[]"))

    children(schema["properties"], "")
    return out


def _rows(d: dict[str, Any], anchors: dict[str, str]) -> list[str]:
    """The key table of one model (or of the file's top level)."""
    lines = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
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
    return lines


def schema_markdown(schema: dict[str, Any], header: str) -> str:
    """A TOML file's reference from the JSON schema of its pydantic model: an index of its
    tables, the file's own top-level keys (when it has any besides tables), then one section
    per table."""
    defs = schema["$defs"]
    tables = _tables(schema)
    anchors = {model: title for title, model in tables}
    lines = [header, "| table | what it is |", "|---|---|"]
    for title, model in tables:
        text = " ".join(defs[model].get("description", "").split())
        first = re.split(r"(?<=[a-z)`])\. (?=[A-Z`])", text)[0]
        lines.append(f"| [`{title}`](#{_slug(title)}) | {first.rstrip('.')} |")
    top = {
        k: p
        for k, p in schema["properties"].items()
        if not any(_ref(n) for n in [p, *p.get("anyOf", [])])
    }
    if top:
        lines += ["", "## top-level keys", ""]
        lines += _rows({"properties": top, "required": schema.get("required", [])}, anchors)
    for title, model in tables:
        d = defs[model]
        lines += ["", f"## {title}", "", " ".join(d.get("description", "").split()), ""]
        lines += _rows(d, anchors)
    return "\n".join(lines) + "\n"


def config_markdown() -> str:
    """The site configuration's reference as Markdown (``docs/config.md``)."""
    return schema_markdown(SiteConfig.model_json_schema(), HEADER)

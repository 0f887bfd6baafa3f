"""The configuration reference, rendered from the config schema (the one home of every key's documentation).

    python -m workflow_lib.config.reference docs/reference/config.md

writes Markdown with one table per section of workflow_lib/config/schemas/config.schema.json and one row per
key path (``data.split.seed``, ``encoders.<name>.max_length``, ``hpo.search_space.<name>.low``): its type,
default, allowed values and description. ``$ref`` is followed, so a ``$defs`` entry (the backbone, the
training section, a search-space parameter, a run mode) appears under every key that uses it; the keys of
conditional branches (``allOf`` ... ``then``) and of every ``anyOf`` member are listed beside the others.
A key that may be required only in some cases says when (``required when source is package``).

:func:`undocumented` lists the key paths that have no ``description`` (properties at every depth, in
``$defs``, ``items``, ``additionalProperties`` and conditional branches); tests/unit/config holds it empty
and the committed docs/reference/config.md equal to a fresh render.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow_lib.config.schema import load_schema

__all__ = ["Entry", "entries", "undocumented", "render", "main", "COMMAND", "PLACEHOLDER"]

COMMAND = "python -m workflow_lib.config.reference docs/reference/config.md"
PLACEHOLDER = "<name>"  # the key of an additionalProperties entry: an encoder's or a search-space parameter's name
_BRANCHES = ("anyOf", "oneOf", "allOf")
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (type(None), "null"))


@dataclass(frozen=True)
class Entry:
    """One key path of the reference with what its row shows."""

    path: str
    type: str
    default: str
    allowed: str
    description: str


# -- walking the schema ------------------------------------------------------------------------


def _ref_target(root: Mapping, ref: str) -> Mapping:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _resolve(node: Any, root: Mapping) -> Any:
    """``node`` with its $ref chain followed; the keys beside a $ref (default, description) win."""
    while isinstance(node, Mapping) and "$ref" in node:
        target = _ref_target(root, node["$ref"])
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _sources(node: Mapping, root: Mapping, branch: bool = False) -> list[tuple[Mapping, bool]]:
    """(schema, conditional) for ``node`` and, recursively, its resolved anyOf/oneOf/allOf members and
    then/else branches (conditional: True); never an ``if``, whose keys are conditions, not settings."""
    out = [(node, branch)]
    for key in _BRANCHES:
        for member in node.get(key, []):
            if isinstance(member, Mapping):
                out += _sources(_resolve(member, root), root, branch)
    for member in node.get("allOf", []):
        for key in ("then", "else"):
            if isinstance(member, Mapping) and isinstance(member.get(key), Mapping):
                out += _sources(_resolve(member[key], root), root, True)
    return out


def _conditions(node: Mapping) -> dict[str, list[str]]:
    """key -> the conditions under which ``node``'s allOf if/then branches require it."""
    out: dict[str, list[str]] = {}
    for branch in node.get("allOf", []):
        if not isinstance(branch, Mapping) or not isinstance(branch.get("then"), Mapping):
            continue
        cond = []
        for name, test in branch.get("if", {}).get("properties", {}).items():
            values = [test["const"]] if "const" in test else test.get("enum", [])
            cond.append(f"{name} is {' or '.join(_literal(v) for v in values)}")
        for key in branch["then"].get("required", []):
            out.setdefault(key, []).append(" and ".join(cond))
    return out


def _requirement(name: str, sources: list[tuple[Mapping, bool]]) -> str:
    if any(name in s.get("required", []) for s, conditional in sources if not conditional):
        return "required"
    when = [c for s, _ in sources for c in _conditions(s).get(name, [])]
    return "required when " + "; or ".join(when) if when else ""


def _children(node: Mapping, root: Mapping) -> Iterator[tuple[str, Any, str]]:
    """(name, schema, requirement) of every key an object node defines, its branches' keys included."""
    seen: set[str] = set()
    sources = _sources(node, root)
    for source, _ in sources:
        for name, child in source.get("properties", {}).items():
            if isinstance(child, Mapping) and name not in seen:
                seen.add(name)
                yield name, child, _requirement(name, sources)
        extra = source.get("additionalProperties")
        if isinstance(extra, Mapping) and PLACEHOLDER not in seen:
            seen.add(PLACEHOLDER)
            names = source.get("propertyNames", {}).get("pattern")
            yield PLACEHOLDER, extra, f"any name matching {_code(names)}" if names else "any name"


def _key_nodes(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, schema) of every key schema below ``node``, without following $ref: properties at every
    depth, additionalProperties, items, anyOf/oneOf/allOf members and then/else branches."""
    if not isinstance(node, Mapping):
        return
    prefix = f"{path}." if path else ""
    for name, child in node.get("properties", {}).items():
        if isinstance(child, Mapping):
            yield f"{prefix}{name}", child
            yield from _key_nodes(child, f"{prefix}{name}")
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield f"{prefix}{PLACEHOLDER}", extra
        yield from _key_nodes(extra, f"{prefix}{PLACEHOLDER}")
    if isinstance(node.get("items"), Mapping):
        yield from _key_nodes(node["items"], f"{path}[]")
    for key in _BRANCHES:
        for member in node.get(key, []):
            yield from _key_nodes(member, path)
    for key in ("then", "else"):
        yield from _key_nodes(node.get(key), path)


def undocumented(schema: Mapping) -> list[str]:
    """Key paths of ``schema`` without a description ($defs keys as ``$defs.<def>.<key>``)."""
    found = [path for path, node in _key_nodes(schema, "") if "description" not in node]
    for name, definition in schema.get("$defs", {}).items():
        found += [path for path, node in _key_nodes(definition, f"$defs.{name}") if "description" not in node]
    return found


# -- what a row shows --------------------------------------------------------------------------


def _literal(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _code(text: str) -> str:
    """``text`` as inline code that is safe in a table cell: a ``|`` would end the cell on a forge even
    inside backticks, and a backslash before it shows in MkDocs, so such a span is written as HTML."""
    if "|" not in text:
        return f"`{text}`"
    return "<code>" + text.replace("&", "&amp;").replace("<", "&lt;").replace("|", "&#124;") + "</code>"


def _json_type(value: Any) -> str:
    return next(name for kind, name in _JSON_TYPES if isinstance(value, kind))


def _types(node: Mapping, root: Mapping) -> list[str]:
    node = _resolve(node, root)
    kind = node.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
    elif "enum" in node:
        kinds = list(dict.fromkeys(_json_type(v) for v in node["enum"]))
    elif any(k in node for k in ("anyOf", "oneOf")):
        kinds = [t for m in node.get("anyOf", []) + node.get("oneOf", []) for t in _types(m, root)]
    elif "properties" in node or "additionalProperties" in node:
        kinds = ["object"]
    else:
        kinds = ["any"]
    if "array" in kinds and isinstance(node.get("items"), Mapping):
        kinds = [f"array of {' or '.join(_types(node['items'], root))}" if k == "array" else k for k in kinds]
    return list(dict.fromkeys(kinds))


def _bounds(node: Mapping) -> list[str]:
    marks = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))
    return [f"{sign} {_literal(node[key])}" for key, sign in marks if key in node and not isinstance(node[key], bool)]


def _allowed(node: Mapping, root: Mapping) -> list[str]:
    node = _resolve(node, root)
    out = []
    values = list(node.get("enum", []))
    for member in node.get("anyOf", []) + node.get("oneOf", []):
        member = _resolve(member, root)
        values += member.get("enum", [])
        out += _allowed(member, root) if "enum" not in member else []
    if values and "null" in _types(node, root):
        values.append(None)
    if values:
        out.insert(0, ", ".join(_code(_literal(v)) for v in dict.fromkeys(values)))
    out += _bounds(node)
    if node.get("minLength") == 1:
        out.append("non-empty")
    if "pattern" in node:
        out.append(f"matches {_code(node['pattern'])}")
    if isinstance(node.get("not"), Mapping) and "pattern" in node["not"]:
        out.append(f"not matching {_code(node['not']['pattern'])}")
    if "minItems" in node:
        out.append(f"at least {node['minItems']} item(s)")
    if node.get("uniqueItems"):
        out.append("no repeats")
    items = _resolve(node.get("items"), root) if isinstance(node.get("items"), Mapping) else {}
    item_rules = _bounds(items) + (["non-empty"] if items.get("minLength") == 1 else [])
    if item_rules:
        out.append(f"each item {', '.join(item_rules)}")
    if "minProperties" in node:
        out.append(f"at least {node['minProperties']} entry")
    return out


def _default(node: Mapping, root: Mapping) -> str:
    node = _resolve(node, root)
    if "default" not in node or node["default"] == {}:  # an object's {} default: its keys carry the defaults
        return ""
    return _code(_literal(node["default"]))


def entries(schema: Mapping) -> list[Entry]:
    """Every key path of ``schema`` in schema order (parents before their keys), with its row."""

    def walk(node: Mapping, path: str, need: str) -> Iterator[Entry]:
        resolved = _resolve(node, schema)
        allowed = ([need] if need else []) + _allowed(resolved, schema)
        yield Entry(
            path=path,
            type=" or ".join(_types(resolved, schema)),
            default=_default(resolved, schema),
            allowed="; ".join(allowed),
            description=str(resolved.get("description", "")),
        )
        for name, child, child_need in _children(resolved, schema):
            yield from walk(child, f"{path}.{name}", child_need)

    found: list[Entry] = []
    for name, child, need in _children(schema, schema):
        found += walk(child, name, need)
    return found


# -- Markdown ----------------------------------------------------------------------------------


def _prose(text: str) -> str:
    """Description text for a table cell: ``<name>`` kept (not taken for an HTML tag), no column break."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("|", "&#124;").replace("\n", " ")


def _table(rows: list[Entry], linked: frozenset[str] = frozenset()) -> list[str]:
    """One row per entry; the keys in ``linked`` link to their own section."""
    lines = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for e in rows:
        key = f"[`{e.path}`](#{e.path})" if e.path in linked else f"`{e.path}`"
        lines.append(f"| {key} | {e.type} | {e.default} | {e.allowed} | {_prose(e.description)} |")
    return lines


def render(schema: Mapping) -> str:
    """The reference page: a table of the top-level keys, then one section per top-level object."""
    rows = entries(schema)
    top = [e for e in rows if "." not in e.path]
    sections = [e for e in top if any(r.path.startswith(f"{e.path}.") for r in rows)]
    lines = [
        "<!-- Generated from workflow_lib/config/schemas/config.schema.json; do not edit. Regenerate with:",
        f"     {COMMAND} -->",
        "",
        "# Configuration reference",
        "",
        "Every key of the pipeline's configuration, generated from its JSON schema "
        "(`workflow_lib/config/schemas/config.schema.json`), which holds the defaults and the descriptions. "
        "How the configuration is put together and overridden: [Configuration](../configuration.md).",
        "",
        f"A key path with `{PLACEHOLDER}` stands for any name you choose (an encoder in the catalogue, a "
        "training setting in the search space). *allowed* gives the values, bounds and patterns the schema "
        "accepts; a key without a default is left out unless you set it.",
        "",
        "## Top level",
        "",
        *_table(top, frozenset(e.path for e in sections)),
    ]
    for section in sections:
        lines += ["", f"## {section.path}", ""]
        if section.description:
            lines += [_prose(section.description), ""]
        lines += _table([e for e in rows if e.path.startswith(f"{section.path}.")])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_lib.config.reference",
        description="Write the configuration reference (Markdown) rendered from config.schema.json.",
    )
    parser.add_argument("output", help="the Markdown file to write, e.g. docs/reference/config.md")
    args = parser.parse_args(argv)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(load_schema("config")), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

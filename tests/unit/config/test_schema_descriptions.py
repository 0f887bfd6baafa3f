"""Every config key is documented in the schema, and docs/reference/config.md is what the schema renders."""

import json

import pytest

from workflow_lib.config import reference
from workflow_lib.config.schema import SCHEMA_DIR


def _config_schema() -> dict:
    return json.loads((SCHEMA_DIR / "config.schema.json").read_text(encoding="utf-8"))


def test_every_config_key_has_a_description():
    missing = reference.undocumented(_config_schema())
    assert not missing, (
        'keys of workflow_lib/config/schemas/config.schema.json without a "description" (the schema is the one '
        "home of key documentation; say what the key does, its unit and its effect):\n  " + "\n  ".join(missing)
    )


def test_committed_reference_equals_a_fresh_render(repo):
    committed = (repo / "docs" / "reference" / "config.md").read_text(encoding="utf-8")
    if committed != reference.render(_config_schema()):
        pytest.fail(
            "docs/reference/config.md differs from what config.schema.json renders; regenerate it from the repo "
            f"root with:\n  {reference.COMMAND}",
            pytrace=False,
        )


# -- the walker and the renderer on small schemas ----------------------------------------------------


TOY = {
    "type": "object",
    "required": ["model"],
    "properties": {
        "name": {"type": "string", "default": "x", "description": "A name."},
        "model": {"$ref": "#/$defs/model", "description": "The model."},
        "tags": {"type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"}}}},
        "catalogue": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
        "mode": {"anyOf": [{"$ref": "#/$defs/mode"}, {"type": "null"}], "default": None, "description": "A mode."},
    },
    "$defs": {
        "mode": {"enum": ["a", "b"]},
        "model": {
            "type": "object",
            "properties": {"kind": {"enum": ["p", "q"], "description": "Kind."}, "depth": {"type": "integer"}},
            "allOf": [
                {
                    "if": {"properties": {"kind": {"const": "p"}}},
                    "then": {"required": ["path"], "properties": {"path": {"type": "string", "description": "Path."}}},
                }
            ],
        },
    },
}


def test_undocumented_walks_properties_items_additional_properties_defs_and_branches():
    assert reference.undocumented(TOY) == ["tags", "tags[].label", "catalogue", "catalogue.<name>", "$defs.model.depth"]


def test_undocumented_reads_keys_not_conditions():
    schema = {
        "properties": {"a": {"type": "object", "description": "A.", "properties": {}}},
        "allOf": [{"if": {"properties": {"a": {"const": 1}}}, "then": {"properties": {"b": {"type": "string"}}}}],
    }
    assert reference.undocumented(schema) == ["b"]  # the if's "a" is a condition, not an undocumented key


def test_entries_resolve_refs_and_merge_branches():
    rows = {e.path: e for e in reference.entries(TOY)}
    assert list(rows) == [
        "name",
        "model",
        "model.kind",
        "model.depth",
        "model.path",
        "tags",
        "catalogue",
        "catalogue.<name>",
        "mode",
    ]
    assert rows["name"].default == "`x`" and rows["name"].type == "string"
    assert rows["model"].description == "The model." and rows["model"].allowed == "required"
    assert rows["model.path"].allowed == "required when kind is p"
    assert rows["model.kind"].allowed == "`p`, `q`"
    assert rows["mode"].type == "string or null" and rows["mode"].allowed == "`a`, `b`, `null`"
    assert rows["mode"].default == "`null`"
    assert rows["catalogue.<name>"].allowed == "any name; ≥ 1"
    assert rows["tags"].type == "array of object"


def test_render_keeps_placeholders_and_pipes_inside_their_cells():
    schema = {
        "properties": {
            "s": {
                "type": "object",
                "description": "Section.",
                "properties": {
                    "alias": {"type": "string", "pattern": "^(a|b)$", "description": "Alias of <name> | other."}
                },
            }
        }
    }
    page = reference.render(schema)
    assert "## s\n\nSection.\n" in page
    row = next(line for line in page.splitlines() if line.startswith("| `s.alias`"))
    assert row.count(" | ") == 4  # five cells: no pipe of the pattern or the text splits a cell
    assert "<code>^(a&#124;b)$</code>" in row and "Alias of &lt;name&gt; &#124; other." in row
    assert "| [`s`](#s) | object |" in page  # the top-level table links to the section


def test_main_writes_the_reference(tmp_path, capsys):
    out = tmp_path / "ref" / "config.md"
    assert reference.main([str(out)]) == 0
    assert out.read_text(encoding="utf-8") == reference.render(_config_schema())
    assert str(out) in capsys.readouterr().out

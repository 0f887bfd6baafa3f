"""The Jinja2 templates of the report pages and the model card (workflow_lib/shipping/templates/)."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import jinja2
import pytest
from test_model_card import SPEC, TCFG, coverage, data_card, report, uncertainty_report

from workflow_lib.shipping import model_card, report_html
from workflow_lib.shipping.report_html import Cell, Row, environment

REPO = Path(__file__).resolve().parents[3]
TEMPLATES = REPO / "workflow_lib" / "shipping" / "templates"


def test_every_template_is_package_data_and_parses():
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    files = sorted(p.relative_to(REPO / "workflow_lib").as_posix() for p in TEMPLATES.iterdir())
    assert "shipping/templates/model_card.md.j2" in files and "shipping/templates/base.html.j2" in files
    assert all(any(fnmatch(f, pat) for pat in patterns["workflow_lib"]) for f in files), files
    env = environment()
    assert sorted(env.list_templates()) == sorted(p.name for p in TEMPLATES.iterdir())
    for name in env.list_templates():
        env.get_template(name)  # a syntax error fails here


def test_html_templates_escape_and_fail_on_a_missing_value():
    env = environment()
    macros = env.get_template("macros.html.j2").module
    assert env.autoescape("selection.html.j2") and env.autoescape("macros.html.j2") and not env.autoescape("report.css")
    row = str(macros.row(Row(["<b>", Cell(0.5, num=True, title='a "t"', note="n&m"), Cell("k", code=True)], "")))
    assert row == (
        '<tr class=""><td>&lt;b&gt;</td><td class="num" title="a &#34;t&#34;">0.5 <small>(n&amp;m)</small></td>'
        "<td><code>k</code></td></tr>"
    )
    assert str(macros.row(Row([None]))) == "<tr><td></td></tr>"  # None is an empty cell, a row without class
    with pytest.raises(jinja2.UndefinedError, match="reason"):
        env.get_template("selection.html.j2").render(title="t", meta=[], candidates=[], plots=[], split="s")
    with pytest.raises(jinja2.UndefinedError):
        str(macros.row({"cells": [Cell("x")]}))  # a row without its class


def test_table_macro_head_from_labels_or_a_call_block():
    env = environment()
    rows = [Row(["a", Cell(1, num=True)], "x")]
    plain = env.from_string('{% import "macros.html.j2" as m %}{{ m.table(rows, ["h1", "h<2>"]) }}').render(rows=rows)
    assert (
        plain
        == '<table><tr><th>h1</th><th>h&lt;2&gt;</th></tr>\n<tr class="x"><td>a</td><td class="num">1</td></tr>\n</table>'
    )
    called = env.from_string(
        '{% import "macros.html.j2" as m %}{% call m.table(rows) %}<tr><th colspan="2">both</th></tr>{% endcall %}'
    ).render(rows=rows)
    assert called.startswith('<table><tr><th colspan="2">both</th></tr>\n<tr class="x">')


@pytest.mark.parametrize("variant", ["truncate", "windows", "no-coverage", "uncertainty"])
def test_the_card_template_needs_no_value_the_card_does_not_give(variant):
    """ModelCard.from_template renders with Jinja's lenient Undefined (a missing value would vanish): the same
    template under StrictUndefined, given only the card's values, renders the same card (also with the intervals,
    baselines, paper and calibration blocks of a report_version 3 report)."""
    from huggingface_hub import ModelCard

    rep = uncertainty_report() if variant == "uncertainty" else report(evidence=variant != "no-coverage")
    if variant == "windows":
        rep["input_coverage"] = coverage("windows", max_windows=4, n_capped=3)
    elif variant == "no-coverage":
        del rep["input_coverage"]
    args = {"backbone_spec": SPEC, "train_cfg": TCFG, "registered_model": "m", "model_alias": "a"}
    view = model_card.card_view(rep, data_card(), **args)
    data = model_card.card_data(rep, data_card(), view["name"])
    strict = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(model_card.TEMPLATE.read_text())
    text = model_card.render_model_card(rep, data_card(), **args)
    assert strict.render(card_data=data.to_yaml(), **view).rstrip("\n") + "\n" == text
    assert ModelCard(text).data.model_name == view["name"]
    del view["window"]
    with pytest.raises(jinja2.UndefinedError, match="window"):
        strict.render(card_data=data.to_yaml(), **view)


def test_markdown_cells_are_escaped_for_tables():
    rep = report()
    rep["selected"]["params"] = {"a": "x|y"}
    text = model_card.render_model_card(rep, data_card(), backbone_spec=SPEC)
    (line,) = [line for line in text.splitlines() if line.startswith("| selected params |")]
    assert line == '| selected params | `{"a": "x\\|y"}` |'


def test_highlight_is_the_pages_macro():
    text = 'a "b" c'
    marked = report_html.highlight(text, {"X": [{"start": 2, "end": 5}]}, "span-gold")
    assert marked == 'a <mark class="span-gold" title="X">&#34;b&#34;</mark> c'
    assert re.sub(r"<[^>]+>", "", marked).replace("&#34;", '"') == text


def test_the_pages_html_templates_need_no_value_the_pages_do_not_give():
    """Every block of the evaluation page that a report_version 3 report adds renders under StrictUndefined (the
    environment's): a value the template names and the view does not give would fail here."""
    from test_evaluation_page import _rows_of_arrays

    rep = uncertainty_report(co_best=True)
    rows, texts = _rows_of_arrays(rep)
    text = report_html.evaluation_page(rep, rows, texts).html
    for block in ("Model vs baseline (test split)", "As in the ReDSM5 paper (test split)", "Calibration (test split"):
        assert f"<h2>{block}" in text
    macros = environment().get_template("macros.html.j2").module
    cell = Cell("FATIGUE", flag=report_html.Flag("n=2 ⚠", 'fewer than 5 "positive"'))
    assert str(macros.cell(cell)) == (
        '<td>FATIGUE&nbsp;<span class="few" title="fewer than 5 &#34;positive&#34;">n=2 ⚠</span></td>'
    )
    assert str(macros.cell(Cell("0.5 [0.4, 0.6]", num=True, interval=True))) == '<td class="num iv">0.5 [0.4, 0.6]</td>'

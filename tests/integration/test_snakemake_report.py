"""Snakemake's own report (`snakemake --report`) over the smoke run: categories, captions, pages, plots.

Reuses the session's smoke run (no pipeline run of its own). The report is generated with every
HTTP(S) proxy pointed at a closed port, so any fetch at generation time (a CDN asset) would fail.
"""

import base64
import json
import re
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from snakerun import env, snakemake_cmd

pytestmark = pytest.mark.integration

CATEGORIES = {
    "1. Data": {"Data card"},
    "2. Model selection": {"Selection page", "Selection plots"},
    "3. Test evaluation": {"Evaluation page", "Evaluation plots"},
}
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, every proxied request fails


def _offline_env() -> dict:
    e = env()
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        e[var] = DEAD_PROXY
    e.pop("NO_PROXY", None)
    e.pop("no_proxy", None)
    return e


def _tree(root: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _make_report(workdir: Path, name: str):
    before = _tree(workdir / "results")
    t0 = time.perf_counter()
    proc = subprocess.run(
        snakemake_cmd(workdir, "--report", name),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env=_offline_env(),
    )
    seconds = time.perf_counter() - t0
    (workdir / "snakemake_runs.log").open("a").write(
        f"\n==== --report {name} rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}\n"
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Report created" in proc.stderr
    assert "downloading" not in proc.stderr.lower(), proc.stderr[-4000:]
    assert _tree(workdir / "results") == before, "--report changed files under results/"
    path = workdir / name
    print(f"{name}: {path.stat().st_size / 1e6:.2f} MB in {seconds:.1f} s")
    return path


def _expected(res: Path) -> dict:
    """What the run wrote that the report must hold: path (relative to the workdir) -> file."""
    card = sorted(res.glob("data/*/data_card.json"))
    sel_pages = sorted(res.glob("selection/*/selection_report.html"))
    eval_pages = sorted(res.glob("final/*/evaluation_report.html"))
    sel_plots = sorted(res.glob("selection/*/plots/*.png"))
    eval_plots = sorted(res.glob("final/*/plots/*.png"))
    assert len(card) == len(sel_pages) == len(eval_pages) == 1, (card, sel_pages, eval_pages)
    assert len(sel_plots) >= 3 and len(eval_plots) >= 4, (sel_plots, eval_plots)
    return {
        "card": card,
        "sel_page": sel_pages,
        "eval_page": eval_pages,
        "sel_plots": sel_plots,
        "eval_plots": eval_plots,
    }


def _script_json(page: str, var: str):
    m = re.search(rf'<script id="[^"]+">\s*var {var} = (.*?);\s*</script>', page, flags=re.S)
    assert m, f"no `var {var}` in the report"
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def html_report(smoke_run):
    return _make_report(smoke_run["dir"], "report.html")


def test_html_report_holds_pages_plots_and_data_card(smoke_run, html_report):
    workdir = smoke_run["dir"]
    exp = _expected(workdir / "results")
    page = html_report.read_text()
    rel = lambda paths: sorted(str(p.relative_to(workdir)) for p in paths)  # noqa: E731

    categories = _script_json(page, "categories")
    assert {c: set(subs) for c, subs in categories.items()} == CATEGORIES
    assert sorted(categories["1. Data"]["Data card"]) == rel(exp["card"])
    assert sorted(categories["2. Model selection"]["Selection page"]) == rel(exp["sel_page"])
    assert sorted(categories["2. Model selection"]["Selection plots"]) == rel(exp["sel_plots"])
    assert sorted(categories["3. Test evaluation"]["Evaluation page"]) == rel(exp["eval_page"])
    assert sorted(categories["3. Test evaluation"]["Evaluation plots"]) == rel(exp["eval_plots"])

    results = _script_json(page, "results")
    files = [p for group in exp.values() for p in group]
    assert sorted(results) == rel(files)
    for path in files:
        entry = results[str(path.relative_to(workdir))]
        head, _, data = entry["data_uri"].partition(";base64,")
        assert base64.b64decode(data) == path.read_bytes(), path  # embedded whole, byte for byte
        mime = {".html": "text/html", ".png": "image/png", ".json": "application/json"}[path.suffix]
        assert entry["mime_type"] == mime and head.startswith(f"data:{mime};"), head
        assert "{{" not in entry["caption"] and "{%" not in entry["caption"], entry["caption"]

    sel_key = exp["sel_page"][0].parent.name
    final_key = exp["eval_page"][0].parent.name
    data_key = exp["card"][0].parent.name
    sel_page = results[rel(exp["sel_page"])[0]]
    assert sel_key in sel_page["caption"] and "held-out CV folds" in sel_page["caption"]
    rule = json.loads((exp["sel_page"][0].parent / "selection_report.json").read_text())["rule"]
    budget = rule["latency_budget_ms"]  # the rule the caption quotes (from the rule's params)
    assert ("(no latency budget)" if budget is None else f"within {budget} ms") in sel_page["caption"]
    assert (
        f"within {rule['tie_tolerance']} of the best are tied"
        if rule["tie_tolerance"]
        else "equal scores go to the lowest latency"
    ) in sel_page["caption"]
    assert sel_page["labels"] == {"page": "selection", "selection_key": sel_key}
    assert sel_page["job_properties"]["rule"] == "select_model"
    eval_page = results[rel(exp["eval_page"])[0]]
    assert final_key in eval_page["caption"] and "test split" in eval_page["caption"]
    assert eval_page["labels"] == {"page": "evaluation", "final_key": final_key}
    assert eval_page["job_properties"]["rule"] == "final"
    card = results[rel(exp["card"])[0]]
    assert data_key in card["caption"] and card["labels"] == {"file": "data_card.json", "data_key": data_key}

    # every plot has its own description (a plot name the caption does not know gets a generic line)
    for group, key, generic in (
        ("sel_plots", sel_key, "A plot of the selection page."),
        ("eval_plots", final_key, "A plot of the evaluation page."),
    ):
        captions = set()
        for path in exp[group]:
            entry = results[str(path.relative_to(workdir))]
            assert generic not in entry["caption"], f"rules/report captions do not describe {path.name}"
            assert key in entry["caption"] and f"plots/{path.name}" in entry["caption"]
            assert entry["labels"]["figure"] == path.stem
            captions.add(entry["caption"])
        assert len(captions) == len(exp[group])

    desc = _script_json(page, "workflow_desc")
    assert "ReDSM5 transformer pipeline" in desc and "3. Test evaluation" in desc
    # nothing is loaded from elsewhere when the report opens
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="https?:', page)


def test_zip_report_lists_every_file(smoke_run, html_report):
    workdir = smoke_run["dir"]
    exp = _expected(workdir / "results")
    path = _make_report(workdir, "report.zip")
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert "report/report.html" in names
        for f in (p for group in exp.values() for p in group):
            hits = [n for n in names if n.startswith("report/data/raw/") and n.endswith("/" + f.name)]
            assert len(hits) == 1, (f, hits)
            assert z.read(hits[0]) == f.read_bytes()
        index = z.read("report/report.html").decode()
    assert set(_script_json(index, "categories")) == set(CATEGORIES)

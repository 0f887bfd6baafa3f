"""Self-contained HTML pages: the selection report and the final model's evaluation report.

The pages are Jinja2 templates (templates/selection.html.j2 and templates/evaluation.html.j2 on the layout
templates/base.html.j2, their repeated pieces in templates/macros.html.j2: tables, figures, the highlighted
post excerpts), autoescaped, with StrictUndefined: a value the template names and the page was not given
fails the render. This module prepares their values (report dicts turned into rows of formatted cells,
example posts into text segments) and draws the plots.

The evaluation page reads the uncertainty fields of a report_version 3 report (learning/uncertainty.py): every
test figure with its bootstrap interval, a few-positives badge wherever a symptom's test figures appear, how the
thresholds were chosen (source, rule, out-of-fold F1, each symptom's decision), the model against each baseline
(paired difference, one-sided p, one sentence), the paper's ten-label definitions beside the published rows,
calibration (Brier, ECE, the reliability diagram) and the CV t-interval; the selection page the candidates'
t-intervals, the corrected resampled t-tests and the winner-lead sentence. Each of these fields is optional: a
report without it renders as before (the wording is report_text.py's, shared with the model card).

For the sentence model (``task.criteria_from: sentences``) the evaluation page also says how its decisions and
evidence come from the same sentence scores, states the evidence threshold (``thresholds.evidence``: value, how
and on which split it was chosen, the rule) and the test split's sentence-level metrics (``metrics.sentences``),
and its example posts mark the predicted evidence sentences in one colour per symptom (legend above them), each
followed by a tag per symptom with its score, beside the gold evidence sentences in the same colours: ✓ where the
other column marks the same symptom, ✗ where it does not (a false alarm, a miss).

Plots are drawn with matplotlib's Agg canvas (no pyplot, no global backend switch) and inlined as base64
PNG; the same PNGs can also be written as files (``Page.write``: ``plots/<name>.png`` beside the page). CSS
is inline (templates/report.css). Nothing is fetched when a page opens.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from workflow_lib.learning.spans import merge_spans
from workflow_lib.persistence.reports import atomic_write_text
from workflow_lib.shipping import report_text
from workflow_lib.shipping.report_text import Flag
from workflow_lib.symptoms import SYMPTOMS

TEMPLATES = Path(__file__).with_name("templates")


@functools.cache
def environment() -> Environment:
    """The pages' Jinja2 environment: templates/ of this package, autoescaped .html.j2 templates, StrictUndefined,
    None rendered as an empty string."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
        undefined=StrictUndefined,
        finalize=lambda value: "" if value is None else value,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(template: str, **values: Any) -> str:
    return environment().get_template(template).render(**values)


def _num(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _of(n, total) -> str:
    """'12 of 80 (15.0%)'."""
    return f"{n} of {total} ({_pct(n / total if total else 0.0)})"


@dataclass(frozen=True)
class Cell:
    """A table cell (macros.cell): ``num`` right-aligned figures, ``interval`` a figure with its interval (kept on
    one line, its small print below), ``code`` a key, ``title`` a tooltip, ``note`` small print after the text,
    ``flag`` a few-positives badge after it (its title says why)."""

    text: Any
    num: bool = False
    interval: bool = False
    code: bool = False
    title: str | None = None
    note: str | None = None
    flag: Flag | None = None


def _num_cell(x, digits: int = 3) -> Cell:
    """A figure: a float (or a missing one, '–') to ``digits`` decimals, a count as it is."""
    return Cell(_num(x, digits) if isinstance(x, float) or x is None else x, num=True)


def _fig_cell(x, iv: Mapping | None = None, digits: int = 3) -> Cell:
    """A figure with its interval when the report gives one ('0.552 [0.471, 0.630]', 3 decimals), else as
    :func:`_num_cell`; the title counts the resamples on which the figure was undefined."""
    text = report_text.interval(iv)
    if text is None:
        return _num_cell(x, digits)
    undefined = iv.get("n_undefined") or 0
    title = f"{undefined} resamples left out: undefined there" if undefined else None
    return Cell(text, num=True, interval=True, title=title)


def _diff_cell(pd: Mapping | None) -> Cell:
    """A paired difference with its interval, the one-sided p-value as small print; '–' without one."""
    if not pd:
        return Cell("–", num=True)
    p = report_text.p_value(pd.get("p_value"))
    return Cell(report_text.difference(pd), num=True, interval=True, note=f"one-sided p = {p}")


@dataclass
class Row:
    """A table row (macros.row): its cells (plain values become text cells) and its CSS class."""

    cells: list
    cls: str | None = None

    def __post_init__(self) -> None:
        self.cells = [c if isinstance(c, Cell) else Cell(c) for c in self.cells]


@dataclass(frozen=True)
class Plot:
    """A page's plot: the PNG bytes (written as ``plots/<name>.png``) and what the page's <figure> shows."""

    name: str
    png: bytes
    alt: str
    caption: str

    @property
    def b64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


def _png_bytes(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _plot(name: str, fig: Figure, alt: str, caption: str) -> Plot:
    return Plot(name, _png_bytes(fig), alt, caption)


@dataclass
class Page:
    """An HTML page and its plots (PNG bytes by file stem), the same images the page inlines."""

    html: str
    plots: dict[str, bytes] = field(default_factory=dict)

    def write(self, html_path, plots_dir=None) -> None:
        """The plots into ``plots_dir`` (``<name>.png``, see :func:`write_plots`), then the page (atomically)."""
        if plots_dir is not None:
            write_plots(plots_dir, self.plots)
        atomic_write_text(html_path, self.html)


def _page(template: str, images: Sequence[Plot], **values: Any) -> Page:
    return Page(_render(template, **values), {p.name: p.png for p in images})


def write_plots(folder, plots: Mapping[str, bytes]) -> list[str]:
    """Write ``plots`` as ``folder/<name>.png`` (each file atomically: a temporary file renamed into
    place) and remove the folder's other PNG files, so it never mixes two runs' plots; return the paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in plots.items():
        path = out / f"{name}.png"
        tmp = out / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        paths.append(str(path))
    for stale in out.glob("*.png"):
        if stale.stem not in plots:
            stale.unlink()
    return paths


# ================================================================ selection page
def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def _cand_label(c: Mapping) -> str:
    return f"{c.get('backbone')} v{c.get('variant')}\n{str(c.get('trial_key', ''))[:8]}"


# ---------------------------------------------------------------- plots
def _plot_history(study_summaries: Sequence[Mapping], metric: str) -> Figure:
    n = max(1, len(study_summaries))
    fig = Figure(figsize=(7.5, 2.6 * n))
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    if not study_summaries:
        _no_data(axes[0], "no study summaries")
    for ax, study in zip(axes, study_summaries):
        trials = sorted(study.get("trials") or [], key=lambda t: t.get("number", 0))
        done = [(t["number"], t["mean"]) for t in trials if t.get("state") == "COMPLETE" and t.get("mean") is not None]
        pruned = []
        for t in trials:
            if t.get("state") != "PRUNED":
                continue
            vals = [v for v in (t.get("fold_scores") or []) if v is not None]
            y = t.get("mean") if t.get("mean") is not None else (sum(vals) / len(vals) if vals else None)
            pruned.append((t["number"], y))
        title = f"{study.get('backbone')} v{study.get('variant')} (study {study.get('study_key')})"
        ax.set_title(title, fontsize=9)
        if not done and not pruned:
            _no_data(ax, "no scored trials")
            continue
        if done:
            xs, ys = zip(*done)
            ax.plot(xs, ys, "o", color="#1f77b4", label="complete")
            best, running = [], -math.inf
            for y in ys:
                running = max(running, y)
                best.append(running)
            ax.step(xs, best, where="post", color="#2ca02c", label="best so far")
        known = [(x, y) for x, y in pruned if y is not None]
        if known:
            ax.plot(*zip(*known), "x", color="#d62728", label="pruned (partial mean)")
        unknown = [x for x, y in pruned if y is None]
        if unknown:
            lo = ax.get_ylim()[0] if done or known else 0.0
            ax.plot(
                unknown,
                [lo] * len(unknown),
                "x",
                color="#d62728",
                alpha=0.5,
                label="pruned (no fold scored)" if not known else None,
            )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("trial number")
        ax.set_ylabel(f"CV {metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _plot_folds(candidates: Sequence[Mapping], baselines: Sequence[Mapping], metric: str) -> Figure:
    groups, labels = [], []
    for c in candidates:
        groups.append([v for v in (c.get("fold_scores") or []) if v is not None])
        labels.append(_cand_label(c))
    for b in baselines:
        groups.append([v for v in (b.get("fold_scores") or []) if v is not None])
        labels.append(str(b.get("name", "baseline")))
    fig = Figure(figsize=(max(5.0, 1.1 * len(groups) + 2), 3.6))
    ax = fig.subplots()
    if not any(groups):
        _no_data(ax, "no fold scores")
    else:
        pos = list(range(1, len(groups) + 1))
        ax.boxplot([g if g else [float("nan")] for g in groups], positions=pos, widths=0.5, showfliers=False)
        for p, g, c in zip(pos, groups, list(candidates) + [None] * len(baselines)):
            color = "#2ca02c" if (c is not None and c.get("selected")) else ("#7f7f7f" if c is None else "#1f77b4")
            offsets = [(-0.12 + 0.24 * i / max(1, len(g) - 1)) if len(g) > 1 else 0.0 for i in range(len(g))]
            ax.scatter([p + o for o in offsets], g, color=color, zorder=3, s=18)
        ax.set_xticks(pos)
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel(f"{metric} per held-out fold")
        ax.grid(axis="y", alpha=0.3)
    ax.set_title("per-fold scores (green = selected, grey = baseline)", fontsize=9)
    fig.tight_layout()
    return fig


def _latency_where(rule: Mapping) -> str:
    """What the selection's latency figure measures (selection.latency_metric)."""
    if rule.get("latency_metric", "fixed_shape_p95") == "per_post_p95":
        return "per post (the data's own posts, all their windows, one at a time)"
    return f"at batch {rule.get('latency_batch_size')} x length {rule.get('latency_seq_length')}"


def _plot_tradeoff(candidates: Sequence[Mapping], rule: Mapping, baselines: Sequence[Mapping], metric: str) -> Figure:
    fig = Figure(figsize=(6.5, 4.0))
    ax = fig.subplots()
    pts = [c for c in candidates if c.get("latency_p95_ms") is not None]
    if not pts:
        _no_data(ax, "no latency measurements")
    else:
        for c in pts:
            color = "#2ca02c" if c.get("selected") else ("#1f77b4" if c.get("within_budget", True) else "#bbbbbb")
            ax.errorbar(c["latency_p95_ms"], c["cv_mean"], yerr=c.get("cv_std") or 0, fmt="o", color=color, capsize=3)
            ax.annotate(
                f"{c.get('backbone')} v{c.get('variant')}",
                (c["latency_p95_ms"], c["cv_mean"]),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=7,
            )
        budget = rule.get("latency_budget_ms")
        if budget is not None:
            ax.axvline(budget, color="#d62728", ls="--", label=f"budget {budget} ms")
        for i, b in enumerate(baselines):
            if b.get("mean") is not None:
                ls = (":", "-.", "--", (0, (1, 3)))[i % 4]
                ax.axhline(b["mean"], color="#7f7f7f", ls=ls, label=f"{b.get('name', 'baseline')}")
        if budget is not None or baselines:
            ax.legend(fontsize=7)
        ax.set_xlabel(f"p95 latency (ms) {_latency_where(rule)}")
        ax.set_ylabel(f"CV {metric} (mean ± std)")
        ax.grid(alpha=0.3)
    ax.set_title("score vs latency", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- page values
def _trial_coverage(study_summaries: Sequence[Mapping]) -> dict[str, Mapping]:
    """trial_key -> the trial's input coverage over its CV folds (study summary, hpo.pooled_coverage)."""
    return {
        t["trial_key"]: t["input_coverage"]
        for s in study_summaries or []
        for t in s.get("trials") or []
        if t.get("trial_key") and t.get("input_coverage")
    }


def _coverage_cell(cov: Mapping | None) -> Cell:
    """A candidate's share of posts longer than the window (its CV folds), with what that means for it."""
    if not cov:
        return Cell("–")
    detail = (
        f"{cov['max_length']} tokens, truncate: evidence past the window {_pct(cov['share_evidence_beyond_read'])}"
        if cov["policy"] == "truncate"
        else f"{cov['max_length']} tokens, windows: {cov['windows_read']['mean']:.2f} per post, "
        f"{cov['n_posts_capped']} capped"
    )
    return Cell(_pct(cov["share_longer_than_window"]), num=True, title=cov.get("policy_text"), note=detail)


def _folds(scores: Sequence | None) -> str:
    return ", ".join(_num(v) for v in (scores or []))


T_INTERVAL_TITLE = (
    "Student-t interval over the folds: optimistic (too narrow), the folds share training posts; "
    "the comparisons below use the corrected resampled t-test"
)


def _cv_cell(mean, std, ci: Mapping | None) -> Cell:
    """A CV mean: '0.5500 ± 0.0400', or with its t-interval '0.550 [0.512, 0.588]' (sd as small print)."""
    if not ci:
        return Cell(f"{_num(mean)} ± {_num(std)}", num=True)
    note = f"sd {_num(ci.get('sd'), 3)}, {ci.get('k')} folds"
    return Cell(report_text.t_interval(ci), num=True, interval=True, title=T_INTERVAL_TITLE, note=note)


def _candidate_row(c: Mapping, cov: Mapping | None) -> Row:
    at = c.get("latency_measured_at") or {}
    latency = _num(c.get("latency_p95_ms"), 2)
    if at and not at.get("exact", True):
        latency += f" (nearest: b{at.get('batch_size')} x s{at.get('seq_length')})"
    cells = [
        Cell(c.get("rank") if c.get("rank") is not None else "–", num=True),
        c.get("backbone"),
        Cell(c.get("variant"), num=True),
        Cell(c.get("trial_key"), code=True),
        _cv_cell(c.get("cv_mean"), c.get("cv_std"), c.get("cv_interval")),
        _folds(c.get("fold_scores")),
        _coverage_cell(cov),
        Cell(latency, num=True),
        "yes" if c.get("within_budget") else "no",
        "✔" if c.get("selected") else "",
    ]
    return Row(cells, "selected" if c.get("selected") else ("excluded" if not c.get("within_budget", True) else ""))


def _candidate_rows(report: Mapping, study_summaries: Sequence[Mapping]) -> list[Row]:
    """One row per candidate (class selected / excluded / none), then one per baseline."""
    coverage = _trial_coverage(study_summaries)
    rows = [_candidate_row(c, coverage.get(c.get("trial_key"))) for c in report.get("candidates") or []]
    for b in report_text.baselines(report):
        mean = _cv_cell(b.get("mean"), b.get("std"), b.get("cv_interval"))
        name = Cell(f"{b.get('name', 'baseline')} (baseline)", title=b.get("model"))
        rows.append(Row(["–", name, "–", "–", mean, _folds(b.get("fold_scores")), "–", "–", "–", ""], "baseline"))
    return rows


def _cv_head(report: Mapping) -> str:
    """The candidates table's CV column: with t-intervals once any row has one."""
    rows = [*(report.get("candidates") or []), *report_text.baselines(report)]
    return "CV mean [95% t-interval]" if any(r.get("cv_interval") for r in rows) else "CV mean ± std"


def _pair_label(key: str, candidates: Mapping[str, Mapping]) -> str:
    """A comparison's side: 'minilm v2 (bbbbbbbb)' for a candidate's trial key, 'tfidf_logreg (baseline)'."""
    if key.startswith("baseline:"):
        return f"{key.removeprefix('baseline:')} (baseline)"
    c = candidates.get(key)
    return f"{c.get('backbone')} v{c.get('variant')} ({key[:8]})" if c else key


def _comparison_rows(report: Mapping) -> list[Row]:
    """One row per comparison: a − b per fold, its mean, the corrected t, its degrees of freedom and the
    one-sided p-value (H1: a better than b)."""
    cands = {c.get("trial_key"): c for c in report.get("candidates") or []}
    rows = []
    for cmp in report.get("comparisons") or []:
        t = cmp.get("test") or {}
        pair = f"{_pair_label(cmp['a'], cands)} − {_pair_label(cmp['b'], cands)}"
        uncorrected = f"uncorrected paired t = {_num(t.get('t_uncorrected'), 2)}"
        cells = [
            pair,
            cmp.get("metric", report.get("metric")),
            ", ".join(report_text.number(d, 3, signed=True) for d in cmp.get("fold_differences") or []),
            Cell(report_text.number(t.get("mean_difference"), 3, signed=True), num=True),
            Cell(_num(t.get("t"), 2), num=True, title=uncorrected),
            Cell(t.get("df"), num=True),
            Cell(report_text.p_value(t.get("p_one_sided")), num=True),
        ]
        rows.append(Row(cells, "comparison"))
    return rows


def _selection_meta(report: Mapping) -> list[tuple[str, Any]]:
    rule = report.get("rule") or {}
    meta = [
        ("selection_key", report.get("selection_key")),
        ("metric", report.get("metric", "score")),
        ("split", report.get("split")),
        ("latency budget (ms)", rule.get("latency_budget_ms")),
        ("latency at", _latency_where(rule)),
        ("tie tolerance", rule.get("tie_tolerance")),
        ("code_version", report.get("code_version")),
    ]
    return [(k, "none" if v is None else v) for k, v in meta]


def _baseline_word(baselines: Sequence[Mapping]) -> str:
    return "baselines" if len(baselines) > 1 else "baseline"


def _selection_plots(report: Mapping, study_summaries: Sequence[Mapping]) -> list[Plot]:
    metric = report.get("metric", "score")
    cands, baselines = report.get("candidates") or [], report_text.baselines(report)
    return [
        _plot(
            "optimisation_history",
            _plot_history(study_summaries, metric),
            "optimisation history",
            "Optimisation history per study: objective per trial (x = pruned), line = best so far.",
        ),
        _plot(
            "fold_scores",
            _plot_folds(cands, baselines, metric),
            "per-fold scores",
            f"Spread of the per-fold held-out scores of every candidate and the {_baseline_word(baselines)}.",
        ),
        _plot(
            "score_vs_latency",
            _plot_tradeoff(cands, report.get("rule") or {}, baselines, metric),
            "score vs latency",
            "CV score against p95 latency; dashed line = latency budget.",
        ),
    ]


def selection_page(report: dict, study_summaries: list[dict], *, evaluation_link: str | None = None) -> Page:
    """The selection report as one self-contained HTML page, with its plots.

    ``evaluation_link``: relative URL of the final model's evaluation page (it exists once the
    final stage has run).
    """
    sel = report.get("selected") or {}
    plots = _selection_plots(report, study_summaries or [])
    return _page(
        "selection.html.j2",
        plots,
        title=f"Model selection: {sel.get('backbone', '?')} v{sel.get('variant', '?')}",
        reason=report.get("reason", ""),
        evaluation_link=evaluation_link,
        meta=_selection_meta(report),
        candidates=_candidate_rows(report, study_summaries),
        cv_head=_cv_head(report),
        comparisons=_comparison_rows(report),
        winner_lead=(report.get("winner_lead") or {}).get("text"),
        plots=plots,
        split=report.get("split", "cv heldout folds"),
    )


def render_selection_html(report: dict, study_summaries: list[dict], *, evaluation_link: str | None = None) -> str:
    """The selection report as one self-contained HTML page (see :func:`selection_page`)."""
    return selection_page(report, study_summaries, evaluation_link=evaluation_link).html


# ================================================================ evaluation page (final model, test split)
def _grid(n: int = 9, cols: int = 3, size: tuple[float, float] = (3.2, 2.6)):
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(size[0] * cols, size[1] * rows))
    return fig, fig.subplots(rows, cols, squeeze=False).ravel()


def _arrays(rows: Sequence[Mapping], symptoms: Sequence[str]):
    import numpy as np

    y = np.array([[int(r["labels"][s]) for s in symptoms] for r in rows], dtype=int).reshape(len(rows), len(symptoms))
    p = np.array([[float(r["probabilities"][s]) for s in symptoms] for r in rows], dtype=float).reshape(
        len(rows), len(symptoms)
    )
    return y, p


def _tick(s: str, n: int, flags: Mapping[str, Flag]) -> str:
    """A symptom's axis label: its name, its positive test posts, and the few-positives flag."""
    return f"{s}\n(n={n}{' ' + report_text.FLAG if s in flags else ''})"


def _plot_symptom_bars(
    per: Mapping[str, Mapping], symptoms: Sequence[str], origin: str, flags: Mapping[str, Flag]
) -> Figure:
    fig = Figure(figsize=(10.0, 3.8))
    ax = fig.subplots()
    keys = [("precision", "#1f77b4"), ("recall", "#ff7f0e"), ("f1", "#2ca02c"), ("pr_auc", "#9467bd")]
    width = 0.2
    for k, (key, color) in enumerate(keys):
        xs = [i + (k - 1.5) * width for i in range(len(symptoms))]
        vals = [per[s][key] if per[s][key] is not None else 0.0 for s in symptoms]
        ax.bar(xs, vals, width, color=color, label="PR-AUC" if key == "pr_auc" else key)
    ax.set_xticks(range(len(symptoms)))
    ax.set_xticklabels([_tick(s, per[s]["support"], flags) for s in symptoms], fontsize=7, rotation=20, ha="right")
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("score (test split)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=4, loc="upper center")
    ax.set_title(f"per symptom on the test split, at the thresholds {origin} (PR-AUC: threshold-free)", fontsize=9)
    fig.tight_layout()
    return fig


def _plot_pr_curves(
    rows: Sequence[Mapping], per: Mapping, per05: Mapping, symptoms: Sequence[str], flags: Mapping[str, Flag]
) -> Figure:
    from sklearn.metrics import precision_recall_curve

    y, p = _arrays(rows, symptoms)
    fig, axes = _grid(len(symptoms))
    for j, (ax, s) in enumerate(zip(axes, symptoms)):
        flag = f" {report_text.FLAG}" if s in flags else ""
        ax.set_title(f"{s} ({int(y[:, j].sum()) if len(rows) else 0} positive{flag})", fontsize=8)
        if not len(rows) or not y[:, j].any():
            _no_data(ax, "no positive test post")
            continue
        prec, rec, _ = precision_recall_curve(y[:, j], p[:, j])
        ax.step(rec, prec, where="post", color="#1f77b4")
        ax.axhline(y[:, j].mean(), color="#bbbbbb", ls=":", lw=1)
        ax.plot(per[s]["recall"], per[s]["precision"], "o", color="#2ca02c", label=f"tuned {per[s]['threshold']:.2f}")
        ax.plot(per05[s]["recall"], per05[s]["precision"], "s", color="#d62728", mfc="none", label="0.5")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel("recall", fontsize=7)
        ax.set_ylabel("precision", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower left")
    for ax in axes[len(symptoms) :]:
        ax.set_visible(False)
    fig.suptitle(
        "precision-recall curves on the test split (dotted: positive rate; dots: operating points)", fontsize=9
    )
    fig.tight_layout()
    return fig


def _plot_thresholds(
    per: Mapping, per05: Mapping, symptoms: Sequence[str], origin: str, flags: Mapping[str, Flag]
) -> Figure:
    fig = Figure(figsize=(10.0, 3.6))
    ax = fig.subplots()
    xs = range(len(symptoms))
    ax.bar(
        [x - 0.2 for x in xs], [per[s]["f1"] for s in symptoms], 0.4, color="#2ca02c", label="F1 at the tuned threshold"
    )
    ax.bar([x + 0.2 for x in xs], [per05[s]["f1"] for s in symptoms], 0.4, color="#bbbbbb", label="F1 at 0.5")
    for x, s in zip(xs, symptoms):
        ax.annotate(
            f"t={per[s]['threshold']:.2f}",
            (x - 0.2, per[s]["f1"]),
            textcoords="offset points",
            xytext=(0, 2),
            ha="center",
            fontsize=6,
        )
    ax.set_xticks(list(xs))
    ax.set_xticklabels(
        [f"{s} {report_text.FLAG}" if s in flags else s for s in symptoms], fontsize=7, rotation=20, ha="right"
    )
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("F1 (test split)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper center")
    ax.set_title(f"test F1 at the thresholds {origin} vs at 0.5", fontsize=9)
    fig.tight_layout()
    return fig


def _plot_probabilities(rows: Sequence[Mapping], per: Mapping, symptoms: Sequence[str]) -> Figure:
    y, p = _arrays(rows, symptoms)
    fig, axes = _grid(len(symptoms), size=(3.2, 2.2))
    bins = [i / 20 for i in range(21)]
    for j, (ax, s) in enumerate(zip(axes, symptoms)):
        ax.set_title(s, fontsize=8)
        if not len(rows):
            _no_data(ax, "no test posts")
            continue
        ax.hist(p[y[:, j] == 0, j], bins=bins, color="#bbbbbb", label="gold absent")
        ax.hist(p[y[:, j] == 1, j], bins=bins, color="#1f77b4", alpha=0.8, label="gold present")
        ax.axvline(per[s]["threshold"], color="#2ca02c", lw=1.2)
        ax.axvline(0.5, color="#d62728", ls=":", lw=1)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=6)
        if j == 0:
            ax.legend(fontsize=6)
    for ax in axes[len(symptoms) :]:
        ax.set_visible(False)
    fig.suptitle("predicted probabilities on the test split (green: tuned threshold, red dotted: 0.5)", fontsize=9)
    fig.tight_layout()
    return fig


def _plot_reliability(cal: Mapping, symptoms: Sequence[str], flags: Mapping[str, Flag]) -> Figure:
    """Reliability diagram per symptom (small multiples) from the calibration's bins: observed frequency against
    mean predicted probability, a dot per bin sized by its posts (bins without posts skipped), the diagonal."""
    per = cal.get("per_symptom") or {}
    fig, axes = _grid(len(symptoms), size=(3.2, 3.0))
    for ax, s in zip(axes, symptoms):
        entry = per.get(s) or {}
        flag = f" {report_text.FLAG}" if s in flags else ""
        ax.set_title(f"{s} (n={entry.get('n_positives', '?')}{flag}, ECE {_num(entry.get('ece'), 3)})", fontsize=8)
        ax.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1)
        bins = [b for b in entry.get("bins") or [] if b.get("count")]
        if bins:
            xs, ys = [b["mean_predicted"] for b in bins], [b["observed_frequency"] for b in bins]
            total = sum(b["count"] for b in bins)
            ax.plot(xs, ys, "-", color="#1f77b4", lw=1)
            ax.scatter(xs, ys, s=[10 + 140 * b["count"] / total for b in bins], color="#1f77b4", zorder=3)
        else:
            _no_data(ax, "no posts")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("mean predicted probability", fontsize=7)
        ax.set_ylabel("observed frequency", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in axes[len(symptoms) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"reliability on the {cal.get('split', 'test')} split: per probability bin, the share of posts with the "
        "symptom (dot size: posts in the bin; dashed: perfect calibration)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def _evaluation_plots(report: Mapping, rows: Sequence[Mapping], symptoms: Sequence[str]) -> list[Plot]:
    per, per05 = report["metrics"]["test"]["per_symptom"], report["metrics"]["test_at_0.5"]["per_symptom"]
    split = report["split"]
    thr = report["thresholds"]
    origin, flags = report_text.threshold_origin(thr), report_text.few_positive_flags(report)
    chosen = origin if thr.get("source") in report_text.THRESHOLD_SOURCES else f"tuned on the {thr['split']} split"
    plots = [
        _plot(
            "per_symptom_scores",
            _plot_symptom_bars(per, symptoms, origin, flags),
            "per-symptom scores",
            f"Precision, recall, F1 ({split} split, tuned thresholds) and PR-AUC ({split} split) per symptom; "
            "n = positive test posts.",
        ),
        _plot(
            "precision_recall_curves",
            _plot_pr_curves(rows, per, per05, symptoms, flags),
            "precision-recall curves",
            f"Precision-recall curve per symptom from the {split} split's predicted probabilities; the dot is "
            "the tuned threshold, the square 0.5.",
        ),
        _plot(
            "thresholds_f1",
            _plot_thresholds(per, per05, symptoms, origin, flags),
            "F1 at tuned thresholds vs 0.5",
            f"F1 on the {split} split at the thresholds {chosen}, and at 0.5.",
        ),
        _plot(
            "probability_distributions",
            _plot_probabilities(rows, per, symptoms),
            "probability distributions",
            f"Distribution of the predicted probabilities on the {split} split, by gold label.",
        ),
    ]
    cal = (report.get("calibration") or {}).get("test")
    if cal:
        plots.append(
            _plot(
                "reliability",
                _plot_reliability(cal, symptoms, flags),
                "reliability diagrams",
                f"Reliability per symptom on the {cal.get('split', split)} split ({cal.get('n_bins')} equal-width "
                "probability bins; bins without posts skipped): a calibrated model's dots lie on the diagonal.",
            )
        )
    return plots


# ---------------------------------------------------------------- example posts
def _spans_by_symptom(evidence: Mapping[str, Sequence[Mapping]] | None) -> dict[str, list[tuple[int, int]]]:
    return {s: [(int(sp["start"]), int(sp["end"])) for sp in spans] for s, spans in (evidence or {}).items()}


def _segments(text: str, evidence: Mapping[str, Sequence[Mapping]] | None) -> list[tuple[str, str | None]]:
    """``text`` cut at its evidence spans: ``(piece, None)`` between spans, ``(piece, "SYMPTOM, ...")`` for a
    span (overlapping spans of several symptoms merged into one, naming them all)."""
    by = _spans_by_symptom(evidence)
    out: list[tuple[str, str | None]] = []
    pos = 0
    for s, e in merge_spans([sp for spans in by.values() for sp in spans]):
        s, e = max(s, pos), min(e, len(text))
        if e <= s:
            continue
        names = [sym for sym, spans in by.items() if any(a < e and b > s for a, b in spans)]
        out += [(text[pos:s], None), (text[s:e], ", ".join(names))]
        pos = e
    out.append((text[pos:], None))
    return out


def highlight(text: str, evidence: Mapping[str, Sequence[Mapping]] | None, cls: str) -> str:
    """``text`` HTML-escaped, with ``<mark class="{cls}">`` around the evidence spans (macros.highlighted).

    ``evidence`` maps a symptom to its spans ``{"start", "end", ...}`` (character offsets);
    overlapping spans of several symptoms become one mark whose title lists them.
    """
    macros = environment().get_template("macros.html.j2").module
    return str(macros.highlighted(_segments(text, evidence), cls))


# one colour per symptom on the sentence model's example posts (matplotlib's tab10 without its cyan)
SYMPTOM_COLOURS = dict(
    zip(
        SYMPTOMS,
        ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#d62728"),
    )
)


def _overlaps(spans: Sequence[Mapping] | None, s: int, e: int) -> list[Mapping]:
    return [sp for sp in spans or [] if int(sp["start"]) < e and int(sp["end"]) > s]


def _tag(symptom: str, mine: Sequence[Mapping], other: Sequence[Mapping], predicted: bool) -> dict:
    """One symptom's tag on a marked sentence: its score (the highest of the predicted spans there), whether the
    other side (gold for a predicted sentence, predicted for a gold one) marks the same symptom there, and a title."""
    scored = [sp["score"] for sp in (mine if predicted else other) if sp.get("score") is not None]
    score = _num(max(scored), 3) if scored else None
    hit = bool(other)
    if predicted:
        outcome = "a gold evidence sentence of it" if hit else "not a gold evidence sentence of it"
        title = f"{symptom}: p = {score} ({outcome})" if score else f"{symptom} ({outcome})"
    else:
        title = f"{symptom}: gold evidence, " + (f"found by the model (p = {score})" if hit else "missed by the model")
    return {"symptom": symptom, "score": score if predicted else None, "hit": hit, "title": title}


def _scored_segments(
    text: str,
    mine: Mapping[str, Sequence[Mapping]] | None,
    other: Mapping[str, Sequence[Mapping]] | None,
    predicted: bool,
) -> list[tuple[str, list[dict] | None]]:
    """``text`` cut at the evidence sentences of one side (``mine``: the predicted evidence with its scores, or the
    gold evidence): ``(piece, None)`` between them, ``(piece, [tag, ...])`` for a sentence, a tag (:func:`_tag`) per
    symptom marking it: the predicted side's by score (highest first), the gold side's in SYMPTOMS order. The first
    tag's symptom colours the sentence."""
    mine, other = mine or {}, other or {}
    out: list[tuple[str, list[dict] | None]] = []
    pos = 0
    for s, e in merge_spans([sp for spans in _spans_by_symptom(mine).values() for sp in spans]):
        s, e = max(s, pos), min(e, len(text))
        if e <= s:
            continue
        tags = [
            _tag(sym, _overlaps(mine.get(sym), s, e), _overlaps(other.get(sym), s, e), predicted)
            for sym in SYMPTOMS
            if _overlaps(mine.get(sym), s, e)
        ]
        if predicted:  # the surest symptom first: it colours the mark
            tags.sort(key=lambda t: -float(t["score"] or 0.0))
        out += [(text[pos:s], None), (text[s:e], tags)]
        pos = e
    out.append((text[pos:], None))
    return out


def pick_examples(rows: Sequence[Mapping], n: int = 5) -> list[Mapping]:
    """``n`` test rows for the page, deterministically: posts with gold evidence first, then by post_id."""
    return sorted(rows, key=lambda r: (not any((r.get("gold_evidence") or {}).values()), str(r["post_id"])))[:n]


# (gold, decision) -> what the decision was, and its CSS class
_OUTCOMES = {
    (1, 1): ("true positive", "ok"),
    (0, 1): ("false positive", "bad"),
    (1, 0): ("false negative, missed", "bad"),
}


def _example(
    row: Mapping,
    text: str | None,
    symptoms: Sequence[str],
    thresholds: Mapping[str, float],
    has_evidence: bool,
    sentences: bool = False,
) -> dict:
    """One example post (macros.post): its gold or predicted symptoms, and its text as segments with the
    predicted and the gold evidence (``pred``/``gold`` None when the text is not available); for the sentence
    model (``sentences``) the segments carry a tag per symptom (:func:`_scored_segments`)."""
    labels = []
    for s in symptoms:
        outcome = _OUTCOMES.get((int(row["labels"][s]), int(row["decisions"][s])))
        if outcome:
            p, t = _num(row["probabilities"][s], 3), _num(thresholds.get(s), 2)
            labels.append({"symptom": s, "p": p, "threshold": t, "kind": outcome[0], "cls": outcome[1]})
    example = {"post_id": row["post_id"], "labels": labels, "scope": row.get("evidence_scope", "symptom")}
    if text is None:
        return {**example, "pred": None, "gold": None}
    if sentences:
        pred_ev, gold_ev = row.get("evidence"), row.get("gold_evidence")
        return {
            **example,
            "pred": _scored_segments(text, pred_ev, gold_ev, predicted=True),
            "gold": _scored_segments(text, gold_ev, pred_ev, predicted=False),
        }
    pred = _segments(text, row.get("evidence") if has_evidence else None)
    return {**example, "pred": pred, "gold": _segments(text, row.get("gold_evidence"))}


# ---------------------------------------------------------------- tables
SUMMARY_METRICS = (
    "macro_f1",
    "micro_f1",
    "macro_precision",
    "macro_recall",
    "micro_precision",
    "micro_recall",
    "accuracy",
    "label_accuracy",
)
EVIDENCE_METRICS = ("token_f1", "char_f1", "exact_match", "null_span_accuracy")
CONFUSION_CELLS = ("tp", "fp", "fn", "tn")


def _summary_rows(report: Mapping) -> list[Row]:
    """metric, split, value at the tuned thresholds, value at 0.5, model: CV, refit on validation, final on test."""
    test, at05, split = report["metrics"]["test"], report["metrics"]["test_at_0.5"], report["split"]
    rows = []
    cv = report.get("cv")
    if cv:
        ci = cv.get("interval")
        spread = f"mean [{report_text.level(ci)} t-interval over folds]" if ci else "mean ± std over folds"
        label = f"CV {cv['metric']} ({spread}; objective {cv['objective']})"
        rows.append(
            Row([label, cv["split"], "–", _cv_cell(cv["mean"], cv["std"], ci), "per-fold models of the best trial"])
        )
    rv = report.get("refit_validation")
    if rv:
        tuned, half = rv.get("at_tuned_thresholds") or {}, rv.get("at_0.5") or {}
        rows += [
            Row([k, rv["split"], _num_cell(tuned.get(k), 4), _num_cell(half.get(k), 4), rv.get("model")])
            for k in ("macro_f1", "micro_f1")
        ]
    tuned_iv, half_iv = report_text.intervals_of(report), report_text.intervals_of(report, "at_0.5")

    def cells(k, a, b):
        at, half = report_text.figure_interval(tuned_iv, k), report_text.figure_interval(half_iv, k)
        return _fig_cell(a, at, 4), _fig_cell(b, half, 4)

    final = [(k, test[k], at05[k]) for k in SUMMARY_METRICS]
    final.append(("macro_pr_auc (threshold-free)", test.get("macro_pr_auc"), at05.get("macro_pr_auc")))
    rows += [Row([k, split, *cells(k, a, b), "final model"], "test") for k, a, b in final]
    return rows


def _symptom_cell(s: str, flags: Mapping[str, Flag]) -> Cell:
    return Cell(s, flag=flags.get(s))


def _per_symptom_rows(report: Mapping, symptoms: Sequence[str]) -> list[Row]:
    per, thr = report["metrics"]["test"]["per_symptom"], report["thresholds"]["values"]
    ivs, flags = report_text.intervals_of(report).get("per_symptom") or {}, report_text.few_positive_flags(report)
    rows = []
    for s in symptoms:
        iv = ivs.get(s) or {}
        cells = [_num_cell(per[s][k]) for k in ("precision", "recall")]
        cells += [_fig_cell(per[s]["f1"], iv.get("f1")), _fig_cell(per[s]["pr_auc"], iv.get("pr_auc"))]
        rows.append(
            Row([_symptom_cell(s, flags), _num_cell(per[s]["support"]), _num_cell(thr[s], 2), *cells], "symptom")
        )
    return rows


def _threshold_rows(report: Mapping, symptoms: Sequence[str]) -> list[Row]:
    per, per05 = report["metrics"]["test"]["per_symptom"], report["metrics"]["test_at_0.5"]["per_symptom"]
    ivs, ivs05 = (
        report_text.intervals_of(report).get("per_symptom") or {},
        report_text.intervals_of(report, "at_0.5").get("per_symptom") or {},
    )
    flags = report_text.few_positive_flags(report)
    return [
        Row(
            [
                _symptom_cell(s, flags),
                _num_cell(report["thresholds"]["values"][s], 2),
                _fig_cell(per[s]["f1"], (ivs.get(s) or {}).get("f1")),
                _fig_cell(per05[s]["f1"], (ivs05.get(s) or {}).get("f1")),
                Cell(f"{per[s]['f1'] - per05[s]['f1']:+.3f}", num=True),
            ],
            "threshold",
        )
        for s in symptoms
    ]


def _threshold_choice(report: Mapping, symptoms: Sequence[str]) -> dict | None:
    """How the thresholds were chosen (the refit's thresholds block): source, the rule verbatim, the out-of-fold
    F1 at the chosen thresholds and at 0.5, and per symptom its tuned threshold, the cross-fitted gain and
    whether it was adopted. None for a report whose thresholds block has none of it."""
    thr = report["thresholds"]
    if not any(k in thr for k in ("rule", "oof", "per_symptom")):
        return None
    oof = thr.get("oof") or {}
    tuned, half = oof.get("at_tuned_thresholds") or {}, oof.get("at_0.5") or {}
    oof_rows = [
        Row([name, _num_cell(tuned.get(k)), _num_cell(half.get(k)), Cell(_signed(tuned.get(k), half.get(k)), num=True)])
        for k, name in (("macro_f1", "macro F1"), ("micro_f1", "micro F1"))
        if k in tuned or k in half
    ]
    per = thr.get("per_symptom") or {}
    per_rows = [_threshold_choice_row(s, per[s]) for s in symptoms if s in per]
    return {
        "source": report_text.threshold_source(thr),
        "code": thr.get("source"),
        "split": thr.get("split") or "no data: fixed at 0.5",
        "rule": thr.get("rule"),
        "oof_split": oof.get("split"),
        "oof_posts": oof.get("n_posts"),
        "oof_rows": oof_rows,
        "per_symptom": per_rows,
    }


def _signed(a, b) -> str:
    return "–" if a is None or b is None else f"{a - b:+.3f}"


def _threshold_choice_row(s: str, e: Mapping) -> Row:
    adopted = bool(e.get("adopted"))
    decision = e.get("reason") or ("tuned threshold adopted" if adopted else "kept 0.5")
    return Row(
        [
            s,
            _num_cell(e.get("n_positives")),
            _num_cell(e.get("tuned_threshold"), 2),
            _num_cell(e.get("f1_at_0.5")),
            _num_cell(e.get("f1_at_tuned")),
            _num_cell(e.get("f1_cross_fitted")),
            Cell(report_text.interval(e.get("gain"), signed=True) or "–", num=True, interval=True),
            _num_cell(e.get("threshold"), 2),
            decision,
        ],
        "adopted" if adopted else "kept",
    )


def _confusion_rows(report: Mapping, symptoms: Sequence[str]) -> list[Row]:
    per, per05 = report["metrics"]["test"]["per_symptom"], report["metrics"]["test_at_0.5"]["per_symptom"]
    flags = report_text.few_positive_flags(report)
    return [
        Row(
            [_symptom_cell(s, flags)]
            + [_num_cell(per[s]["confusion_matrix"][c]) for c in CONFUSION_CELLS]
            + [_num_cell(per05[s]["confusion_matrix"][c]) for c in CONFUSION_CELLS],
            "confusion",
        )
        for s in symptoms
    ]


def _reference(baseline: Mapping) -> str | None:
    return "reference baseline" if baseline.get("reference") else None


def _baselines(report: Mapping) -> dict | None:
    """Model vs baseline on the test split: the model's and each baseline's macro/micro F1 with intervals, the
    paired difference model − baseline with its interval and one-sided p, and a sentence per baseline."""
    baselines = report.get("baselines") or []
    if not baselines:
        return None
    ivs = report_text.intervals_of(report)
    test = report["metrics"]["test"]
    sel = report["selected"]
    model = Row(
        [
            f"this model ({sel['backbone']} v{sel['variant']}, final)",
            " + ".join(report["training"]["trained_on"]),
            report_text.threshold_origin(report["thresholds"]),
            _fig_cell(test["macro_f1"], ivs.get("macro_f1")),
            _fig_cell(test["micro_f1"], ivs.get("micro_f1")),
            Cell("–", num=True),
        ],
        "selected",
    )
    rows, sentences = [model], []
    for b in baselines:
        m, iv, pd = b.get("metrics") or {}, b.get("intervals") or {}, b.get("paired_difference")
        rows.append(
            Row(
                [
                    Cell(b["name"], code=True, note="; ".join(filter(None, [_reference(b), b.get("model")]))),
                    " + ".join(b.get("trained_on") or []) or "–",
                    f"{b.get('threshold', 0.5):g}",
                    _fig_cell(m.get("macro_f1"), iv.get("macro_f1")),
                    _fig_cell(m.get("micro_f1"), iv.get("micro_f1")),
                    _diff_cell(pd),
                ],
                "baseline",
            )
        )
        if pd:
            sentences.append(report_text.difference_sentence("this model", b["name"], pd, b.get("split", "test")))
    metric = next((b["paired_difference"]["metric"] for b in baselines if b.get("paired_difference")), "macro_f1")
    return {"rows": rows, "sentences": sentences, "metric": report_text.metric_name(metric)}


def _co_best_row(label: str, c: Mapping, metrics: Mapping, trained: str, cv_mean, cls: str, evidence: bool) -> Row:
    cells = [
        label,
        c["backbone"],
        _num_cell(c["variant"]),
        Cell(c["trial_key"], code=True),
        trained,
        _num_cell(cv_mean, 4),
        _num_cell(metrics["test"]["macro_f1"]),
        _num_cell(metrics["test_at_0.5"]["macro_f1"]),
        _num_cell(metrics["test"]["micro_f1"]),
    ]
    if evidence:
        cells.append(_num_cell((metrics.get("evidence") or {}).get("token_f1")))
    return Row(cells, cls)


def _paired_row(first: str, second: str, pd: Mapping) -> Row:
    """One paired test difference: the pair, the metric, first − second with its interval, the one-sided p."""
    cells = [
        f"{first} − {second}",
        str(pd.get("metric", "macro_f1")),
        Cell(report_text.difference(pd), num=True, interval=True),
        Cell(report_text.p_value(pd.get("p_value")), num=True),
    ]
    return Row(cells, "paired")


def _co_best_pairs(report: Mapping, co: Sequence[Mapping]) -> tuple[list[Row], list[str]]:
    """The paired test differences of every co-best candidate (selected − co-best, co-best − baseline), and a
    sentence for each selected − co-best."""
    sel = report["selected"]
    selected = f"selected {sel['backbone']} v{sel['variant']}"
    reference = report_text.reference_baseline(report)
    rows, sentences = [], []
    for c in co:
        name = f"co-best {c['backbone']} v{c['variant']}"
        vs_sel = c.get("paired_difference_vs_selected")
        if vs_sel:
            rows.append(_paired_row(selected, name, vs_sel))
            sentences.append(report_text.difference_sentence(f"the {selected}", name, vs_sel))
        vs_base = c.get("paired_difference_vs_baselines") or (
            {reference: c["paired_difference_vs_baseline"]} if c.get("paired_difference_vs_baseline") else {}
        )
        rows += [_paired_row(name, baseline, pd) for baseline, pd in vs_base.items()]
    return rows, sentences


def _co_best(report: Mapping) -> dict:
    """The selected model beside the candidates tied with it (their refit checkpoints), and their paired test
    differences when the report has them; no rows without any candidate."""
    m = report["metrics"]
    evidence = "evidence" in m
    co = report.get("co_best") or []
    if not co:
        return {"rows": [], "evidence": evidence, "paired": [], "sentences": []}
    cv = (report.get("cv") or {}).get("mean")
    rows = [_co_best_row("selected (final)", report["selected"], m, "train + validation", cv, "selected", evidence)]
    rows += [_co_best_row("co-best (refit)", c, c["metrics"], "train", c["cv_mean"], "co-best", evidence) for c in co]
    paired, sentences = _co_best_pairs(report, co)
    return {"rows": rows, "evidence": evidence, "paired": paired, "sentences": sentences}


def _paper(report: Mapping) -> dict | None:
    """The ReDSM5 paper's definitions on this report's test split (at 0.5 and at the thresholds used), with
    intervals, and the published rows as a reference (a different split); None for a report without."""
    paper = report.get("paper")
    if not paper:
        return None
    split = paper.get("split", report["split"])
    origin = report_text.threshold_origin(report["thresholds"])
    rows = []
    for key, label in (
        ("at_0.5", "this model, threshold 0.5"),
        ("at_tuned_thresholds", f"this model, thresholds {origin}"),
    ):
        m = paper.get(key)
        if m:
            iv = m.get("intervals") or {}
            rows.append(
                Row([label, split, *[_fig_cell(m.get(k), iv.get(k)) for k in report_text.PAPER_METRICS]], "model")
            )
    published = [
        Row(
            [
                Cell(b["model"], note=b.get("note")),
                "published, different split",
                *[_num_cell(b.get(k)) for k in report_text.PAPER_METRICS],
            ],
            "published",
        )
        for b in paper.get("published_baselines") or []
    ]
    return {
        "definition": paper.get("definition"),
        "split": split,
        "rows": rows + published,
        "note": paper.get("published_note"),
    }


def _calibration(report: Mapping, symptoms: Sequence[str]) -> dict | None:
    """Brier score and ECE per symptom on every split the report's calibration block has (test, out-of-fold),
    each column naming its split; the mean over the symptoms last. None for a report without."""
    cal = report.get("calibration") or {}
    blocks = [(key, cal[key]) for key in ("test", "oof") if cal.get(key)]
    if not blocks:
        return None
    flags = report_text.few_positive_flags(report)
    head = ["symptom"]
    for key, b in blocks:
        where = b.get("split", key)
        head += [f"positives ({where})", f"Brier ({where})", f"ECE ({where})"]
    rows = []
    for s in symptoms:
        cells = [_symptom_cell(s, flags)]
        for _, b in blocks:
            e = (b.get("per_symptom") or {}).get(s) or {}
            cells += [_num_cell(e.get("n_positives")), _num_cell(e.get("brier")), _num_cell(e.get("ece"))]
        rows.append(Row(cells, "calibration"))
    mean = ["mean over the symptoms"]
    for _, b in blocks:
        mean += [Cell("", num=True), _num_cell(b.get("brier")), _num_cell(b.get("ece"))]
    rows.append(Row(mean, "mean"))
    n_bins = next((b.get("n_bins") for _, b in blocks if b.get("n_bins")), None)
    return {"head": head, "rows": rows, "n_bins": n_bins}


def _evidence_rows(report: Mapping) -> list[Row]:
    ev = report["metrics"].get("evidence")
    if not ev:
        return []
    split = report["split"]
    ivs = (report.get("intervals") or {}).get("evidence") or {}
    rows = [Row([k, split, _fig_cell(ev[k], ivs.get(k))], "evidence") for k in EVIDENCE_METRICS]
    rows.append(Row(["rows scored (without gold span)", split, Cell(f"{ev['n']} ({ev['n_null']})", num=True)]))
    if ev.get("n_incomplete_excluded") is not None:
        rows.append(Row(["rows left out (evidence partly unaligned)", split, _num_cell(ev["n_incomplete_excluded"])]))
    return rows


def _evidence_threshold(report: Mapping) -> dict | None:
    """The sentence model's evidence threshold (the report's ``thresholds.evidence``): its value, how and on which
    split it was chosen, the rule verbatim, and the sentence-level micro F1 at it on that split; None without."""
    block = report["thresholds"].get("evidence")
    if not block:
        return None
    at = report_text.evidence_threshold_f1(block)
    return {
        "value": f"{block['value']:g}",
        "code": block.get("source"),
        "source": report_text.evidence_threshold_source(block),
        "split": block.get("split") or "none (fixed)",
        "rule": block.get("rule"),
        "f1": None if at is None else _num(at, 3),
    }


def _sentence_metrics(report: Mapping, symptoms: Sequence[str]) -> dict | None:
    """Sentence-level precision, recall and F1 of "the sentence shows the symptom" per symptom on the test split
    (the report's ``metrics.sentences``), then micro (every known cell) and macro F1; None without."""
    m = report["metrics"].get("sentences")
    if not m:
        return None
    per, flags = m["per_symptom"], report_text.few_positive_flags(report)
    rows = [
        Row(
            [
                _symptom_cell(s, flags),
                _num_cell(per[s]["support"]),
                _num_cell(per[s]["n"]),
                *[_num_cell(per[s][k]) for k in ("precision", "recall", "f1")],
            ],
            "sentence",
        )
        for s in symptoms
        if s in per
    ]
    rows.append(
        Row(
            [
                "micro (every known sentence-symptom cell)",
                Cell(sum(per[s]["support"] for s in per), num=True),
                _num_cell(m["n_cells"]),
                *[_num_cell(m[f"micro_{k}"]) for k in ("precision", "recall", "f1")],
            ],
            "mean",
        )
    )
    rows.append(
        Row(
            [
                "macro F1 (symptoms with a gold sentence)",
                "",
                "",
                Cell("", num=True),
                Cell("", num=True),
                _num_cell(m["macro_f1"]),
            ],
            "mean",
        )
    )
    return {
        "rows": rows,
        "threshold": f"{m['threshold']:g}",
        "n_sentences": m["n_sentences"],
        "n_not_read": m["n_sentences_not_read"],
    }


def _coverage_lines(c: Mapping) -> list[tuple[str, Any]]:
    """What one input window read and cut, line by line (an input coverage of the report)."""
    need, read = c["windows_needed"], c["windows_read"]
    return [
        ("policy", c["policy"] + (f", {c['aggregation']} over windows" if c["policy"] == "windows" else "")),
        ("window (tokens)", c["max_length"]),
        ("window overlap", "–" if c["window_overlap"] is None else f"{c['window_overlap']:.0%}"),
        ("max windows per post", "all" if c["max_windows"] is None else c["max_windows"]),
        ("posts longer than one window", _of(c["n_longer_than_window"], c["n_posts"])),
        (
            "windows needed per post (mean / p50 / p95 / max)",
            f"{need['mean']:.2f} / {need['p50']:g} / {need['p95']:g} / {need['max']}",
        ),
        ("windows read per post (mean / max)", f"{read['mean']:.2f} / {read['max']}"),
        ("posts not read to their end", _of(c["n_posts_capped"], c["n_posts"])),
        (
            "evidence sentences starting past what was read",
            _of(c["n_evidence_beyond_read"], c["n_evidence_sentences"]),
        ),
    ]


def _coverage(report: Mapping) -> dict | None:
    """What the input window read and cut of the test posts: a column for the final model and one for every
    co-best checkpoint (each with its own tokenizer and window settings); None for a report without it."""
    models = [("selected (final)", report.get("input_coverage"))]
    models += [
        (f"co-best {c['backbone']} v{c['variant']} (refit)", c.get("input_coverage"))
        for c in report.get("co_best") or []
    ]
    models = [(label, cov) for label, cov in models if cov]
    if not models:
        return None
    columns = [_coverage_lines(cov) for _, cov in models]
    rows = [
        Row([name, *[Cell(column[i][1], num=True) for column in columns]], "coverage")
        for i, (name, _) in enumerate(columns[0])
    ]
    return {
        "labels": [label for label, _ in models],
        "rows": rows,
        "policies": [(label, cov["policy_text"]) for label, cov in models],
    }


def _window_line(cov: Mapping) -> str:
    """The input window in one line: its size and policy, and what it left unread of the test posts."""
    read = (
        "the rest of each is not read"
        if cov["policy"] == "truncate"
        else f"read in {cov['windows_read']['mean']:.2f} windows per post on average, "
        f"{cov['n_posts_capped']} capped at max_windows"
    )
    return (
        f"{cov['max_length']} tokens ({cov['policy']}); {_of(cov['n_longer_than_window'], cov['n_posts'])} "
        f"{cov['split']} posts are longer, {read}; evidence sentences past what was read: "
        f"{_of(cov['n_evidence_beyond_read'], cov['n_evidence_sentences'])}"
    )


def _thresholds_line(thr: Mapping) -> str:
    """The meta line on the decision thresholds: their source (config thresholds.source) and how they were chosen."""
    if thr.get("source") in report_text.THRESHOLD_SOURCES:
        return f"{thr['source']}: {report_text.threshold_source(thr)}"
    return f"tuned per symptom on the {thr['split']} split"


def _sentence_meta(report: Mapping) -> list[tuple[str, Any]]:
    """The sentence model's meta lines: where its decisions come from and its evidence threshold; none otherwise."""
    if not report_text.sentence_model(report):
        return []
    agg = report["task"].get("sentence_aggregation")
    return [
        ("criteria from", f"sentences ({agg} over a post's sentences)" if agg else "sentences"),
        ("evidence threshold", report_text.evidence_threshold_text(report["thresholds"].get("evidence"))),
    ]


def _evaluation_meta(report: Mapping) -> list[tuple[str, Any]]:
    sel, lin, tr = report["selected"], report["lineage"], report["training"]
    meta = [
        ("final_key", report["final_key"]),
        ("split", f"{report['split']} ({report['n_test_posts']} posts, read once)"),
        ("backbone", f"{sel['backbone']} v{sel['variant']}"),
        ("trial_key", sel["trial_key"]),
        ("study_key", sel["study_key"]),
        ("selection_key", sel["selection_key"]),
        ("data_key", lin["data_key"]),
        ("input format", report["task"]["input_format"]),
        ("evidence task", "yes" if report["task"]["evidence_task"] else "no"),
        *_sentence_meta(report),
        ("trained on", f"{' + '.join(tr['trained_on'])} ({tr['n_posts']} posts, {tr['epochs']} epochs)"),
        ("thresholds", _thresholds_line(report["thresholds"])),
        ("code_version", lin["code_version"]),
        ("created_at", report.get("created_at")),
    ]
    if report.get("input_coverage"):
        meta.append(("input window", _window_line(report["input_coverage"])))
    return meta


def evaluation_page(
    report: Mapping,
    rows: Sequence[Mapping],
    texts: Mapping[str, str],
    *,
    n_examples: int = 5,
    links: Mapping[str, str] | None = None,
) -> Page:
    """The final model's evaluation report as one self-contained HTML page, with its plots.

    ``rows``: test_predictions rows (post_id, labels, probabilities, decisions, gold_evidence,
    evidence: the sentence model's with each sentence's score); ``texts``: post_id -> post text, for the
    example posts; ``links``: label -> relative URL (the selection page, the model card, test_predictions.jsonl).
    """
    symptoms = list(SYMPTOMS)
    sel = report["selected"]
    sentences = report_text.sentence_model(report)
    has_evidence = bool(report["task"]["evidence_task"]) or sentences
    thresholds = report["thresholds"]["values"]
    by_id = {str(r["post_id"]): r for r in rows}
    examples = [
        _example(r, texts.get(str(r["post_id"])), symptoms, thresholds, has_evidence, sentences)
        for r in pick_examples(list(by_id.values()), n_examples)
    ]
    plots = _evaluation_plots(report, rows, symptoms)
    thr = report["thresholds"]
    return _page(
        "evaluation.html.j2",
        plots,
        title=f"Test evaluation: {sel['backbone']} v{sel['variant']} (final {report['final_key']})",
        links=list((links or {}).items()),
        meta=_evaluation_meta(report),
        split=report["split"],
        intervals_note=report_text.bootstrap_note(report),
        origin=report_text.threshold_origin(thr),
        thresholds_data=report_text.threshold_data(thr),
        summary=_summary_rows(report),
        per_symptom=_per_symptom_rows(report, symptoms),
        thresholds=_threshold_rows(report, symptoms),
        threshold_choice=_threshold_choice(report, symptoms),
        confusion=_confusion_rows(report, symptoms),
        coverage=_coverage(report),
        baselines=_baselines(report),
        co_best=_co_best(report),
        paper=_paper(report),
        calibration=_calibration(report, symptoms),
        evidence=_evidence_rows(report),
        sentence_mode=sentences,
        decisions=report_text.decisions_text(report),
        evidence_threshold=_evidence_threshold(report),
        sentence_metrics=_sentence_metrics(report, symptoms),
        symptom_colours=list(SYMPTOM_COLOURS.items()),
        plots={p.name: p for p in plots},
        examples=examples,
        has_evidence=has_evidence,
    )


def render_evaluation_html(report: Mapping, rows: Sequence[Mapping], texts: Mapping[str, str], **kw) -> str:
    """The evaluation page's HTML (see :func:`evaluation_page`)."""
    return evaluation_page(report, rows, texts, **kw).html

"""Self-contained HTML pages: the selection report and the final model's evaluation report.

Plots are drawn with matplotlib's Agg canvas (no pyplot, no global backend
switch) and inlined as base64 PNG; the same PNGs can also be written as files
(``Page.write``: ``plots/<name>.png`` beside the page). CSS is inline; every
piece of text from a report or a post goes through html.escape. Nothing is
fetched when a page opens.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from workflow_lib.learning.spans import merge_spans
from workflow_lib.persistence.reports import atomic_write_text
from workflow_lib.symptoms import SYMPTOMS

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{border:1px solid #ddd;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
tr.selected td{background:#e6f4ea;font-weight:600}
tr.excluded td{color:#999}
tr.baseline td{background:#f7f7fb;font-style:italic}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.reason{background:#fafafa;border-left:4px solid #4a7;padding:.6em 1em}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;font-size:.9em}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;font-family:monospace}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
p.next{background:#f4f7fc;border-left:4px solid #47a;padding:.5em 1em}
p.warning{background:#fff6e5;border-left:4px solid #d90;padding:.6em 1em}
.ok{color:#1a7f37;font-weight:600}.bad{color:#b42318;font-weight:600}
.posts{display:grid;grid-template-columns:1fr 1fr;gap:.6em 1em}
.post-text{white-space:pre-wrap;font-size:.88em;line-height:1.45;border:1px solid #ddd;padding:.5em .7em;
max-height:22em;overflow:auto;background:#fff}
.post h3{font-size:1em;margin:1.2em 0 .3em}.post h4{font-size:.9em;margin:.2em 0}
mark.span-pred{background:#cfe3ff;border-bottom:2px solid #2f6fd6;padding:0 1px}
mark.span-gold{background:#ffe7a3;border-bottom:2px solid #c99400;padding:0 1px}
.legend mark{font-size:.85em}
ul.labels{font-size:.88em;margin:.2em 0 .4em;padding-left:1.2em}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def _png_bytes(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _png(fig: Figure) -> str:
    return base64.b64encode(_png_bytes(fig)).decode("ascii")


def _img(b64: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


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


class _Figures:
    """Collects a page's plots: ``add`` returns the inline <figure> and keeps the PNG bytes."""

    def __init__(self) -> None:
        self.plots: dict[str, bytes] = {}

    def add(self, name: str, fig: Figure, alt: str, caption: str) -> str:
        data = _png_bytes(fig)
        self.plots[name] = data
        return _img(base64.b64encode(data).decode("ascii"), alt, caption)


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


def _plot_folds(candidates: Sequence[Mapping], baseline: Mapping | None, metric: str) -> Figure:
    groups, labels = [], []
    for c in candidates:
        groups.append([v for v in (c.get("fold_scores") or []) if v is not None])
        labels.append(_cand_label(c))
    if baseline:
        groups.append([v for v in (baseline.get("fold_scores") or []) if v is not None])
        labels.append(str(baseline.get("name", "baseline")))
    fig = Figure(figsize=(max(5.0, 1.1 * len(groups) + 2), 3.6))
    ax = fig.subplots()
    if not any(groups):
        _no_data(ax, "no fold scores")
    else:
        pos = list(range(1, len(groups) + 1))
        ax.boxplot([g if g else [float("nan")] for g in groups], positions=pos, widths=0.5, showfliers=False)
        for p, g, c in zip(pos, groups, list(candidates) + [None]):
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


def _plot_tradeoff(candidates: Sequence[Mapping], rule: Mapping, baseline: Mapping | None, metric: str) -> Figure:
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
        if baseline and baseline.get("mean") is not None:
            ax.axhline(baseline["mean"], color="#7f7f7f", ls=":", label=f"{baseline.get('name', 'baseline')}")
        if budget is not None or baseline:
            ax.legend(fontsize=7)
        ax.set_xlabel(f"p95 latency (ms) {_latency_where(rule)}")
        ax.set_ylabel(f"CV {metric} (mean ± std)")
        ax.grid(alpha=0.3)
    ax.set_title("score vs latency", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- page
def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _of(n, total) -> str:
    """'12 of 80 (15.0%)'."""
    return f"{n} of {total} ({_pct(n / total if total else 0.0)})"


def _trial_coverage(study_summaries: Sequence[Mapping]) -> dict[str, Mapping]:
    """trial_key -> the trial's input coverage over its CV folds (study summary, hpo.pooled_coverage)."""
    return {
        t["trial_key"]: t["input_coverage"]
        for s in study_summaries or []
        for t in s.get("trials") or []
        if t.get("trial_key") and t.get("input_coverage")
    }


def _coverage_cell(cov: Mapping | None) -> str:
    """A candidate's share of posts longer than the window (its CV folds), with what that means for it."""
    if not cov:
        return "<td>–</td>"
    detail = (
        f"{cov['max_length']} tokens, truncate: evidence past the window {_pct(cov['share_evidence_beyond_read'])}"
        if cov["policy"] == "truncate"
        else f"{cov['max_length']} tokens, windows: {cov['windows_read']['mean']:.2f} per post, "
        f"{cov['n_posts_capped']} capped"
    )
    return (
        f'<td class="num" title="{_e(cov.get("policy_text"))}">{_pct(cov["share_longer_than_window"])} '
        f"<small>({_e(detail)})</small></td>"
    )


def _table(report: Mapping, coverage: Mapping[str, Mapping] | None = None) -> str:
    coverage = coverage or {}
    head = (
        "<tr><th>rank</th><th>backbone</th><th>variant</th><th>trial</th><th>CV mean ± std</th>"
        "<th>per-fold scores</th><th>posts longer than the window (CV folds)</th><th>p95 latency (ms)</th>"
        "<th>within budget</th><th>selected</th></tr>"
    )
    body = []
    for c in report.get("candidates") or []:
        cls = "selected" if c.get("selected") else ("excluded" if not c.get("within_budget", True) else "")
        folds = ", ".join(_num(v) for v in (c.get("fold_scores") or []))
        at = c.get("latency_measured_at") or {}
        lat = _num(c.get("latency_p95_ms"), 2)
        if at and not at.get("exact", True):
            lat += f" (nearest: b{at.get('batch_size')} x s{at.get('seq_length')})"
        body.append(
            f'<tr class="{cls}"><td class="num">{_e(c.get("rank") if c.get("rank") is not None else "–")}</td>'
            f'<td>{_e(c.get("backbone"))}</td><td class="num">{_e(c.get("variant"))}</td>'
            f"<td><code>{_e(c.get('trial_key'))}</code></td>"
            f'<td class="num">{_num(c.get("cv_mean"))} ± {_num(c.get("cv_std"))}</td>'
            f'<td>{_e(folds)}</td>{_coverage_cell(coverage.get(c.get("trial_key")))}<td class="num">{_e(lat)}</td>'
            f"<td>{'yes' if c.get('within_budget') else 'no'}</td><td>{'✔' if c.get('selected') else ''}</td></tr>"
        )
    b = report.get("baseline")
    if b:
        folds = ", ".join(_num(v) for v in (b.get("fold_scores") or []))
        body.append(
            f'<tr class="baseline"><td>–</td><td>{_e(b.get("name", "baseline"))} (baseline)</td><td>–</td>'
            f'<td>–</td><td class="num">{_num(b.get("mean"))} ± {_num(b.get("std"))}</td>'
            f"<td>{_e(folds)}</td><td>–</td><td>–</td><td>–</td><td></td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def selection_page(report: dict, study_summaries: list[dict], *, evaluation_link: str | None = None) -> Page:
    """The selection report as one self-contained HTML page, with its plots.

    ``evaluation_link``: relative URL of the final model's evaluation page (it exists once the
    final stage has run).
    """
    metric = report.get("metric", "score")
    rule = report.get("rule") or {}
    cands = report.get("candidates") or []
    sel = report.get("selected") or {}
    baseline = report.get("baseline")
    meta = [
        ("selection_key", report.get("selection_key")),
        ("metric", metric),
        ("split", report.get("split")),
        ("latency budget (ms)", rule.get("latency_budget_ms")),
        ("latency at", _latency_where(rule)),
        ("tie tolerance", rule.get("tie_tolerance")),
        ("code_version", report.get("code_version")),
    ]
    meta_html = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v if v is not None else 'none')}</dd>" for k, v in meta)
    figs = _Figures()
    plots = [
        figs.add(
            "optimisation_history",
            _plot_history(study_summaries or [], metric),
            "optimisation history",
            "Optimisation history per study: objective per trial (x = pruned), line = best so far.",
        ),
        figs.add(
            "fold_scores",
            _plot_folds(cands, baseline, metric),
            "per-fold scores",
            "Spread of the per-fold held-out scores of every candidate and the baseline.",
        ),
        figs.add(
            "score_vs_latency",
            _plot_tradeoff(cands, rule, baseline, metric),
            "score vs latency",
            "CV score against p95 latency; dashed line = latency budget.",
        ),
    ]
    link = ""
    if evaluation_link:
        link = (
            f'<p class="next">Test evaluation of the selected model: <a href="{_e(evaluation_link)}">'
            f"evaluation report</a> <small>(the page exists once the final stage has run)</small></p>"
        )
    title = f"Model selection: {sel.get('backbone', '?')} v{sel.get('variant', '?')}"
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="reason">{_e(report.get("reason", ""))}</p>{link}'
        f'<dl class="meta">{meta_html}</dl>'
        f"<h2>Candidates</h2>{_table(report, _trial_coverage(study_summaries))}"
        f"<h2>Plots</h2>{''.join(plots)}"
        f"<p><small>All scores are on {_e(report.get('split', 'cv heldout folds'))}; the test split is not used "
        f"for selection.</small></p></body></html>\n"
    )
    return Page(page, figs.plots)


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


def _plot_symptom_bars(per: Mapping[str, Mapping], symptoms: Sequence[str]) -> Figure:
    fig = Figure(figsize=(10.0, 3.8))
    ax = fig.subplots()
    keys = [("precision", "#1f77b4"), ("recall", "#ff7f0e"), ("f1", "#2ca02c"), ("pr_auc", "#9467bd")]
    width = 0.2
    for k, (key, color) in enumerate(keys):
        xs = [i + (k - 1.5) * width for i in range(len(symptoms))]
        vals = [per[s][key] if per[s][key] is not None else 0.0 for s in symptoms]
        ax.bar(xs, vals, width, color=color, label="PR-AUC" if key == "pr_auc" else key)
    ax.set_xticks(range(len(symptoms)))
    ax.set_xticklabels([f"{s}\n(n={per[s]['support']})" for s in symptoms], fontsize=7, rotation=20, ha="right")
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("score (test split)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=4, loc="upper center")
    ax.set_title(
        "per symptom on the test split, at the thresholds tuned on validation (PR-AUC: threshold-free)", fontsize=9
    )
    fig.tight_layout()
    return fig


def _plot_pr_curves(rows: Sequence[Mapping], per: Mapping, per05: Mapping, symptoms: Sequence[str]) -> Figure:
    from sklearn.metrics import precision_recall_curve

    y, p = _arrays(rows, symptoms)
    fig, axes = _grid(len(symptoms))
    for j, (ax, s) in enumerate(zip(axes, symptoms)):
        ax.set_title(f"{s} ({int(y[:, j].sum()) if len(rows) else 0} positive)", fontsize=8)
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


def _plot_thresholds(per: Mapping, per05: Mapping, symptoms: Sequence[str]) -> Figure:
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
    ax.set_xticklabels(symptoms, fontsize=7, rotation=20, ha="right")
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("F1 (test split)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper center")
    ax.set_title("test F1 at the thresholds tuned on validation vs at 0.5", fontsize=9)
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


# ---------------------------------------------------------------- spans
def _spans_by_symptom(evidence: Mapping[str, Sequence[Mapping]] | None) -> dict[str, list[tuple[int, int]]]:
    return {s: [(int(sp["start"]), int(sp["end"])) for sp in spans] for s, spans in (evidence or {}).items()}


def highlight(text: str, evidence: Mapping[str, Sequence[Mapping]] | None, cls: str) -> str:
    """``text`` HTML-escaped, with ``<mark class="{cls}">`` around the evidence spans.

    ``evidence`` maps a symptom to its spans ``{"start", "end", ...}`` (character offsets);
    overlapping spans of several symptoms become one mark whose title lists them.
    """
    by = _spans_by_symptom(evidence)
    merged = merge_spans([sp for spans in by.values() for sp in spans])
    out, pos = [], 0
    for s, e in merged:
        s, e = max(s, pos), min(e, len(text))
        if e <= s:
            continue
        names = [sym for sym, spans in by.items() if any(a < e and b > s for a, b in spans)]
        out.append(_e(text[pos:s]))
        out.append(f'<mark class="{_e(cls)}" title="{_e(", ".join(names))}">{_e(text[s:e])}</mark>')
        pos = e
    out.append(_e(text[pos:]))
    return "".join(out)


def pick_examples(rows: Sequence[Mapping], n: int = 5) -> list[Mapping]:
    """``n`` test rows for the page, deterministically: posts with gold evidence first, then by post_id."""
    return sorted(rows, key=lambda r: (not any((r.get("gold_evidence") or {}).values()), str(r["post_id"])))[:n]


def _example(
    row: Mapping, text: str | None, symptoms: Sequence[str], thresholds: Mapping[str, float], has_evidence: bool
) -> str:
    labels = row["labels"]
    probs = row["probabilities"]
    dec = row["decisions"]
    items = []
    for s in symptoms:
        gold, pred = int(labels[s]), int(dec[s])
        if not gold and not pred:
            continue
        kind, cls = {
            (1, 1): ("true positive", "ok"),
            (0, 1): ("false positive", "bad"),
            (1, 0): ("false negative, missed", "bad"),
        }[(gold, pred)]
        items.append(
            f'<li><span class="{cls}">{_e(s)}</span>: p = {_num(probs[s], 3)}, threshold '
            f"{_num(thresholds.get(s), 2)} ({_e(kind)})</li>"
        )
    labels_html = (
        f'<ul class="labels">{"".join(items)}</ul>'
        if items
        else "<p><small>no symptom in gold or prediction</small></p>"
    )
    if text is None:
        body = "<p><small>post text not available</small></p>"
        return f'<div class="post"><h3>post {_e(row["post_id"])}</h3>{labels_html}{body}</div>'
    if has_evidence:
        pred_html = highlight(text, row.get("evidence"), "span-pred")
        pred_note = f"predicted evidence (scope: {_e(row.get('evidence_scope', 'symptom'))})"
    else:
        pred_html = _e(text)
        pred_note = "predicted evidence: this model has no evidence head"
    gold_html = highlight(text, row.get("gold_evidence"), "span-gold")
    return (
        f'<div class="post"><h3>post {_e(row["post_id"])}</h3>{labels_html}'
        f'<div class="posts"><div><h4>{pred_note}</h4><div class="post-text">{pred_html}</div></div>'
        f"<div><h4>gold evidence (annotated sentences aligned to the post)</h4>"
        f'<div class="post-text">{gold_html}</div></div></div></div>'
    )


# ---------------------------------------------------------------- tables
def _tr(cells: Sequence[str], cls: str | None = None) -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<tr{attr}>{''.join(cells)}</tr>"


def _td(x, digits: int = 3) -> str:
    return f'<td class="num">{_num(x, digits) if isinstance(x, float) or x is None else _e(x)}</td>'


def _summary_table(report: Mapping) -> str:
    m = report["metrics"]
    test, at05 = m["test"], m["test_at_0.5"]
    split = report["split"]
    head = (
        "<tr><th>metric</th><th>split</th><th>value at the tuned thresholds</th><th>value at 0.5</th>"
        "<th>model</th></tr>"
    )
    body = []
    cv = report.get("cv")
    if cv:
        body.append(
            _tr(
                [
                    f"<td>CV {_e(cv['metric'])} (mean ± std over folds; objective {_e(cv['objective'])})</td>",
                    f"<td>{_e(cv['split'])}</td>",
                    "<td>–</td>",
                    f'<td class="num">{_num(cv["mean"])} ± {_num(cv["std"])}</td>',
                    "<td>per-fold models of the best trial</td>",
                ]
            )
        )
    rv = report.get("refit_validation")
    if rv:
        for k in ("macro_f1", "micro_f1"):
            body.append(
                _tr(
                    [
                        f"<td>{_e(k)}</td>",
                        f"<td>{_e(rv['split'])}</td>",
                        _td((rv.get("at_tuned_thresholds") or {}).get(k), 4),
                        _td((rv.get("at_0.5") or {}).get(k), 4),
                        f"<td>{_e(rv.get('model'))}</td>",
                    ]
                )
            )
    for k in (
        "macro_f1",
        "micro_f1",
        "macro_precision",
        "macro_recall",
        "micro_precision",
        "micro_recall",
        "accuracy",
        "label_accuracy",
    ):
        body.append(
            _tr(
                [
                    f"<td>{_e(k)}</td>",
                    f"<td>{_e(split)}</td>",
                    _td(test[k], 4),
                    _td(at05[k], 4),
                    "<td>final model</td>",
                ],
                "test",
            )
        )
    body.append(
        _tr(
            [
                "<td>macro_pr_auc (threshold-free)</td>",
                f"<td>{_e(split)}</td>",
                _td(test.get("macro_pr_auc"), 4),
                _td(at05.get("macro_pr_auc"), 4),
                "<td>final model</td>",
            ],
            "test",
        )
    )
    return f"<table>{head}{''.join(body)}</table>"


def _per_symptom_table(report: Mapping, symptoms: Sequence[str]) -> str:
    per = report["metrics"]["test"]["per_symptom"]
    thr = report["thresholds"]
    head = (
        "<tr><th>symptom</th><th>support (test)</th><th>threshold (tuned on validation)</th>"
        "<th>precision (test)</th><th>recall (test)</th><th>F1 (test)</th><th>PR-AUC (test)</th></tr>"
    )
    body = [
        _tr(
            [
                f"<td>{_e(s)}</td>",
                _td(per[s]["support"]),
                _td(thr["values"][s], 2),
                _td(per[s]["precision"]),
                _td(per[s]["recall"]),
                _td(per[s]["f1"]),
                _td(per[s]["pr_auc"]),
            ],
            "symptom",
        )
        for s in symptoms
    ]
    return f"<table>{head}{''.join(body)}</table>"


def _threshold_table(report: Mapping, symptoms: Sequence[str]) -> str:
    per = report["metrics"]["test"]["per_symptom"]
    per05 = report["metrics"]["test_at_0.5"]["per_symptom"]
    head = (
        "<tr><th>symptom</th><th>threshold (tuned on validation)</th><th>F1 at tuned (test)</th>"
        "<th>F1 at 0.5 (test)</th><th>difference (test)</th></tr>"
    )
    body = [
        _tr(
            [
                f"<td>{_e(s)}</td>",
                _td(report["thresholds"]["values"][s], 2),
                _td(per[s]["f1"]),
                _td(per05[s]["f1"]),
                f'<td class="num">{per[s]["f1"] - per05[s]["f1"]:+.3f}</td>',
            ],
            "threshold",
        )
        for s in symptoms
    ]
    return f"<table>{head}{''.join(body)}</table>"


def _confusion_table(report: Mapping, symptoms: Sequence[str]) -> str:
    per = report["metrics"]["test"]["per_symptom"]
    per05 = report["metrics"]["test_at_0.5"]["per_symptom"]
    cells = ("tp", "fp", "fn", "tn")
    head = (
        '<tr><th rowspan="2">symptom</th><th colspan="4">at the tuned thresholds (test)</th>'
        '<th colspan="4">at 0.5 (test)</th></tr><tr>' + "".join(f"<th>{c.upper()}</th>" for c in cells) * 2 + "</tr>"
    )
    body = [
        _tr(
            [
                f"<td>{_e(s)}</td>",
                *[_td(per[s]["confusion_matrix"][c]) for c in cells],
                *[_td(per05[s]["confusion_matrix"][c]) for c in cells],
            ],
            "confusion",
        )
        for s in symptoms
    ]
    return f"<table>{head}{''.join(body)}</table>"


def _co_best_table(report: Mapping) -> str:
    co = report.get("co_best") or []
    if not co:
        return (
            "<p>No other candidate tied with the selected one on the CV objective "
            "(selection.tie_tolerance): nothing to compare.</p>"
        )
    sel = report["selected"]
    m = report["metrics"]
    ev_head = "<th>evidence token_f1 (test)</th>" if "evidence" in m else ""
    head = (
        "<tr><th>model</th><th>backbone</th><th>variant</th><th>trial</th><th>trained on</th>"
        "<th>CV mean (held-out folds of train)</th><th>macro F1 at tuned (test)</th>"
        "<th>macro F1 at 0.5 (test)</th><th>micro F1 at tuned (test)</th>"
        f"{ev_head}</tr>"
    )

    def row(label, c, metrics, trained, cv_mean, cls):
        ev = f"{_td((metrics.get('evidence') or {}).get('token_f1'))}" if ev_head else ""
        return _tr(
            [
                f"<td>{_e(label)}</td>",
                f"<td>{_e(c['backbone'])}</td>",
                _td(c["variant"]),
                f"<td><code>{_e(c['trial_key'])}</code></td>",
                f"<td>{_e(trained)}</td>",
                _td(cv_mean, 4),
                _td(metrics["test"]["macro_f1"]),
                _td(metrics["test_at_0.5"]["macro_f1"]),
                _td(metrics["test"]["micro_f1"]),
                ev,
            ],
            cls,
        )

    cv = (report.get("cv") or {}).get("mean")
    body = [row("selected (final)", sel, m, "train + validation", cv, "selected")]
    body += [row("co-best (refit)", c, c["metrics"], "train", c["cv_mean"], "co-best") for c in co]
    return f"<table>{head}{''.join(body)}</table>"


def _evidence_table(report: Mapping) -> str:
    ev = report["metrics"].get("evidence")
    if not ev:
        return "<p>This model has no evidence head: no evidence metrics.</p>"
    head = "<tr><th>metric</th><th>split</th><th>value</th></tr>"
    body = [
        _tr([f"<td>{_e(k)}</td>", f"<td>{_e(report['split'])}</td>", _td(ev[k])], "evidence")
        for k in ("token_f1", "char_f1", "exact_match", "null_span_accuracy")
    ]
    body.append(
        _tr(
            [
                "<td>rows scored (without gold span)</td>",
                f"<td>{_e(report['split'])}</td>",
                f'<td class="num">{_e(ev["n"])} ({_e(ev["n_null"])})</td>',
            ]
        )
    )
    if ev.get("n_incomplete_excluded") is not None:
        body.append(
            _tr(
                [
                    "<td>rows left out (evidence partly unaligned)</td>",
                    f"<td>{_e(report['split'])}</td>",
                    _td(ev["n_incomplete_excluded"]),
                ]
            )
        )
    return f"<table>{head}{''.join(body)}</table>"


def _coverage_table(report: Mapping) -> str:
    """What the input window read and cut of the test posts: the final model and every co-best checkpoint
    (each with its own tokenizer and window settings)."""
    models = [("selected (final)", report.get("input_coverage"))]
    models += [
        (f"co-best {c['backbone']} v{c['variant']} (refit)", c.get("input_coverage"))
        for c in report.get("co_best") or []
    ]
    models = [(label, cov) for label, cov in models if cov]
    if not models:
        return "<p>This report does not say what the input window read (written by older code).</p>"
    lines = [
        ("policy", lambda c: c["policy"] + (f", {c['aggregation']} over windows" if c["policy"] == "windows" else "")),
        ("window (tokens)", lambda c: c["max_length"]),
        ("window overlap", lambda c: "–" if c["window_overlap"] is None else f"{c['window_overlap']:.0%}"),
        ("max windows per post", lambda c: "all" if c["max_windows"] is None else c["max_windows"]),
        ("posts longer than one window", lambda c: _of(c["n_longer_than_window"], c["n_posts"])),
        (
            "windows needed per post (mean / p50 / p95 / max)",
            lambda c: " / ".join(
                [
                    f"{c['windows_needed']['mean']:.2f}",
                    f"{c['windows_needed']['p50']:g}",
                    f"{c['windows_needed']['p95']:g}",
                    str(c["windows_needed"]["max"]),
                ]
            ),
        ),
        (
            "windows read per post (mean / max)",
            lambda c: f"{c['windows_read']['mean']:.2f} / {c['windows_read']['max']}",
        ),
        ("posts not read to their end", lambda c: _of(c["n_posts_capped"], c["n_posts"])),
        (
            "evidence sentences starting past what was read",
            lambda c: _of(c["n_evidence_beyond_read"], c["n_evidence_sentences"]),
        ),
    ]
    head = "<tr><th>input window</th>" + "".join(f"<th>{_e(label)}</th>" for label, _ in models) + "</tr>"
    body = [
        _tr([f"<td>{_e(name)}</td>", *[f'<td class="num">{_e(get(cov))}</td>' for _, cov in models]], "coverage")
        for name, get in lines
    ]
    policies = "".join(f"<li>{_e(label)}: {_e(cov['policy_text'])}</li>" for label, cov in models)
    return f'<table>{head}{"".join(body)}</table><ul class="labels">{policies}</ul>'


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
    evidence); ``texts``: post_id -> post text, for the example posts; ``links``: label -> relative
    URL (the selection page, the model card, test_predictions.jsonl).
    """
    symptoms = list(SYMPTOMS)
    m = report["metrics"]
    per, per05 = m["test"]["per_symptom"], m["test_at_0.5"]["per_symptom"]
    sel = report["selected"]
    lin = report["lineage"]
    has_evidence = bool(report["task"]["evidence_task"])
    split = report["split"]
    figs = _Figures()
    bars = figs.add(
        "per_symptom_scores",
        _plot_symptom_bars(per, symptoms),
        "per-symptom scores",
        f"Precision, recall, F1 ({split} split, tuned thresholds) and PR-AUC ({split} split) per symptom; "
        "n = positive test posts.",
    )
    pr = figs.add(
        "precision_recall_curves",
        _plot_pr_curves(rows, per, per05, symptoms),
        "precision-recall curves",
        f"Precision-recall curve per symptom from the {split} split's predicted probabilities; the dot is "
        "the tuned threshold, the square 0.5.",
    )
    thr = figs.add(
        "thresholds_f1",
        _plot_thresholds(per, per05, symptoms),
        "F1 at tuned thresholds vs 0.5",
        f"F1 on the {split} split at the thresholds tuned on the validation split, and at 0.5.",
    )
    probs = figs.add(
        "probability_distributions",
        _plot_probabilities(rows, per, symptoms),
        "probability distributions",
        f"Distribution of the predicted probabilities on the {split} split, by gold label.",
    )
    meta = [
        ("final_key", report["final_key"]),
        ("split", f"{split} ({report['n_test_posts']} posts, read once)"),
        ("backbone", f"{sel['backbone']} v{sel['variant']}"),
        ("trial_key", sel["trial_key"]),
        ("study_key", sel["study_key"]),
        ("selection_key", sel["selection_key"]),
        ("data_key", lin["data_key"]),
        ("input format", report["task"]["input_format"]),
        ("evidence task", "yes" if has_evidence else "no"),
        (
            "trained on",
            " + ".join(report["training"]["trained_on"]) + f" ({report['training']['n_posts']} posts, "
            f"{report['training']['epochs']} epochs)",
        ),
        ("thresholds", f"tuned per symptom on the {report['thresholds']['split']} split"),
        ("code_version", lin["code_version"]),
        ("created_at", report.get("created_at")),
    ]
    cov = report.get("input_coverage")
    if cov:
        read = (
            "the rest of each is not read"
            if cov["policy"] == "truncate"
            else f"read in {cov['windows_read']['mean']:.2f} windows per post on average, "
            f"{cov['n_posts_capped']} capped at max_windows"
        )
        meta.append(
            (
                "input window",
                f"{cov['max_length']} tokens ({cov['policy']}); "
                f"{_of(cov['n_longer_than_window'], cov['n_posts'])} {cov['split']} posts are "
                f"longer, {read}; evidence sentences past what was read: "
                f"{_of(cov['n_evidence_beyond_read'], cov['n_evidence_sentences'])}",
            )
        )
    meta_html = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    links_html = ""
    if links:
        links_html = (
            '<p class="next">'
            + " · ".join(f'<a href="{_e(url)}">{_e(label)}</a>' for label, url in links.items())
            + "</p>"
        )
    by_id = {str(r["post_id"]): r for r in rows}
    examples = [
        _example(r, texts.get(str(r["post_id"])), symptoms, report["thresholds"]["values"], has_evidence)
        for r in pick_examples(list(by_id.values()), n_examples)
    ]
    legend = (
        '<p class="legend"><mark class="span-pred">predicted evidence</mark> '
        '<mark class="span-gold">gold evidence</mark> <small>(hover a mark for its symptoms; decisions at the '
        f"tuned thresholds; {len(examples)} {split} posts, those with gold evidence first, by post_id)"
        "</small></p>"
    )
    title = f"Test evaluation: {sel['backbone']} v{sel['variant']} (final {report['final_key']})"
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        '<p class="warning">A research tool for studying language, not a diagnostic device: these numbers describe '
        "how well the model matches annotators on held-out Reddit posts, nothing about any person.</p>"
        f'{links_html}<dl class="meta">{meta_html}</dl>'
        f"<h2>Summary</h2>{_summary_table(report)}"
        f"<h2>Per symptom ({_e(split)} split)</h2>{_per_symptom_table(report, symptoms)}{bars}{pr}"
        f"<h2>Thresholds: tuned on validation vs 0.5</h2>{_threshold_table(report, symptoms)}{thr}"
        f"<h2>Confusion counts ({_e(split)} split)</h2>{_confusion_table(report, symptoms)}{probs}"
        f"<h2>Input window ({_e(split)} split)</h2>{_coverage_table(report)}"
        f"<h2>Co-best candidates ({_e(split)} split)</h2>{_co_best_table(report)}"
        f"<h2>Evidence ({_e(split)} split)</h2>{_evidence_table(report)}"
        f"<h2>Example posts ({_e(split)} split)</h2>{legend}{''.join(examples) or '<p>no test posts</p>'}"
        f"<p><small>Every number on this page is on the {_e(split)} split unless its label names another "
        "(CV: held-out folds of the train split; thresholds: validation split).</small></p></body></html>\n"
    )
    return Page(page, figs.plots)


def render_evaluation_html(report: Mapping, rows: Sequence[Mapping], texts: Mapping[str, str], **kw) -> str:
    """The evaluation page's HTML (see :func:`evaluation_page`)."""
    return evaluation_page(report, rows, texts, **kw).html

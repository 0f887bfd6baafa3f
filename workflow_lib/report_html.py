"""Self-contained HTML page for a selection report: results table and three plots.

Plots are drawn with matplotlib's Agg canvas (no pyplot, no global backend
switch) and inlined as base64 PNG; CSS is inline; every piece of text from
the report goes through html.escape. Nothing is fetched when the page opens.
"""
from __future__ import annotations

import base64
import html
import io
import math
from typing import Any, Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

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
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(b64: str, alt: str, caption: str) -> str:
    return (f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def _cand_label(c: Mapping) -> str:
    return f"{c.get('backbone')} v{c.get('variant')}\n{str(c.get('trial_key', ''))[:8]}"


# ---------------------------------------------------------------- plots
def _plot_history(study_summaries: Sequence[Mapping], metric: str) -> str:
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
            ax.plot(unknown, [lo] * len(unknown), "x", color="#d62728", alpha=.5,
                    label="pruned (no fold scored)" if not known else None)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("trial number")
        ax.set_ylabel(f"CV {metric}")
        ax.grid(alpha=.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def _plot_folds(candidates: Sequence[Mapping], baseline: Mapping | None, metric: str) -> str:
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
        ax.boxplot([g if g else [float("nan")] for g in groups], positions=pos, widths=.5, showfliers=False)
        for p, g, c in zip(pos, groups, list(candidates) + [None]):
            color = "#2ca02c" if (c is not None and c.get("selected")) else ("#7f7f7f" if c is None else "#1f77b4")
            offsets = [(-0.12 + 0.24 * i / max(1, len(g) - 1)) if len(g) > 1 else 0.0 for i in range(len(g))]
            ax.scatter([p + o for o in offsets], g, color=color, zorder=3, s=18)
        ax.set_xticks(pos)
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel(f"{metric} per held-out fold")
        ax.grid(axis="y", alpha=.3)
    ax.set_title("per-fold scores (green = selected, grey = baseline)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _plot_tradeoff(candidates: Sequence[Mapping], rule: Mapping, baseline: Mapping | None, metric: str) -> str:
    fig = Figure(figsize=(6.5, 4.0))
    ax = fig.subplots()
    pts = [c for c in candidates if c.get("latency_p95_ms") is not None]
    if not pts:
        _no_data(ax, "no latency measurements")
    else:
        for c in pts:
            color = "#2ca02c" if c.get("selected") else ("#1f77b4" if c.get("within_budget", True) else "#bbbbbb")
            ax.errorbar(c["latency_p95_ms"], c["cv_mean"], yerr=c.get("cv_std") or 0, fmt="o", color=color,
                        capsize=3)
            ax.annotate(f"{c.get('backbone')} v{c.get('variant')}", (c["latency_p95_ms"], c["cv_mean"]),
                        textcoords="offset points", xytext=(5, 4), fontsize=7)
        budget = rule.get("latency_budget_ms")
        if budget is not None:
            ax.axvline(budget, color="#d62728", ls="--", label=f"budget {budget} ms")
        if baseline and baseline.get("mean") is not None:
            ax.axhline(baseline["mean"], color="#7f7f7f", ls=":", label=f"{baseline.get('name', 'baseline')}")
        if budget is not None or baseline:
            ax.legend(fontsize=7)
        ax.set_xlabel(f"p95 latency (ms) at batch {rule.get('latency_batch_size')} x "
                      f"length {rule.get('latency_seq_length')}")
        ax.set_ylabel(f"CV {metric} (mean ± std)")
        ax.grid(alpha=.3)
    ax.set_title("score vs latency", fontsize=9)
    fig.tight_layout()
    return _png(fig)


# ---------------------------------------------------------------- page
def _table(report: Mapping) -> str:
    head = ("<tr><th>rank</th><th>backbone</th><th>variant</th><th>trial</th><th>CV mean ± std</th>"
            "<th>per-fold scores</th><th>p95 latency (ms)</th><th>within budget</th><th>selected</th></tr>")
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
            f"<td>{_e(c.get('backbone'))}</td><td class=\"num\">{_e(c.get('variant'))}</td>"
            f"<td><code>{_e(c.get('trial_key'))}</code></td>"
            f"<td class=\"num\">{_num(c.get('cv_mean'))} ± {_num(c.get('cv_std'))}</td>"
            f"<td>{_e(folds)}</td><td class=\"num\">{_e(lat)}</td>"
            f"<td>{'yes' if c.get('within_budget') else 'no'}</td><td>{'✔' if c.get('selected') else ''}</td></tr>")
    b = report.get("baseline")
    if b:
        folds = ", ".join(_num(v) for v in (b.get("fold_scores") or []))
        body.append(f'<tr class="baseline"><td>–</td><td>{_e(b.get("name", "baseline"))} (baseline)</td><td>–</td>'
                    f"<td>–</td><td class=\"num\">{_num(b.get('mean'))} ± {_num(b.get('std'))}</td>"
                    f"<td>{_e(folds)}</td><td>–</td><td>–</td><td></td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def render_selection_html(report: dict, study_summaries: list[dict]) -> str:
    """The selection report as one self-contained HTML page."""
    metric = report.get("metric", "score")
    rule = report.get("rule") or {}
    cands = report.get("candidates") or []
    sel = report.get("selected") or {}
    baseline = report.get("baseline")
    meta = [("selection_key", report.get("selection_key")), ("metric", metric), ("split", report.get("split")),
            ("latency budget (ms)", rule.get("latency_budget_ms")),
            ("latency at", f"batch {rule.get('latency_batch_size')} x length {rule.get('latency_seq_length')}"),
            ("tie tolerance", rule.get("tie_tolerance")), ("code_version", report.get("code_version"))]
    meta_html = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v if v is not None else 'none')}</dd>" for k, v in meta)
    plots = [
        _img(_plot_history(study_summaries or [], metric), "optimisation history",
             "Optimisation history per study: objective per trial (x = pruned), line = best so far."),
        _img(_plot_folds(cands, baseline, metric), "per-fold scores",
             "Spread of the per-fold held-out scores of every candidate and the baseline."),
        _img(_plot_tradeoff(cands, rule, baseline, metric), "score vs latency",
             "CV score against p95 latency; dashed line = latency budget."),
    ]
    title = f"Model selection: {sel.get('backbone', '?')} v{sel.get('variant', '?')}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f"<p class=\"reason\">{_e(report.get('reason', ''))}</p>"
        f"<dl class=\"meta\">{meta_html}</dl>"
        f"<h2>Candidates</h2>{_table(report)}"
        f"<h2>Plots</h2>{''.join(plots)}"
        f"<p><small>All scores are on {_e(report.get('split', 'cv heldout folds'))}; the test split is not used "
        f"for selection.</small></p></body></html>\n"
    )

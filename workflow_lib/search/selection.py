"""Model selection across backbones and study variants: CV score first, latency as tie-break.

Rule (``selection`` config section):

1. Each candidate's p95 latency is read from its benchmark, as
   ``latency_metric`` says: ``per_post_p95`` (the default) is the p95 ms per
   post of the benchmark's per-post figures (one predict call per post over a
   sample of the data's own posts, all windows included);
   ``fixed_shape_p95`` is the p95 ms of one forward pass at
   latency_batch_size x latency_seq_length on synthetic inputs (nearest
   measured configuration when that exact one was not measured).
2. Candidates above ``latency_budget_ms`` (when set) are excluded.
3. Among the rest the best ``cv_mean`` wins; candidates within
   ``tie_tolerance`` of the best are tied and the lowest latency among them
   wins; then backbone name, then trial_key, so the result never depends on
   the order candidates arrive in.

The full ranking applies the same rule repeatedly to the remaining
candidates, so rank 1 is always the selected one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workflow_lib.config.sections import Selection

SPLIT = "cv heldout folds (train split)"
REQUIRED = ("backbone", "study_key", "variant", "trial_key", "cv_mean", "cv_std", "fold_scores", "params")
_EPS = 1e-12


class SelectionError(RuntimeError):
    """No candidate can be selected; the message says why and what to change."""


def _label(c: Mapping) -> str:
    return f"{c['backbone']} v{c['variant']} trial {c['trial_key']}"


def _lat_key(c: Mapping) -> float:
    lat = c.get("latency_p95_ms")
    return math.inf if lat is None else float(lat)


def _pick(pool: list[dict], tol: float) -> tuple[dict, list[dict]]:
    """The winner of ``pool`` by the rule, and the candidates tied with the best score."""
    best = max(c["cv_mean"] for c in pool)
    tied = [c for c in pool if best - c["cv_mean"] <= tol + _EPS]
    winner = min(
        tied, key=lambda c: (_lat_key(c), -c["cv_mean"], str(c["backbone"]), str(c["trial_key"]), int(c["variant"]))
    )
    return winner, tied


def _check(c: Mapping, i: int) -> None:
    missing = [k for k in REQUIRED if k not in c]
    if missing:
        raise SelectionError(f"candidate #{i} ({c.get('backbone', '?')}) lacks {', '.join(missing)}")
    m = c["cv_mean"]
    if not isinstance(m, (int, float)) or isinstance(m, bool) or not math.isfinite(m):
        raise SelectionError(f"candidate {_label(c)} has no CV score (cv_mean={m!r}); its study has no completed trial")


def select(
    candidates: list[dict], rule: Selection, *, metric: str, baseline: dict | None = None, objective: str | None = None
) -> dict:
    """Pick the best candidate by ``rule`` (the resolved ``selection`` section); return the selection report
    (without selection_key, lineage, code_version, html). ``metric`` is the CV metric (hpo.metric),
    ``objective`` how the CV score weighs it (the metric alone when None)."""
    if not candidates:
        raise SelectionError("no candidates to select from: no study produced a completed trial")
    budget = rule.latency_budget_ms
    per_post = rule.latency_metric == "per_post_p95"
    lb, ls = rule.latency_batch_size, rule.latency_seq_length

    rows: list[dict] = []
    for i, cand in enumerate(candidates):
        _check(cand, i)
        row = {k: copy.deepcopy(v) for k, v in cand.items() if k != "benchmark"}
        bench = cand.get("benchmark")
        measured = (per_post_p95(bench) if per_post else latency_at(bench, lb, ls)) if bench else None
        if measured is not None:
            lat, info = measured
        elif budget is None:
            lat, info = None, None
        elif not bench:
            raise SelectionError(
                f"candidate {_label(cand)} has no benchmark, so the latency budget "
                f"{budget} ms cannot be checked; run its benchmark first"
            )
        else:
            raise SelectionError(
                f"the benchmark of candidate {_label(cand)} has no per-post figures (it was written before "
                f"benchmark version 2), so the per-post p95 latency budget of {budget} ms "
                f"(selection.latency_metric: per_post_p95) cannot be checked; run its benchmark again "
                f"(snakemake --forcerun benchmark) or set selection.latency_metric: fixed_shape_p95"
            )
        row["latency_p95_ms"] = lat
        row["latency_measured_at"] = info
        row["within_budget"] = budget is None or (lat is not None and lat <= budget)
        row["rank"] = None
        row["selected"] = False
        rows.append(row)

    if per_post:
        where = f"per post (one predict call per post of the data{', all windows' if _windows(rows) else ''})"
    else:
        where = f"at batch size {lb} x sequence length {ls}"
    eligible = [r for r in rows if r["within_budget"]]
    if not eligible:
        fastest = min(rows, key=lambda r: (_lat_key(r), str(r["backbone"]), str(r["trial_key"])))
        raise SelectionError(
            f"no candidate meets the latency budget of {budget} ms (p95 {where}; selection.latency_metric: "
            f"{rule.latency_metric}); the fastest is {_label(fastest)} at {fastest['latency_p95_ms']:.3f} ms. "
            f"Raise selection.latency_budget_ms to at least "
            f"{math.ceil(fastest['latency_p95_ms'] * 1000) / 1000:.3f} or add a smaller backbone."
        )

    # Full ranking: apply the rule repeatedly to what is left.
    remaining = list(eligible)
    first_tied: list[dict] = []
    rank = 0
    while remaining:
        winner, tied = _pick(remaining, rule.tie_tolerance)
        rank += 1
        winner["rank"] = rank
        if rank == 1:
            first_tied = tied
        remaining = [r for r in remaining if r is not winner]
    winner = next(r for r in rows if r["rank"] == 1)
    winner["selected"] = True

    excluded = sorted(
        (r for r in rows if not r["within_budget"]),
        key=lambda r: (-r["cv_mean"], str(r["backbone"]), str(r["trial_key"]), int(r["variant"])),
    )
    ordered = sorted((r for r in rows if r["within_budget"]), key=lambda r: r["rank"]) + excluded

    selected = {
        k: copy.deepcopy(winner[k])
        for k in ("backbone", "study_key", "variant", "trial_key", "cv_mean", "cv_std", "latency_p95_ms", "params")
    }
    reason = _reason(winner, first_tied, excluded, eligible, rule, where, metric, baseline, objective)
    # co-best: other checkpoints tied with the winner (one per trial key: variants that met the same
    # configuration share its refit)
    co_best, seen = [], {winner["trial_key"]}
    for t in sorted(first_tied, key=lambda t: t["rank"]):
        if t["trial_key"] not in seen:
            seen.add(t["trial_key"])
            co_best.append(
                {k: copy.deepcopy(t[k]) for k in ("backbone", "study_key", "variant", "trial_key", "cv_mean")}
            )
    return {
        "co_best": co_best,
        "metric": metric,
        "objective": objective or metric,
        "rule": rule,
        "candidates": ordered,
        "selected": selected,
        "baseline": copy.deepcopy(baseline) if baseline else None,
        "reason": reason,
        "split": SPLIT,
    }


def _windows(rows: list[dict]) -> bool:
    """Whether any candidate's per-post latency covers windows (training.long_posts: windows)."""
    return any((r.get("latency_measured_at") or {}).get("long_posts") == "windows" for r in rows)


def _fmt_lat(lat) -> str:
    return "unmeasured" if lat is None else f"{lat:.2f} ms"


def _reason(winner, tied, excluded, eligible, rule, where, metric, baseline, objective=None) -> str:
    budget = rule.latency_budget_ms
    scope = (
        f"the {len(eligible)} candidate(s) within the p95 latency budget of {budget} ms"
        if budget is not None
        else f"{len(eligible)} candidate(s) (no latency budget)"
    )
    parts = [
        f"Selected {_label(winner)} (study {winner['study_key']}): CV {objective or metric} "
        f"{winner['cv_mean']:.4f} ± {winner['cv_std']:.4f}, p95 latency {_fmt_lat(winner['latency_p95_ms'])} "
        f"{where}, among {scope}."
    ]
    others = [t for t in tied if t is not winner]
    if others:
        best = max(t["cv_mean"] for t in tied)
        names = ", ".join(
            f"{_label(t)} ({t['cv_mean']:.4f}, {_fmt_lat(t['latency_p95_ms'])})"
            for t in sorted(others, key=lambda t: t["rank"])
        )
        parts.append(
            f"Tied within tolerance {rule.tie_tolerance} of the best score {best:.4f} with {names}; "
            f"the lowest latency wins."
        )
    if excluded:
        names = ", ".join(f"{_label(r)} ({r['cv_mean']:.4f}, {_fmt_lat(r['latency_p95_ms'])})" for r in excluded)
        parts.append(f"Excluded for exceeding the latency budget: {names}.")
    if baseline:
        # the baseline only does criteria matching: compare it with the criteria part of the objective
        mine = winner.get("cv_criteria_mean")
        mine = winner["cv_mean"] if mine is None else mine
        margin = mine - baseline["mean"]
        verdict = "beats" if margin > 0 else "does NOT beat"
        parts.append(
            f"On CV {metric} alone ({mine:.4f}) it {verdict} the {baseline.get('name', 'baseline')} "
            f"baseline ({baseline['mean']:.4f}) by {margin:+.4f}."
        )
    return " ".join(parts)


# -- reading a benchmark report (benchmark.json of the inference benchmark stage) ---------------


def per_post_p95(bench: Mapping[str, Any]) -> tuple[float, dict] | None:
    """Per-post p95 latency (ms) and what it was measured on ({"posts", "long_posts", "max_length",
    "windows_per_post_mean"}); None for a benchmark without per-post figures (benchmark_version 1)."""
    pp = bench.get("per_post")
    if not pp:
        return None
    info = {
        "posts": int(pp["posts"]),
        "long_posts": str(pp["long_posts"]),
        "max_length": int(pp["max_length"]),
        "windows_per_post_mean": float(pp["windows_per_post"]["mean"]),
    }
    return float(pp["latency_ms"]["p95"]), info


def latency_at(bench: Mapping[str, Any], batch_size: int, seq_length: int) -> tuple[float, dict]:
    """p95 latency (ms) at (batch_size, seq_length).

    When that configuration was not measured, the nearest measured one is used
    (distance |log2 batch ratio| + |log2 length ratio|; ties go to the larger,
    slower configuration so a budget check stays conservative). The info dict
    says which: {"batch_size", "seq_length", "exact"}.
    """
    rows = list(bench.get("results") or [])
    if not rows:
        raise ValueError("benchmark has no measured configurations (empty 'results')")
    b, s = int(batch_size), int(seq_length)

    def distance(r):
        return abs(math.log2(r["batch_size"] / b)) + abs(math.log2(r["seq_length"] / s))

    best = min(rows, key=lambda r: (distance(r), -r["batch_size"], -r["seq_length"]))
    exact = best["batch_size"] == b and best["seq_length"] == s
    info = {"batch_size": int(best["batch_size"]), "seq_length": int(best["seq_length"]), "exact": bool(exact)}
    return float(best["latency_ms"]["p95"]), info

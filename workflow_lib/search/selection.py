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

Beside the choice, the report says how sure it is (learning/uncertainty.py): each candidate's and baseline's
CV Student-t interval (``cv_interval``, optimistic: the folds share training posts); Nadeau & Bengio's corrected
resampled t-test for every pair of candidates (on the CV objective) and for every candidate against every baseline
(on the criteria metric alone, the only thing a baseline does), with n_train/n_test the mean fold sizes
(``comparisons``); and whether the winner leads its runner-up and the best baseline by more than noise
(``winner_lead``). "Beats the baseline" means beats the best baseline (the highest CV mean).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workflow_lib.learning.uncertainty import ALPHA, corrected_resampled_ttest, cv_summary

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
    candidates: list[dict],
    rule: Selection,
    *,
    metric: str,
    baselines: Sequence[Mapping] = (),
    objective: str | None = None,
    fold_sizes: tuple[float, float] | None = None,
) -> dict:
    """Pick the best candidate by ``rule`` (the resolved ``selection`` section); return the selection report
    (without selection_key, lineage, code_version, html). ``metric`` is the CV metric (hpo.metric),
    ``objective`` how the CV score weighs it (the metric alone when None); ``baselines`` the baselines' CV
    results on the same folds (baseline.json files). ``fold_sizes``: (n_train, n_test), the posts a fold trains
    on and scores, mean over the folds (the data card's fold counts), for the corrected t-tests; None: equal
    folds, n_test/n_train = 1/(k-1)."""
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
    for r in rows:
        r["cv_interval"] = _cv_interval(r["fold_scores"])
    listed = [{**copy.deepcopy(dict(b)), "cv_interval": _cv_interval(b["fold_scores"])} for b in baselines]
    baseline = max(baselines, key=lambda b: (b["mean"], str(b.get("name"))), default=None)
    label = objective or metric
    sizes = _fold_sizes(fold_sizes, rows)
    comparisons = _comparisons(ordered, listed, metric, label, sizes, criteria_only=label == metric)
    reason = _reason(winner, first_tied, excluded, eligible, rule, where, metric, baseline, objective, len(listed))
    # co-best: other checkpoints tied with the winner (one per trial key: variants that met the same
    # configuration share its refit)
    co_best, seen = [], {winner["trial_key"]}
    for t in sorted(first_tied, key=lambda t: t["rank"]):
        if t["trial_key"] not in seen:
            seen.add(t["trial_key"])
            co_best.append(
                {k: copy.deepcopy(t[k]) for k in ("backbone", "study_key", "variant", "trial_key", "cv_mean")}
            )
    ranked = sorted((r for r in rows if r["within_budget"]), key=lambda r: r["rank"])
    return {
        "co_best": co_best,
        "metric": metric,
        "objective": label,
        "rule": rule,
        "candidates": ordered,
        "selected": selected,
        "baseline": copy.deepcopy(dict(baseline)) if baseline else None,
        "baselines": listed,
        "fold_sizes": sizes,
        "comparisons": comparisons,
        "winner_lead": _winner_lead(winner, ranked, comparisons, baseline, metric, label),
        "reason": reason,
        "split": SPLIT,
    }


# -- how sure: CV intervals, corrected t-tests, the winner's lead ------------------------------------------------


def _scores(values: Sequence | None) -> list[float] | None:
    """The fold scores as floats; None when there are none or a fold is unscored (null)."""
    if not values or any(v is None for v in values):
        return None
    return [float(v) for v in values]


def _cv_interval(fold_scores: Sequence | None) -> dict | None:
    scores = _scores(fold_scores)
    return cv_summary(scores) if scores else None


def _fold_sizes(fold_sizes: tuple[float, float] | None, rows: list[dict]) -> dict:
    """{"n_train", "n_test", "source"}: the posts a fold trains on and scores, for the corrected t-tests."""
    if fold_sizes is not None:
        n_train, n_test = fold_sizes
        return {"n_train": float(n_train), "n_test": float(n_test), "source": "mean fold sizes of the data card"}
    k = max((len(r["fold_scores"] or []) for r in rows), default=0)
    return {
        "n_train": float(max(k - 1, 1)),
        "n_test": 1.0,
        "source": f"equal folds assumed: n_test/n_train = 1/(k-1) with k = {k}",
    }


def _criteria_scores(c: Mapping, criteria_only: bool) -> list[float] | None:
    """A candidate's per-fold scores on the criteria metric alone (what a baseline is compared on): its
    cv_criteria_fold_scores, else its fold_scores when the objective is the criteria metric alone."""
    scores = _scores(c.get("cv_criteria_fold_scores"))
    if scores is None and criteria_only:
        scores = _scores(c["fold_scores"])
    return scores


def compare(a: str, a_scores, b: str, b_scores, metric: str, sizes: Mapping) -> dict | None:
    """One comparison entry: a − b per fold and the corrected resampled t-test (H1: a better than b); None when
    the two do not have the same k >= 2 scored folds."""
    sa, sb = _scores(a_scores), _scores(b_scores)
    if sa is None or sb is None or len(sa) != len(sb) or len(sa) < 2:
        return None
    return {
        "a": a,
        "b": b,
        "metric": metric,
        "fold_differences": [x - y for x, y in zip(sa, sb)],
        "test": corrected_resampled_ttest(sa, sb, n_train=sizes["n_train"], n_test=sizes["n_test"]),
    }


def _comparisons(
    ordered: list[dict], baselines: list[dict], metric: str, label: str, sizes: Mapping, *, criteria_only: bool
) -> list[dict]:
    """Every pair of candidates (a ranked before b; one entry per pair of trial keys) on the CV objective, then
    every candidate against every baseline on the criteria metric."""
    unique, seen = [], set()  # one row per trial key (variants that met one configuration share its scores)
    for r in ordered:
        if r["trial_key"] not in seen:
            seen.add(r["trial_key"])
            unique.append(r)
    out = []
    for a, b in itertools.combinations(unique, 2):
        if (
            cmp := compare(a["trial_key"], a["fold_scores"], b["trial_key"], b["fold_scores"], label, sizes)
        ) is not None:
            out.append(cmp)
    for a in unique:
        for b in baselines:
            key = f"baseline:{b['name']}"
            cmp = compare(a["trial_key"], _criteria_scores(a, criteria_only), key, b["fold_scores"], metric, sizes)
            if cmp is not None:
                out.append(cmp)
    return out


def _find(comparisons: list[dict], a: str, b: str) -> dict | None:
    return next((c for c in comparisons if c["a"] == a and c["b"] == b), None)


def _lead(cmp: Mapping | None) -> dict:
    """{"mean_difference", "p_one_sided", "more_than_noise"} of one comparison (all None without one)."""
    test = (cmp or {}).get("test") or {}
    p = test.get("p_one_sided")
    return {
        "mean_difference": test.get("mean_difference"),
        "p_one_sided": p,
        "more_than_noise": None if p is None else bool(p < ALPHA),
    }


def _verdict(lead: Mapping) -> str:
    """How the t-test reads: ahead by more than noise, ahead within noise, or not ahead."""
    p = lead["p_one_sided"]
    if p is None:
        return "the same in every fold, so the t-test is undefined"
    if lead["more_than_noise"]:
        return f"one-sided p = {p:.3f}: ahead by more than noise at the {100 * ALPHA:g}% level"
    if lead["mean_difference"] > 0:
        return f"one-sided p = {p:.3f}: ahead, but within noise at the {100 * ALPHA:g}% level"
    return f"one-sided p = {p:.3f}: not ahead"


def _winner_lead(
    winner: dict, ranked: list[dict], comparisons: list[dict], baseline: Mapping | None, metric: str, label: str
) -> dict:
    """Does the winner lead its runner-up (the next-ranked other trial) and the best baseline by more than noise
    (corrected resampled t-test, one-sided, level ALPHA)? With the sentence the selection page prints."""
    runner = next((r for r in ranked if r["trial_key"] != winner["trial_key"]), None)
    lead = _lead(_find(comparisons, winner["trial_key"], runner["trial_key"]) if runner else None)
    if runner is None:
        text = f"The selected {_label(winner)} is the only candidate within the rule: it has no runner-up."
    elif lead["mean_difference"] is None:
        text = f"The selected {_label(winner)} and the runner-up {_label(runner)} lack comparable fold scores."
    else:
        text = (
            f"The selected {_label(winner)} − the runner-up {_label(runner)}: {lead['mean_difference']:+.4f} CV "
            f"{label} per fold on average (corrected resampled t-test, {_verdict(lead)})."
        )
    out = {
        "runner_up": runner["trial_key"] if runner else None,
        "mean_difference": lead["mean_difference"],
        "p_one_sided": lead["p_one_sided"],
        "more_than_noise": lead["more_than_noise"],
        "vs_baseline": None,
        "text": text,
    }
    if baseline is not None:
        key = f"baseline:{baseline['name']}"
        vs = _lead(_find(comparisons, winner["trial_key"], key))
        out["vs_baseline"] = {"baseline": baseline["name"], **vs}
        if vs["mean_difference"] is not None:
            out["text"] += (
                f" Against the best baseline, {baseline['name']}: {vs['mean_difference']:+.4f} CV {metric} per fold "
                f"({_verdict(vs)})."
            )
    return out


def _windows(rows: list[dict]) -> bool:
    """Whether any candidate's per-post latency covers windows (training.long_posts: windows)."""
    return any((r.get("latency_measured_at") or {}).get("long_posts") == "windows" for r in rows)


def _fmt_lat(lat) -> str:
    return "unmeasured" if lat is None else f"{lat:.2f} ms"


def _reason(winner, tied, excluded, eligible, rule, where, metric, baseline, objective=None, n_baselines=1) -> str:
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
        best = f" (the best of {n_baselines} baselines)" if n_baselines > 1 else ""
        parts.append(
            f"On CV {metric} alone ({mine:.4f}) it {verdict} the {baseline.get('name', 'baseline')} "
            f"baseline ({baseline['mean']:.4f}){best} by {margin:+.4f}."
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

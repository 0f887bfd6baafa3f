"""How the evaluation and selection pages and the model card write a report's uncertainty: one wording for both.

An interval (:mod:`workflow_lib.learning.uncertainty`'s ``{"estimate", "low", "high", "n_undefined"}``) is
written ``0.552 [0.471, 0.630]``, a difference with its sign, a p-value to three decimals; a symptom with fewer
test positives than the report's minimum carries the flag ``n=2 ⚠``; the decision thresholds are named by where
they came from (``thresholds.source`` of the report). For the sentence model (``task.criteria_from: sentences``)
:func:`decisions_text` says in one paragraph how its decisions and its evidence come from the same sentence scores,
with the evidence threshold and how it was chosen (``thresholds.evidence``). Every report field read here is
optional: a report written before the field existed gives None (or the wording of that time), never an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from workflow_lib.learning.uncertainty import ALPHA, FEW_POSITIVES

MISSING = "–"
FLAG = "⚠"
# test figures with an interval in a criteria_intervals block (uncertainty.criteria_intervals): key -> its path
# there (subset accuracy over the nine symptoms is the paper's exact match)
FIGURE_INTERVALS = {"macro_f1": ("macro_f1",), "micro_f1": ("micro_f1",), "accuracy": ("paper", "exact_match")}
PAPER_METRICS = ("macro_f1", "micro_f1", "weighted_f1", "exact_match")

# thresholds.source -> (a short origin for labels, how they were chosen, the data they were chosen on)
THRESHOLD_SOURCES = {
    "oof": (
        "chosen out-of-fold on train",
        "chosen per symptom on the out-of-fold probabilities of the selected trial's cross-validation models "
        "over the train split",
        "out-of-fold predictions of the train split",
    ),
    "validation": (
        "tuned on validation",
        "tuned per symptom on the refit model's validation predictions",
        "validation split",
    ),
    "fixed": ("fixed at 0.5", "fixed at 0.5 for every symptom", "none (fixed at 0.5)"),
}


# training.sentence_aggregation -> how a post's probability of a symptom comes from its sentences'
AGGREGATIONS = {
    "max": "the maximum of its sentences' (the surest sentence decides)",
    "logsumexp": "the log-sum-exp of its sentences' logits (a smooth maximum)",
    "noisy_or": "the noisy-OR of its sentences' probabilities, 1 − ∏(1 − p) (at least one sentence shows it)",
    "attention": "a learned attention-weighted mean of its sentences' logits",
}
# thresholds.evidence.source -> how the sentence model's evidence threshold was chosen
EVIDENCE_SOURCES = {
    "oof": "chosen on sentence-level micro F1 over the cross-validation models' held-out sentences of the train split",
    "validation": "chosen on sentence-level micro F1 over the refit model's validation sentences",
    "fixed": "fixed at training.evidence_threshold (nothing tuned)",
}


def number(x, digits: int = 3, missing: str = MISSING, signed: bool = False) -> str:
    """A float to ``digits`` decimals (with its sign when ``signed``); ``missing`` for None."""
    if x is None:
        return missing
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def interval(iv: Mapping | None, digits: int = 3, missing: str = MISSING, signed: bool = False) -> str | None:
    """'0.552 [0.471, 0.630]' from an Interval; None without one. An undefined estimate is ``missing``; an
    estimate without bounds (no resample defined) is followed by ``[missing, missing]``."""
    if not iv:
        return None
    est = number(iv.get("estimate"), digits, missing, signed)
    if iv.get("estimate") is None:
        return est
    low, high = (number(iv.get(k), digits, missing, signed) for k in ("low", "high"))
    return f"{est} [{low}, {high}]"


def t_interval(ci: Mapping | None, digits: int = 3, missing: str = MISSING) -> str | None:
    """'0.550 [0.512, 0.588]' from :func:`~workflow_lib.learning.uncertainty.cv_summary` (mean and t-interval);
    None without one."""
    if not ci:
        return None
    return interval({"estimate": ci.get("mean"), "low": ci.get("low"), "high": ci.get("high")}, digits, missing)


def metric_name(metric: str) -> str:
    """'macro F1' for macro_f1 (the paired differences' metrics), any other key with spaces."""
    return {"macro_f1": "macro F1", "micro_f1": "micro F1"}.get(metric, str(metric).replace("_", " "))


def p_value(p, missing: str = MISSING) -> str:
    """'0.031', '< 0.001'."""
    if p is None:
        return missing
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def intervals_of(report: Mapping, at: str = "at_tuned_thresholds") -> Mapping:
    """The report's test intervals at the thresholds used (or ``at="at_0.5"``); empty for a report without."""
    return (report.get("intervals") or {}).get(at) or {}


def figure_interval(intervals: Mapping, key: str) -> Mapping | None:
    """The Interval of test figure ``key`` (a multilabel_metrics key) in a criteria_intervals block; None when
    the block has none for it."""
    block = intervals
    for part in FIGURE_INTERVALS.get(key, ()):
        block = (block or {}).get(part)
    return block if key in FIGURE_INTERVALS else None


def level(meta: Mapping | None) -> str:
    """'95%' from a bootstrap meta (or cv_summary's ``level``)."""
    lv = (meta or {}).get("level", 1 - ALPHA)
    return f"{100 * lv:g}%"


def threshold_origin(thresholds: Mapping) -> str:
    """Where the decision thresholds came from, short ('tuned on validation', 'chosen out-of-fold on train')."""
    src = thresholds.get("source")
    if src in THRESHOLD_SOURCES:
        return THRESHOLD_SOURCES[src][0]
    return f"tuned on {thresholds.get('split') or 'validation'}"


def threshold_source(thresholds: Mapping) -> str:
    """How the thresholds were chosen, as a phrase (a report of older code wrote its own)."""
    src = thresholds.get("source")
    return THRESHOLD_SOURCES[src][1] if src in THRESHOLD_SOURCES else str(src)


def threshold_data(thresholds: Mapping) -> str:
    """The data the thresholds were chosen on ('validation split', 'out-of-fold predictions of the train split')."""
    src = thresholds.get("source")
    return THRESHOLD_SOURCES[src][2] if src in THRESHOLD_SOURCES else f"{thresholds.get('split')} split"


@dataclass(frozen=True)
class Flag:
    """A symptom's few-positives flag: ``text`` ('n=2 ⚠') and ``title`` (why its figures are unstable)."""

    text: str
    title: str


def few_positive_flags(report: Mapping) -> dict[str, Flag]:
    """Symptom -> Flag for the symptoms with fewer positive test posts than the report's minimum: from the
    report's ``few_positives`` block, else from the per-symptom entries of its test intervals; none without."""
    block = report.get("few_positives") or {}
    per = block.get("per_symptom")
    if per is None:
        per = ((report.get("intervals") or {}).get("at_tuned_thresholds") or {}).get("per_symptom") or {}
    minimum = block.get("min_positives", FEW_POSITIVES)
    split = block.get("split", report.get("split", "test"))
    return {
        s: Flag(
            f"n={v['n_positives']} {FLAG}",
            f"fewer than {minimum} positive {split} posts ({v['n_positives']}): this symptom's {split} figures "
            "rest on a handful of posts and are unstable",
        )
        for s, v in per.items()
        if v.get("few_positives")
    }


def difference(pd: Mapping | None, digits: int = 3, missing: str = MISSING) -> str | None:
    """'+0.214 [+0.150, +0.281]': a paired bootstrap difference (model - baseline); None without one."""
    return interval((pd or {}).get("difference"), digits, missing, signed=True) if pd else None


def more_than_noise(pd: Mapping) -> bool:
    """A paired difference is more than noise when its one-sided p-value is below the report's alpha."""
    return pd["p_value"] < (pd.get("bootstrap") or {}).get("alpha", ALPHA)


def difference_sentence(first: str, second: str, pd: Mapping, split: str = "test") -> str:
    """One plain sentence on the paired difference ``first - second``: ``first`` better by more than noise (its
    one-sided p below the report's alpha), ``second`` better (the whole interval below 0), or within noise."""
    alpha = (pd.get("bootstrap") or {}).get("alpha", ALPHA)
    at = f"the {100 * alpha:g}% level"
    head = (
        f"{first[:1].upper()}{first[1:]} − {second} on the {split} split: {metric_name(pd.get('metric', 'macro_f1'))} "
        f"{difference(pd)} ({level(pd.get('bootstrap'))} interval), one-sided p = {p_value(pd['p_value'])}"
    )
    if more_than_noise(pd):
        return f"{head}: {first} is better by more than noise at {at}."
    high = pd["difference"].get("high")
    if high is not None and high < 0:
        return f"{head}: {second} is better, the whole interval lies below 0."
    return f"{head}: {first} is not shown better than {second}; the difference is within noise at {at}."


def baselines(report: Mapping) -> list[Mapping]:
    """Every baseline a report lists: its ``baselines`` list, else its one ``baseline`` object."""
    listed: Sequence[Mapping] = report.get("baselines") or []
    one = report.get("baseline")
    if one and all(b.get("name") != one.get("name") for b in listed):
        listed = [one, *listed]
    return list(listed)


def reference_baseline(report: Mapping) -> str:
    """The name of the baseline an evaluation report holds the model against first (``reference``; else the first
    listed); 'baseline' for a report without baselines."""
    listed = report.get("baselines") or []
    first = next((b for b in listed if b.get("reference")), listed[0] if listed else {"name": "baseline"})
    return first["name"]


def bootstrap_note(report: Mapping) -> str | None:
    """The sentence stated once near the top: what [low, high] after a test figure is, and the flag; None for
    a report without intervals."""
    ivs = report.get("intervals") or {}
    meta = ivs.get("bootstrap") or (ivs.get("at_tuned_thresholds") or {}).get("bootstrap")
    if not meta:
        return None
    split = ivs.get("split", report.get("split", "test"))
    n_posts = (ivs.get("at_tuned_thresholds") or {}).get("n_posts", report.get("n_test_posts"))
    minimum = (report.get("few_positives") or {}).get("min_positives", FEW_POSITIVES)
    return (
        f"[low, high] after a {split} figure is its {level(meta)} bootstrap interval: {meta['method']}, "
        f"{meta['n_resamples']} resamples of the {n_posts} {split} posts (seed {meta['seed']}). "
        f"{FLAG} n=k marks a symptom with fewer than {minimum} positive {split} posts: its figures are unstable."
    )


# -- the sentence model (training.criteria_from: sentences) ---------------------------------------------------------
def sentence_model(report: Mapping) -> bool:
    """True for a report of the sentence model (``task.criteria_from: sentences``)."""
    return (report.get("task") or {}).get("criteria_from") == "sentences"


def evidence_threshold_source(block: Mapping) -> str:
    """How the sentence model's evidence threshold (``thresholds.evidence``) was chosen, as a phrase."""
    src = block.get("source")
    return EVIDENCE_SOURCES.get(src, f"chosen on the {block.get('split')} split" if block.get("split") else str(src))


def evidence_threshold_f1(block: Mapping) -> float | None:
    """The sentence-level micro F1 at the chosen evidence threshold on the data it was chosen on (its ``grid`` and
    ``f1``); None for a block without them (source fixed)."""
    value = block.get("value")
    pairs = zip(block.get("grid") or [], block.get("f1") or [])
    return next((f for g, f in pairs if value is not None and math.isclose(g, value)), None)


def evidence_threshold_text(block: Mapping | None) -> str:
    """'0.35 (chosen on sentence-level micro F1 over ...)', or 'not stated by this report' without a block."""
    if not block or block.get("value") is None:
        return "not stated by this report"
    return f"{block['value']:g} ({evidence_threshold_source(block)})"


def decisions_text(report: Mapping, aggregation: str | None = None) -> str | None:
    """How the sentence model decides and marks evidence, in one paragraph (the evaluation page and the model card
    say it alike); None for any other model. ``aggregation``: training.sentence_aggregation when the report's
    task does not name it."""
    if not sentence_model(report):
        return None
    agg = report["task"].get("sentence_aggregation") or aggregation or "max"
    how = AGGREGATIONS.get(agg, f"its sentences' aggregated by {agg}")
    evidence = (report.get("thresholds") or {}).get("evidence")
    reading = {
        "alone": " (each sentence encoded on its own, training.sentence_context: alone)",
        "window": " (each sentence read in the post window that holds it, training.sentence_context: window)",
    }.get(report["task"].get("sentence_context"), "")
    return (
        "Decisions and evidence come from the same sentence scores: every sentence of the post the model reads gets "
        f"nine probabilities, one per symptom{reading}; the post's probability of a symptom is "
        f"{how} (training.sentence_aggregation: {agg}), and the symptom is predicted when it is at or above the "
        "symptom's threshold. A predicted symptom's evidence is its sentences whose probability is at or above the "
        f"evidence threshold {evidence_threshold_text(evidence)}, else its single most probable sentence; each "
        "evidence sentence comes with that probability as its score."
    )

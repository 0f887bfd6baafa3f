"""Model selection: score first, latency budget, ties to lower latency, deterministic."""

from __future__ import annotations

import functools
import random

import pytest

from workflow_lib.config import Selection
from workflow_lib.config.keys import digest
from workflow_lib.config.schema import ConfigError
from workflow_lib.persistence.reports import validate_report
from workflow_lib.search import selection
from workflow_lib.search.selection import SelectionError, latency_at

# select as the selection stage calls it, with the CV metric hpo.metric names (macro_f1 in these tests)
select = functools.partial(selection.select, metric="macro_f1")

RULE = Selection.resolve(
    {
        "latency_budget_ms": None,
        "latency_metric": "fixed_shape_p95",
        "latency_batch_size": 1,
        "latency_seq_length": 128,
        "tie_tolerance": 0.0,
        "baseline": True,
    }
)
PER_POST = RULE.replace(latency_metric="per_post_p95")


def _lat(p95):
    return {"mean": p95 * 0.8, "p50": p95 * 0.8, "p95": p95, "p99": p95 * 1.1, "min": p95 * 0.7, "max": p95 * 1.2}


def bench(p95_by_config: dict, post_p95: float | None = None, windows: float = 2.5) -> dict:
    rows = []
    for (b, s), p95 in p95_by_config.items():
        rows.append(
            {
                "batch_size": b,
                "seq_length": s,
                "throughput_per_s": b * 1000.0 / p95,
                "peak_rss_mb": 100.0,
                "latency_ms": _lat(p95),
            }
        )
    out = {"device": "cpu", "threads": 2, "results": rows}
    if post_p95 is not None:
        out["per_post"] = {
            "posts": 64,
            "long_posts": "windows",
            "max_length": 128,
            "latency_ms": _lat(post_p95),
            "windows_per_post": {"mean": windows, "p50": 2.0, "p95": 5.0, "max": 7.0},
        }
    return out


def cand(backbone, score, p95, *, variant=1, tk=None, std=0.02, post_p95=None):
    return {
        "backbone": backbone,
        "study_key": "5" * 12,
        "variant": variant,
        "trial_key": tk or digest([backbone, variant, score]),
        "cv_mean": score,
        "cv_std": std,
        "fold_scores": [score - 0.01, score, score + 0.01],
        "params": {"learning_rate": 1e-4},
        "benchmark": bench({(1, 128): p95, (16, 128): p95 * 6}, post_p95 if post_p95 is not None else p95 * 3),
    }


def finish(report):
    """What the caller adds before writing; the result must satisfy the schema."""
    return validate_report(
        "selection_report",
        {
            **report,
            "selection_key": "abcdefabcdef",
            "lineage": {},
            "code_version": "0.1.0",
            "html": "selection_report.html",
        },
    )


def test_best_score_wins_and_report_is_complete():
    cs = [
        cand("small", 0.50, 5.0, tk="aaaaaaaaaaaa"),
        cand("big", 0.60, 40.0, tk="bbbbbbbbbbbb"),
        cand("mid", 0.55, 15.0, tk="cccccccccccc"),
    ]
    baseline = {
        "name": "tfidf_logreg",
        "metric": "macro_f1",
        "fold_scores": [0.3, 0.31, 0.32],
        "mean": 0.31,
        "std": 0.008,
        "split": "cv heldout folds (train split)",
    }
    r = select(cs, RULE, baselines=[baseline])
    assert r["selected"]["backbone"] == "big"
    assert r["selected"]["latency_p95_ms"] == 40.0
    assert [c["backbone"] for c in r["candidates"]] == ["big", "mid", "small"]
    assert [c["rank"] for c in r["candidates"]] == [1, 2, 3]
    assert [c["selected"] for c in r["candidates"]] == [True, False, False]
    assert all("benchmark" not in c for c in r["candidates"])
    assert r["candidates"][0]["latency_measured_at"] == {"batch_size": 1, "seq_length": 128, "exact": True}
    assert r["baseline"] == baseline and "beats the tfidf_logreg baseline (0.3100) by +0.2900" in r["reason"]
    assert r["split"] == "cv heldout folds (train split)" and r["metric"] == "macro_f1"
    assert r["rule"] == RULE
    finish(r)
    assert "benchmark" in cs[0]  # inputs are not modified


def test_latency_budget_excludes_the_better_but_slower_one():
    cs = [cand("small", 0.50, 5.0), cand("big", 0.60, 40.0), cand("mid", 0.55, 15.0)]
    r = select(cs, RULE.replace(latency_budget_ms=20.0))
    assert r["selected"]["backbone"] == "mid"
    by = {c["backbone"]: c for c in r["candidates"]}
    assert by["big"]["within_budget"] is False and by["big"]["rank"] is None and not by["big"]["selected"]
    assert by["mid"]["rank"] == 1 and by["small"]["rank"] == 2
    assert r["candidates"][-1]["backbone"] == "big"  # excluded ones come last
    assert "Excluded for exceeding the latency budget: big" in r["reason"]
    finish(r)


def test_budget_is_inclusive():
    r = select([cand("a", 0.5, 20.0), cand("b", 0.4, 1.0)], RULE.replace(latency_budget_ms=20.0))
    assert r["selected"]["backbone"] == "a"


def test_ties_within_tolerance_go_to_lower_latency():
    cs = [cand("best", 0.600, 30.0), cand("close", 0.595, 10.0), cand("far", 0.580, 2.0)]
    r = select(cs, RULE.replace(tie_tolerance=0.01))
    assert r["selected"]["backbone"] == "close"
    assert [c["backbone"] for c in r["candidates"]] == ["close", "best", "far"]
    assert "Tied within tolerance 0.01" in r["reason"] and "best" in r["reason"]
    # the candidates tied with the winner are its co-best (the final report scores them too)
    assert [c["backbone"] for c in r["co_best"]] == ["best"]
    assert set(r["co_best"][0]) == {"backbone", "study_key", "variant", "trial_key", "cv_mean"}
    # without tolerance the best score wins outright, with no co-best
    assert select(cs, RULE)["selected"]["backbone"] == "best"
    assert select(cs, RULE)["co_best"] == []
    # exactly equal scores tie even at tolerance 0
    eq = [cand("x", 0.6, 30.0), cand("y", 0.6, 10.0)]
    assert select(eq, RULE)["selected"]["backbone"] == "y"
    assert [c["backbone"] for c in select(eq, RULE)["co_best"]] == ["x"]


def test_equal_score_and_latency_break_by_backbone_then_trial_key():
    cs = [
        cand("zeta", 0.6, 10.0, tk="000000000001"),
        cand("alpha", 0.6, 10.0, tk="ffffffffffff"),
        cand("alpha", 0.6, 10.0, variant=2, tk="000000000002"),
    ]
    r = select(cs, RULE)
    assert (r["selected"]["backbone"], r["selected"]["trial_key"]) == ("alpha", "000000000002")
    assert [c["trial_key"] for c in r["candidates"]] == ["000000000002", "ffffffffffff", "000000000001"]


def test_no_candidate_within_budget_names_budget_fastest_and_fix():
    cs = [cand("big", 0.6, 40.0), cand("mid", 0.55, 15.25)]
    with pytest.raises(SelectionError) as exc:
        select(cs, RULE.replace(latency_budget_ms=5.0))
    msg = str(exc.value)
    assert "5.0 ms" in msg
    assert "mid" in msg and "15.250 ms" in msg
    assert "selection.latency_budget_ms" in msg and "smaller backbone" in msg


def test_deterministic_regardless_of_input_order():
    cs = [cand(f"bb{i % 3}", 0.5 + 0.01 * (i % 4), 5.0 + i, variant=1 + i // 3) for i in range(9)]
    rule = RULE.replace(tie_tolerance=0.015, latency_budget_ms=11.0)
    ref = select(cs, rule)
    for seed in range(5):
        shuffled = cs[:]
        random.Random(seed).shuffle(shuffled)
        assert select(shuffled, rule) == ref


def test_nearest_measured_configuration_is_used_and_reported():
    c = cand("a", 0.6, 7.0)
    c["benchmark"] = bench({(1, 64): 3.0, (1, 256): 9.0, (8, 128): 20.0})
    r = select([c], RULE.replace(latency_batch_size=1, latency_seq_length=200))
    assert r["candidates"][0]["latency_p95_ms"] == 9.0
    assert r["candidates"][0]["latency_measured_at"] == {"batch_size": 1, "seq_length": 256, "exact": False}


def test_latency_at_exact_and_nearest():
    b = bench({(1, 128): 5.0, (16, 128): 30.0, (1, 512): 22.0})
    assert latency_at(b, 1, 128) == (5.0, {"batch_size": 1, "seq_length": 128, "exact": True})
    assert latency_at(b, 12, 128)[1] == {"batch_size": 16, "seq_length": 128, "exact": False}
    assert latency_at(b, 1, 400)[0] == 22.0
    with pytest.raises(ValueError, match="no measured configurations"):
        latency_at({"results": []}, 1, 128)


def test_candidate_problems_are_named():
    with pytest.raises(SelectionError, match="no candidates"):
        select([], RULE)
    bad = cand("a", 0.6, 5.0)
    bad["cv_mean"] = None
    with pytest.raises(SelectionError, match="no CV score"):
        select([bad], RULE)
    nob = cand("a", 0.6, 5.0)
    del nob["benchmark"]
    with pytest.raises(SelectionError, match="no benchmark"):
        select([nob], RULE.replace(latency_budget_ms=10.0))
    r = select([nob, cand("b", 0.5, 5.0)], RULE)  # without a budget an unbenchmarked candidate can still win
    assert r["selected"]["backbone"] == "a" and r["selected"]["latency_p95_ms"] is None
    finish(r)


def test_per_post_p95_is_the_default_and_drives_budget_and_ties(smoke_config):
    # fixed-shape and per-post latencies rank these two the opposite way: long posts cost "fast" more windows
    fast_fixed = cand("fast_fixed", 0.60, 2.0, post_p95=80.0, tk="aaaaaaaaaaaa")
    fast_post = cand("fast_post", 0.60, 9.0, post_p95=30.0, tk="bbbbbbbbbbbb")
    r = select([fast_fixed, fast_post], smoke_config["selection"])  # the schema's defaults
    assert r["rule"]["latency_metric"] == "per_post_p95" and r["rule"] == smoke_config["selection"]
    assert r["selected"]["backbone"] == "fast_post" and r["selected"]["latency_p95_ms"] == 30.0
    by = {c["backbone"]: c for c in r["candidates"]}
    assert by["fast_fixed"]["latency_p95_ms"] == 80.0
    assert by["fast_post"]["latency_measured_at"] == {
        "posts": 64,
        "long_posts": "windows",
        "max_length": 128,
        "windows_per_post_mean": 2.5,
    }
    assert "30.00 ms per post (one predict call per post of the data, all windows)" in r["reason"]
    finish(r)
    # the same candidates on the fixed shape
    r = select([fast_fixed, fast_post], RULE)
    assert r["selected"]["backbone"] == "fast_fixed" and r["rule"]["latency_metric"] == "fixed_shape_p95"
    assert "at batch size 1 x sequence length 128" in r["reason"]
    finish(r)
    # a per-post budget excludes what a fixed-shape budget of the same size keeps
    r = select(
        [cand("slow", 0.7, 2.0, post_p95=80.0), cand("ok", 0.6, 9.0, post_p95=30.0)],
        PER_POST.replace(latency_budget_ms=50.0),
    )
    assert r["selected"]["backbone"] == "ok" and "Excluded for exceeding the latency budget: slow" in r["reason"]
    assert (
        select(
            [cand("slow", 0.7, 2.0, post_p95=80.0), cand("ok", 0.6, 9.0, post_p95=30.0)],
            RULE.replace(latency_budget_ms=50.0),
        )["selected"]["backbone"]
        == "slow"
    )


def test_per_post_budget_errors_name_the_key_and_the_fix():
    with pytest.raises(SelectionError) as exc:
        select(
            [cand("a", 0.6, 1.0, post_p95=40.0), cand("b", 0.5, 1.0, post_p95=25.5)],
            PER_POST.replace(latency_budget_ms=20.0),
        )
    msg = str(exc.value)
    assert "20.0 ms" in msg and "per post" in msg and "selection.latency_metric: per_post_p95" in msg
    assert "b v1" in msg and "25.500 ms" in msg and "selection.latency_budget_ms" in msg
    # a benchmark written before per-post figures existed (benchmark_version 1)
    old = cand("old", 0.6, 5.0)
    del old["benchmark"]["per_post"]
    with pytest.raises(SelectionError) as exc:
        select([old], PER_POST.replace(latency_budget_ms=20.0))
    msg = str(exc.value)
    assert "no per-post figures" in msg and "--forcerun benchmark" in msg
    assert "selection.latency_metric: fixed_shape_p95" in msg
    # without a budget it is unmeasured (ties rank it last), and the fixed shape still reads it
    r = select([old, cand("new", 0.6, 5.0, post_p95=10.0)], PER_POST)
    assert r["selected"]["backbone"] == "new" and r["candidates"][1]["latency_p95_ms"] is None
    finish(r)
    assert select([old], RULE.replace(latency_budget_ms=20.0))["selected"]["latency_p95_ms"] == 5.0
    # a bad rule is refused where it is resolved (select only receives resolved ones), naming its key
    with pytest.raises(ConfigError, match="latency_metric"):
        RULE.replace(latency_metric="p95")


def test_config_schema_defaults_and_names_a_bad_latency_metric(repo):
    from workflow_lib import config

    cfg = config.load(repo / "config" / "config.yaml")
    assert cfg["selection"]["latency_metric"] == "per_post_p95" and cfg["benchmark"]["posts_sample"] == 64
    with pytest.raises(ConfigError, match="selection.latency_metric"):
        config.load(repo / "config" / "config.yaml", overrides={"selection": {"latency_metric": "median"}})
    with pytest.raises(ConfigError, match="benchmark.posts_sample"):
        config.load(repo / "config" / "config.yaml", overrides={"benchmark": {"posts_sample": 0}})


def test_reason_flags_a_model_below_the_baseline():
    baseline = {
        "name": "tfidf_logreg",
        "metric": "macro_f1",
        "fold_scores": [0.7],
        "mean": 0.7,
        "std": 0.0,
        "split": "cv heldout folds (train split)",
    }
    r = select([cand("a", 0.6, 5.0)], RULE, baselines=[baseline])
    assert "does NOT beat the tfidf_logreg baseline" in r["reason"]


# ---------------------------------------------------------------- HTML report
def _summary(backbone, variant, means, states):
    trials = []
    for n, (m, st) in enumerate(zip(means, states)):
        trials.append(
            {
                "number": n,
                "trial_key": f"{n:012x}",
                "state": st,
                "params": {},
                "fold_scores": [m, m] if m is not None else [None, None],
                "mean": m if st == "COMPLETE" else None,
                "std": 0.0 if st == "COMPLETE" else None,
                "reused_folds": 0,
                "duration_s": 1.0,
            }
        )
    return {"backbone": backbone, "variant": variant, "study_key": "5" * 12, "trials": trials}


def test_render_selection_html_table_plots_and_escaping():
    import base64
    import re

    from workflow_lib.shipping.report_html import render_selection_html

    cs = [
        cand("<b>", 0.61, 12.0, tk="aaaaaaaaaaaa"),
        cand("minilm", 0.58, 4.0, tk="bbbbbbbbbbbb"),
        cand("huge", 0.70, 99.0, tk="cccccccccccc"),
    ]
    baseline = {
        "name": "tfidf_logreg",
        "metric": "macro_f1",
        "fold_scores": [0.3, 0.32, 0.31],
        "mean": 0.31,
        "std": 0.008,
        "split": "cv heldout folds (train split)",
    }
    report = finish(select(cs, RULE.replace(latency_budget_ms=50.0), baselines=[baseline]))
    summaries = [
        _summary("<b>", 1, [0.4, 0.55, None, 0.61], ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"]),
        _summary("minilm", 1, [0.5, 0.3, 0.58], ["COMPLETE", "PRUNED", "COMPLETE"]),
    ]
    page = render_selection_html(report, summaries)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # escaping: the raw tag never appears, its escaped form does
    assert "<b>" not in page and "&lt;b&gt;" in page
    # one table row per candidate plus the baseline row (the comparisons table has its own rows)
    rows = re.findall(r"<tr class=\"([^\"]*)\">(.*?)</tr>", page, flags=re.S)
    rows = [r for r in rows if r[0] != "comparison"]
    assert len(rows) == 4
    assert [cls for cls, _ in rows] == ["selected", "", "excluded", "baseline"]
    sel_row = rows[0][1]
    # the CV mean with its t-interval: folds 0.60, 0.61, 0.62 -> 0.61 ± t(0.975, 2) x 0.01 / sqrt(3)
    assert "&lt;b&gt;" in sel_row and "aaaaaaaaaaaa" in sel_row and "0.610 [0.585, 0.635]" in sel_row
    assert "0.6000, 0.6100, 0.6200" in sel_row and "12.00" in sel_row
    assert "huge" in rows[2][1] and ">no<" in rows[2][1]
    assert "tfidf_logreg" in rows[3][1] and "0.3100" in rows[3][1]
    # three inline PNG plots, each a real PNG
    imgs = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert len(imgs) == 3
    assert all(base64.b64decode(b).startswith(b"\x89PNG") for b in imgs)
    assert "http://" not in page and "https://" not in page  # self-contained
    # the reason sentence and the rule are shown (escaped)
    assert "Selected &lt;b&gt; v1" in page and "50.0" in page


def test_render_selection_html_without_studies_or_baseline_still_has_three_plots():
    from workflow_lib.shipping.report_html import render_selection_html

    report = finish(select([cand("solo", 0.5, 3.0)], RULE))
    page = render_selection_html(report, [])
    assert page.count("data:image/png;base64,") == 3
    assert page.count("<tr class=") == 1


def test_trials_tied_inside_a_study_become_candidates():
    from workflow_lib.pipeline.plan import candidates_from_summaries

    best = {
        "number": 0,
        "trial_key": "a" * 12,
        "params": {"lr": 1},
        "mean": 0.6,
        "std": 0.01,
        "fold_scores": [0.6, 0.6],
        "criteria_mean": 0.55,
        "co_best": [
            {
                "number": 3,
                "trial_key": "b" * 12,
                "params": {"lr": 2},
                "mean": 0.6,
                "std": 0.02,
                "fold_scores": [0.59, 0.61],
                "criteria_mean": 0.57,
            }
        ],
    }
    summary = {"backbone": "m", "study_key": "c" * 12, "variant": 1, "best_trial": best}
    cands = candidates_from_summaries([summary, {**summary, "backbone": "n", "best_trial": None}])
    assert [(c["trial_key"], c["cv_criteria_mean"]) for c in cands] == [("a" * 12, 0.55), ("b" * 12, 0.57)]


def test_variants_sharing_a_trial_key_give_one_co_best_entry_per_other_checkpoint():
    # v1..v3 met the same configuration (warm start): one checkpoint, never its own co-best
    same = [cand("tiny", 0.5, 5.0, variant=v, tk="aaaaaaaaaaaa") for v in (1, 2, 3)]
    other = cand("tiny", 0.5, 5.0, variant=2, tk="bbbbbbbbbbbb")
    report = finish(select(same + [other], RULE))
    assert report["selected"]["trial_key"] == "aaaaaaaaaaaa" and report["selected"]["variant"] == 1
    assert [c["trial_key"] for c in report["co_best"]] == ["bbbbbbbbbbbb"]
    assert sorted(c["variant"] for c in report["candidates"]) == [1, 2, 2, 3]


# ---------------------------------------------------------------- how sure: intervals, corrected t-tests, lead
def _base(name, scores):
    return {
        "name": name,
        "metric": "macro_f1",
        "fold_scores": scores,
        "mean": sum(scores) / len(scores),
        "std": 0.01,
        "split": "cv heldout folds (train split)",
    }


def _scored(backbone, scores, tk, variant=1):
    c = cand(backbone, sum(scores) / len(scores), 5.0, tk=tk, variant=variant)
    c["fold_scores"] = scores
    return c


def test_cv_intervals_comparisons_and_the_winners_lead():
    from workflow_lib.learning.uncertainty import corrected_resampled_ttest, cv_summary

    a = _scored("a", [0.58, 0.60, 0.63], "aaaaaaaaaaaa")
    a2 = _scored("a", [0.58, 0.60, 0.63], "aaaaaaaaaaaa", variant=2)  # the same trial met by another variant
    b = _scored("b", [0.50, 0.49, 0.52], "bbbbbbbbbbbb")
    posts, sentences = _base("tfidf_logreg", [0.30, 0.31, 0.29]), _base("tfidf_logreg_sentences", [0.50, 0.62, 0.55])
    r = finish(select([b, a2, a], RULE, baselines=[posts, sentences], fold_sizes=(200.0, 100.0)))

    assert all(c["cv_interval"] == cv_summary(c["fold_scores"]) for c in r["candidates"])
    assert [x["cv_interval"] for x in r["baselines"]] == [
        cv_summary(posts["fold_scores"]),
        cv_summary(sentences["fold_scores"]),
    ]
    # "the baseline" is the best one; the reason says so
    assert r["baseline"] == sentences and [x["name"] for x in r["baselines"]] == [
        "tfidf_logreg",
        "tfidf_logreg_sentences",
    ]
    assert "beats the tfidf_logreg_sentences baseline (0.5567) (the best of 2 baselines)" in r["reason"]
    assert r["fold_sizes"] == {"n_train": 200.0, "n_test": 100.0, "source": "mean fold sizes of the data card"}

    # one pair of trial keys (the variants share one), then each candidate against each baseline
    pairs = [(c["a"], c["b"]) for c in r["comparisons"]]
    assert pairs == [
        ("aaaaaaaaaaaa", "bbbbbbbbbbbb"),
        ("aaaaaaaaaaaa", "baseline:tfidf_logreg"),
        ("aaaaaaaaaaaa", "baseline:tfidf_logreg_sentences"),
        ("bbbbbbbbbbbb", "baseline:tfidf_logreg"),
        ("bbbbbbbbbbbb", "baseline:tfidf_logreg_sentences"),
    ]
    ab = r["comparisons"][0]
    assert ab["fold_differences"] == pytest.approx([0.08, 0.11, 0.11])
    assert ab["test"] == corrected_resampled_ttest(a["fold_scores"], b["fold_scores"], n_train=200.0, n_test=100.0)
    assert ab["test"]["correction"] == pytest.approx(1 / 3 + 0.5)
    assert {c["metric"] for c in r["comparisons"]} == {"macro_f1"}

    lead = r["winner_lead"]
    assert lead["runner_up"] == "bbbbbbbbbbbb"
    assert lead["p_one_sided"] == ab["test"]["p_one_sided"] and lead["more_than_noise"] is (lead["p_one_sided"] < 0.05)
    vs = next(c for c in r["comparisons"] if c["b"] == "baseline:tfidf_logreg_sentences" and c["a"] == "aaaaaaaaaaaa")
    assert lead["vs_baseline"]["baseline"] == "tfidf_logreg_sentences"
    assert lead["vs_baseline"]["p_one_sided"] == vs["test"]["p_one_sided"]
    assert "The selected a v" in lead["text"] and "runner-up b v1" in lead["text"]
    assert "Against the best baseline, tfidf_logreg_sentences" in lead["text"]


def test_baselines_are_compared_on_the_criteria_metric_alone():
    # an objective weighing evidence: the candidate's criteria fold scores meet the baselines, never its objective
    a = _scored("a", [0.70, 0.72], "aaaaaaaaaaaa")
    a["cv_criteria_fold_scores"] = [0.40, 0.44]
    b = _scored("b", [0.60, 0.61], "bbbbbbbbbbbb")  # no criteria scores (an older summary): no baseline comparison
    posts = _base("tfidf_logreg", [0.30, 0.31])
    r = finish(select([a, b], RULE, baselines=[posts], objective="0.5 x macro_f1 + 0.5 x evidence token_f1"))
    by = {(c["a"], c["b"]): c for c in r["comparisons"]}
    assert set(by) == {("aaaaaaaaaaaa", "bbbbbbbbbbbb"), ("aaaaaaaaaaaa", "baseline:tfidf_logreg")}
    assert by[("aaaaaaaaaaaa", "baseline:tfidf_logreg")]["fold_differences"] == pytest.approx([0.10, 0.13])
    assert by[("aaaaaaaaaaaa", "baseline:tfidf_logreg")]["metric"] == "macro_f1"
    assert by[("aaaaaaaaaaaa", "bbbbbbbbbbbb")]["metric"] == "0.5 x macro_f1 + 0.5 x evidence token_f1"
    # criteria alone (the default objective): the fold scores are the criteria scores
    r = finish(select([b], RULE, baselines=[posts]))
    assert r["comparisons"][0]["fold_differences"] == pytest.approx([0.30, 0.30])


def test_without_fold_sizes_equal_folds_are_assumed_and_a_lone_winner_has_no_runner_up():
    solo = _scored("solo", [0.5, 0.6, 0.55], "aaaaaaaaaaaa")
    r = finish(select([solo], RULE))
    assert r["fold_sizes"]["n_test"] / r["fold_sizes"]["n_train"] == pytest.approx(1 / 2)
    assert "equal folds assumed" in r["fold_sizes"]["source"]
    assert r["comparisons"] == [] and r["baseline"] is None and r["baselines"] == []
    lead = r["winner_lead"]
    assert lead["runner_up"] is None and lead["p_one_sided"] is None and lead["vs_baseline"] is None
    assert "only candidate" in lead["text"]
    # fold differences all equal: the t-test is undefined, and the sentence says so
    solo = _scored("solo", [0.5, 0.75, 0.625], "aaaaaaaaaaaa")
    twin = _scored("twin", [0.25, 0.5, 0.375], "bbbbbbbbbbbb")  # exactly 0.25 below in every fold
    lead = finish(select([solo, twin], RULE))["winner_lead"]
    assert lead["runner_up"] == "bbbbbbbbbbbb" and lead["p_one_sided"] is None and lead["more_than_noise"] is None
    assert "t-test is undefined" in lead["text"]


def test_fold_sizes_of_a_data_card():
    from workflow_lib.pipeline.stages import fold_sizes

    card = {"counts": {"folds": [{"train": 100, "heldout": 50}, {"train": 101, "heldout": 49}]}}
    assert fold_sizes(card) == (100.5, 49.5)


def test_the_lead_sentence_says_ahead_within_noise_or_behind():
    a = _scored("a", [0.60, 0.61, 0.62], "aaaaaaaaaaaa")
    b = _scored("b", [0.30, 0.32, 0.31], "bbbbbbbbbbbb")
    strong = _base("tfidf_logreg_sentences", [0.80, 0.83, 0.79])
    lead = finish(select([a, b], RULE, baselines=[strong], fold_sizes=(200.0, 100.0)))["winner_lead"]
    assert lead["more_than_noise"] is True and "ahead by more than noise at the 5% level" in lead["text"]
    assert lead["vs_baseline"]["more_than_noise"] is False and "tfidf_logreg_sentences: -0.1967" in lead["text"]
    assert lead["text"].endswith("not ahead).")
    close = _scored("c", [0.58, 0.63, 0.60], "cccccccccccc")
    lead = finish(select([a, close], RULE))["winner_lead"]
    assert lead["more_than_noise"] is False and "ahead, but within noise" in lead["text"]

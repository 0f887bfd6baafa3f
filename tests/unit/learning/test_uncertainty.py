"""Intervals, paired comparisons, CV tests, threshold selection and calibration (learning.uncertainty)."""

from __future__ import annotations

import builtins
import json
import math
import time

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score

from workflow_lib.learning import uncertainty as unc
from workflow_lib.learning.metrics import multilabel_metrics, paper_metrics, score
from workflow_lib.symptoms import SYMPTOMS


def _data(n=300, seed=0, rare=None):
    """y (n, 9) and probabilities informative about it; ``rare``: label index -> exact positives."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 9)) < rng.uniform(0.05, 0.4, 9)).astype(int)
    for j, k in (rare or {}).items():
        y[:, j] = 0
        y[rng.choice(n, size=k, replace=False), j] = 1
    p = np.clip(0.3 * y + rng.random((n, 9)) * 0.7, 0, 1)
    return y, p


def _json(obj):
    return json.loads(json.dumps(obj, allow_nan=False))


# ------------------------------------------------------------------------------------------------ resampling


def test_resamples_are_seeded_and_counts_match_indices():
    a, b = unc.resample_indices(50, 20, seed=3), unc.resample_indices(50, 20, seed=3)
    assert a.shape == (20, 50) and (a == b).all()
    assert not (a == unc.resample_indices(50, 20, seed=4)).all()
    counts = unc.resample_counts(a, 50)
    assert counts.shape == (20, 50) and (counts.sum(axis=1) == 50).all()
    for row, c in zip(a, counts):
        assert (np.bincount(row, minlength=50) == c).all()
    with pytest.raises(ValueError, match="no rows"):
        unc.resample_indices(0, 10)
    with pytest.raises(ValueError, match="evaluation.bootstrap"):
        unc.resample_indices(10, 0)


# ------------------------------------------------------------------------------------------------ generic


def test_bootstrap_interval_of_a_mean_matches_the_normal_interval():
    # closed form: the mean of n normal draws has standard error sd/sqrt(n); the 95% percentile
    # interval should sit at mean ± 1.96·se. Tolerance: 10% of that half-width (the Monte-Carlo error of a
    # 2.5% quantile from 4000 resamples is ~2% of it; the percentile bootstrap's own bias is smaller still).
    x = np.random.default_rng(7).normal(10.0, 2.0, size=400)
    ci = unc.bootstrap_ci(np.mean, x, n_resamples=4000, seed=1)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert ci["estimate"] == pytest.approx(x.mean())
    assert ci["low"] == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert ci["high"] == pytest.approx(x.mean() + half, abs=0.1 * half)
    assert ci["n_undefined"] == 0
    again = unc.bootstrap_ci(np.mean, x, n_resamples=4000, seed=1)
    assert again == ci  # seeded: the same numbers
    assert unc.bootstrap_ci(np.mean, x, n_resamples=4000, seed=2)["low"] != ci["low"]


def test_bootstrap_ci_pairs_rows_returns_dicts_and_counts_undefined():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    x = np.arange(10.0)

    def metric(yy, xx):
        return {"mean_x": float(xx.mean()), "x_of_positive": float(xx[yy == 1].mean()) if yy.any() else None}

    out = unc.bootstrap_ci(metric, y, x, n_resamples=500, seed=0)
    assert set(out) == {"mean_x", "x_of_positive"}
    # the positive (row 0, x = 0) travels with its row: whenever drawn, x_of_positive is exactly 0
    assert out["x_of_positive"]["estimate"] == 0.0
    assert out["x_of_positive"]["low"] == out["x_of_positive"]["high"] == 0.0
    drawn = (unc.resample_indices(10, 500, seed=0) == 0).any(axis=1)
    assert out["x_of_positive"]["n_undefined"] == int((~drawn).sum()) > 0
    assert out["mean_x"]["n_undefined"] == 0
    with pytest.raises(ValueError, match="share their first dimension"):
        unc.bootstrap_ci(metric, y, x[:5])


# ------------------------------------------------------------------------------------------------ criteria


def test_criteria_estimates_equal_the_point_metrics():
    y, p = _data(120, seed=1)
    thr = [0.3, 0.4, 0.5, 0.6, 0.7, 0.2, 0.5, 0.45, 0.55]
    ci = unc.criteria_intervals(y, p, thr, n_resamples=200, seed=0)
    m, paper = multilabel_metrics(y, p, thr), paper_metrics(y, p, thr)
    assert ci["macro_f1"]["estimate"] == pytest.approx(m["macro_f1"])
    assert ci["micro_f1"]["estimate"] == pytest.approx(m["micro_f1"])
    for key in ("macro_f1", "micro_f1", "weighted_f1", "exact_match"):
        assert ci["paper"][key]["estimate"] == pytest.approx(paper[key])
    for name in SYMPTOMS:
        s = ci["per_symptom"][name]
        assert s["f1"]["estimate"] == pytest.approx(m["per_symptom"][name]["f1"])
        assert s["pr_auc"]["estimate"] == pytest.approx(m["per_symptom"][name]["pr_auc"])
        assert s["n_positives"] == m["per_symptom"][name]["support"]
        assert s["f1"]["low"] <= s["f1"]["estimate"] <= s["f1"]["high"]
    assert ci["thresholds"] == thr and ci["n_posts"] == 120
    assert ci["bootstrap"] == {
        "method": unc.METHOD,
        "n_resamples": 200,
        "seed": 0,
        "alpha": 0.05,
        "level": 0.95,
    }
    assert _json(ci) == ci


def test_vectorised_intervals_equal_the_generic_loop_on_the_same_resamples():
    y, p = _data(80, seed=2)
    ci = unc.criteria_intervals(y, p, 0.5, n_resamples=300, seed=5)
    for metric in ("macro_f1", "micro_f1"):
        loop = unc.bootstrap_ci(lambda a, b, m=metric: score(a, b, m), y, p, n_resamples=300, seed=5)
        assert loop["estimate"] == pytest.approx(ci[metric]["estimate"])
        assert loop["low"] == pytest.approx(ci[metric]["low"])
        assert loop["high"] == pytest.approx(ci[metric]["high"])
    paper = unc.bootstrap_ci(lambda a, b: paper_metrics(a, b)["weighted_f1"], y, p, n_resamples=300, seed=5)
    assert paper["low"] == pytest.approx(ci["paper"]["weighted_f1"]["low"])
    assert paper["high"] == pytest.approx(ci["paper"]["weighted_f1"]["high"])


def test_resampled_average_precision_equals_scikit_learn_with_ties():
    y, p = _data(60, seed=3, rare={8: 2})
    p[:20, 0] = 0.5  # a block of tied scores
    idx = unc.resample_indices(60, 40, seed=0)
    w = unc.resample_counts(idx, 60)
    for j in (0, 3, 8):
        got = unc.resampled_average_precision(w, y[:, j], p[:, j])
        want = [average_precision_score(y[i, j], p[i, j]) if y[i, j].any() else np.nan for i in idx]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.isnan(got).any()  # label 8 has 2 positives in 60 posts: some resamples miss both


def test_rare_symptom_pr_auc_undefined_resamples_are_counted_and_flagged():
    y, p = _data(90, seed=4, rare={4: 2})
    ci = unc.criteria_intervals(y, p, n_resamples=1000, seed=0)
    s = ci["per_symptom"]["PSYCHOMOTOR"]
    idx = unc.resample_indices(90, 1000, seed=0)
    missing = int(sum(not y[row, 4].any() for row in idx))
    assert s["pr_auc"]["n_undefined"] == s["resamples_without_positive"] == missing
    # P(no positive drawn) = (88/90)^90 ~ 0.13: 130 of 1000, give or take binomial noise
    assert 90 < missing < 175
    assert s["n_positives"] == 2 and s["few_positives"] is True
    assert s["f1"]["n_undefined"] == 0  # F1 is defined there (0, zero_division=0)
    assert ci["per_symptom"]["COGNITIVE_ISSUES"]["pr_auc"]["n_undefined"] == 0


def test_criteria_intervals_are_fast_enough_for_2000_resamples():
    y, p = _data(300, seed=5)
    t0 = time.perf_counter()
    unc.criteria_intervals(y, p, n_resamples=2000, seed=0)
    assert time.perf_counter() - t0 < 8.0  # ~1.3 s on the 2-core dev machine


# ------------------------------------------------------------------------------------------------ evidence


def test_mean_intervals_resample_posts_not_examples():
    rng = np.random.default_rng(0)
    per_post = {"char_f1": rng.random(40), "exact_match": (rng.random(40) < 0.4).astype(float)}
    alone = unc.mean_intervals(per_post, n_resamples=500, seed=2)
    assert alone["char_f1"]["estimate"] == pytest.approx(per_post["char_f1"].mean())
    assert alone["n_examples"] == alone["n_posts"] == 40
    # every post contributes three identical examples: resampling posts gives exactly the same interval
    tripled = {k: np.repeat(v, 3) for k, v in per_post.items()}
    grouped = unc.mean_intervals(tripled, np.repeat(np.arange(40), 3), n_resamples=500, seed=2)
    assert grouped["n_examples"] == 120 and grouped["n_posts"] == 40
    for k in per_post:
        assert grouped[k]["low"] == pytest.approx(alone[k]["low"])
        assert grouped[k]["high"] == pytest.approx(alone[k]["high"])
    # as if the 120 examples were independent posts: a narrower (wrong) interval
    naive = unc.mean_intervals(tripled, n_resamples=500, seed=2)
    assert naive["char_f1"]["high"] - naive["char_f1"]["low"] < 0.8 * (
        grouped["char_f1"]["high"] - grouped["char_f1"]["low"]
    )


def test_mean_intervals_reject_bad_input():
    with pytest.raises(ValueError, match="contribution 'char_f1' of example 1"):
        unc.mean_intervals({"char_f1": [0.5, float("nan")]})
    with pytest.raises(ValueError, match="same length"):
        unc.mean_intervals({"a": [1.0, 0.0], "b": [1.0]})
    with pytest.raises(ValueError, match="one post per example"):
        unc.mean_intervals({"a": [1.0, 0.0]}, post_ids=["x"])


# ------------------------------------------------------------------------------------------------ comparisons


def test_paired_difference_of_identical_predictions_is_zero_with_p_one():
    y, p = _data(90, seed=6)
    out = unc.paired_bootstrap_difference(y, p, p.copy(), n_resamples=500, seed=0)
    assert out["difference"] == {"estimate": 0.0, "low": 0.0, "high": 0.0, "n_undefined": 0}
    assert out["p_value"] == 1.0
    assert out["model"] == out["baseline"] == pytest.approx(multilabel_metrics(y, p)["macro_f1"])
    assert _json(out) == out


def test_paired_difference_finds_a_clearly_better_model():
    y, p = _data(90, seed=7)
    rng = np.random.default_rng(1)
    noise = rng.random(y.shape)
    out = unc.paired_bootstrap_difference(y, y.astype(float), noise, n_resamples=999, seed=0)
    want = multilabel_metrics(y, y)["macro_f1"] - multilabel_metrics(y, noise)["macro_f1"]
    assert out["difference"]["estimate"] == pytest.approx(want)
    assert out["difference"]["low"] > 0.3
    assert out["p_value"] == pytest.approx(1 / 1000)  # no resample at or below 0: the +1 correction
    micro = unc.paired_bootstrap_difference(
        y, p, noise, thresholds_model=[0.4] * 9, metric="micro_f1", n_resamples=200, seed=0
    )
    assert micro["model"] == pytest.approx(multilabel_metrics(y, p, 0.4)["micro_f1"])
    with pytest.raises(ValueError, match="not supported"):
        unc.paired_bootstrap_difference(y, p, noise, metric="accuracy")


def test_cv_summary_worked_example():
    # scores 0.70 0.74 0.72 0.76 0.68: mean 0.72; deviations -.02 .02 0 .04 -.04, squares sum 0.0040,
    # sd = sqrt(0.0040/4) = 0.0316228; t(0.975, 4) = 2.776445; half-width 2.776445·0.0316228/sqrt(5) = 0.0392649
    out = unc.cv_summary([0.70, 0.74, 0.72, 0.76, 0.68])
    assert out["k"] == 5 and out["df"] == 4
    assert out["mean"] == pytest.approx(0.72)
    assert out["sd"] == pytest.approx(0.0316228, abs=1e-7)
    assert out["low"] == pytest.approx(0.72 - 0.0392649, abs=1e-6)
    assert out["high"] == pytest.approx(0.72 + 0.0392649, abs=1e-6)
    one = unc.cv_summary([0.7])
    assert one["mean"] == 0.7 and one["sd"] is None and one["low"] is None
    with pytest.raises(ValueError, match="at least one"):
        unc.cv_summary([])


def test_corrected_resampled_ttest_worked_example():
    a = [0.80, 0.78, 0.75, 0.82, 0.79]
    b = [0.78, 0.73, 0.76, 0.78, 0.76]
    # d = .02 .05 -.01 .04 .03; mean 0.026; deviations -.006 .024 -.036 .014 .004;
    # squares .000036 .000576 .001296 .000196 .000016 sum .00212; var(ddof=1) = .00053
    # correction 1/5 + 200/800 = 0.45; t = 0.026 / sqrt(0.45 · 0.00053) = 0.026 / 0.0154434 = 1.683562
    # p (df 4, closed form F(x) = 1/2 + 3/8 · x/sqrt(1+x²/4) · (1 - x²/(12(1+x²/4)))): one-sided 0.083777
    out = unc.corrected_resampled_ttest(a, b, n_train=800, n_test=200)
    assert out["k"] == 5 and out["df"] == 4
    assert out["mean_difference"] == pytest.approx(0.026)
    assert out["sd_difference"] ** 2 == pytest.approx(0.00053)
    assert out["correction"] == pytest.approx(0.45)
    assert out["t"] == pytest.approx(1.683562, abs=1e-6)
    assert out["p_one_sided"] == pytest.approx(0.083777, abs=1e-6)
    assert out["p_two_sided"] == pytest.approx(0.167553, abs=1e-6)
    # the plain paired t-test (t = 0.026 / sqrt(0.00053/5) = 2.525343) is less conservative
    plain = stats.ttest_rel(a, b)
    assert out["t_uncorrected"] == pytest.approx(plain.statistic)
    assert plain.statistic == pytest.approx(2.525343, abs=1e-6)
    assert abs(out["t"]) < abs(plain.statistic) and out["p_two_sided"] > plain.pvalue


def test_corrected_ttest_edge_cases():
    same = unc.corrected_resampled_ttest([0.5, 0.6, 0.7], [0.4, 0.5, 0.6], n_train=100, n_test=50)
    assert same["mean_difference"] == pytest.approx(0.1) and same["t"] is None and same["p_two_sided"] is None
    with pytest.raises(ValueError, match="same k >= 2 folds"):
        unc.corrected_resampled_ttest([0.5, 0.6], [0.5], n_train=10, n_test=5)
    with pytest.raises(ValueError, match="positive post counts"):
        unc.corrected_resampled_ttest([0.5, 0.6], [0.5, 0.4], n_train=0, n_test=5)


# ------------------------------------------------------------------------------------------------ thresholds


def _calibrated(n, shift, seed):
    """Probabilities q ~ U(0,1), labels ~ Bernoulli(q), scores q + shift (clipped).

    For calibrated q the F1-optimal threshold is (3 - sqrt(5))/2 = 0.382 (population F1 0.764):
    shift +0.118 puts the optimum of the scores at 0.5 (tuning can only find noise), shift -0.3 puts
    it at 0.082 (F1 at 0.5 is then 0.514: tuning clearly helps).
    """
    rng = np.random.default_rng(seed)
    q = rng.random((n, 9))
    return (rng.random((n, 9)) < q).astype(int), np.clip(q + shift, 0, 1)


def test_thresholds_are_adopted_where_the_best_threshold_clearly_differs():
    y, p = _calibrated(300, -0.3, seed=0)
    out = unc.select_thresholds(y, p, n_resamples=500, seed=0)
    for name in SYMPTOMS:
        s = out["per_symptom"][name]
        assert s["adopted"] is True, (name, s)
        assert s["threshold"] == s["tuned_threshold"] < 0.3
        assert s["gain"]["low"] > 0 and s["f1_cross_fitted"] > s["f1_at_0.5"] + 0.1
        assert s["n_positives"] == int(y[:, SYMPTOMS.index(name)].sum()) and s["n_folds"] == 5
    assert out["thresholds"] == [out["per_symptom"][s]["threshold"] for s in SYMPTOMS]
    assert _json(out) == out


def test_thresholds_keep_half_when_tuning_only_finds_noise():
    y, p = _calibrated(300, 0.118, seed=1)
    out = unc.select_thresholds(y, p, n_resamples=500, seed=0)
    per = out["per_symptom"].values()
    assert all(not s["adopted"] and s["threshold"] == 0.5 for s in per)
    assert out["thresholds"] == [0.5] * 9
    # the search itself did find other thresholds and an in-sample gain: the rule is what kept 0.5
    assert sum(s["tuned_threshold"] != 0.5 for s in per) >= 6
    assert all(s["apparent_gain"] >= 0 for s in per) and max(s["apparent_gain"] for s in per) > 0.01
    assert all(s["gain"]["low"] <= 0 for s in per)


def test_thresholds_rare_symptom_keeps_half_and_rule_text():
    y, p = _calibrated(100, -0.3, seed=2)
    y[:, 2] = 0
    y[7, 2] = 1
    out = unc.select_thresholds(y, p, n_resamples=100, seed=3, n_folds=4)
    s = out["per_symptom"]["APPETITE_CHANGE"]
    assert s["threshold"] == 0.5 and s["adopted"] is False and s["n_positives"] == 1 and s["n_folds"] == 1
    assert s["gain"]["estimate"] is None and s["f1_cross_fitted"] is None and "fewer than 2" in s["reason"]
    assert out["rule"] == unc.threshold_rule(4, 100, 3, 0.05)
    for part in ("0.5", "4 folds", "100 resamples", "seed 3", "95% paired", "lower end"):
        assert part in out["rule"]


def test_thresholds_read_nothing_but_their_arrays(monkeypatch, tmp_path):
    y, p = _calibrated(150, -0.2, seed=4)
    y0, p0 = y.copy(), p.copy()
    first = unc.select_thresholds(y, p, n_resamples=200, seed=9)

    def no_files(*args, **kwargs):
        raise AssertionError(f"select_thresholds opened a file: {args[:1]}")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(builtins, "open", no_files)
    np.random.seed(12345)  # the global random state must not matter
    second = unc.select_thresholds(y, p, n_resamples=200, seed=9)
    monkeypatch.undo()
    assert second == first
    assert (y == y0).all() and (p == p0).all()  # inputs untouched
    assert unc.select_thresholds(y, p, n_resamples=200, seed=10)["per_symptom"] != first["per_symptom"]


# ------------------------------------------------------------------------------------------------ calibration


def test_calibration_hand_computed():
    y = np.array([[0], [1], [1], [0]])
    p = np.array([[0.10], [0.35], [0.80], [0.95]])
    out = unc.calibration(y, p, n_bins=2, label_names=["a"])
    # Brier: (0.01 + 0.4225 + 0.04 + 0.9025) / 4 = 0.34375
    # bins [0, .5): p .10 .35 -> mean .225, observed 1/2; [.5, 1]: .80 .95 -> mean .875, observed 1/2
    # ECE = 2/4·|.225 - .5| + 2/4·|.875 - .5| = .1375 + .1875 = .325
    a = out["per_symptom"]["a"]
    assert a["brier"] == pytest.approx(0.34375)
    assert a["ece"] == pytest.approx(0.325)
    assert a["bins"] == [
        {"lower": 0.0, "upper": 0.5, "count": 2, "mean_predicted": pytest.approx(0.225), "observed_frequency": 0.5},
        {"lower": 0.5, "upper": 1.0, "count": 2, "mean_predicted": pytest.approx(0.875), "observed_frequency": 0.5},
    ]
    assert out["brier"] == pytest.approx(0.34375) and out["ece"] == pytest.approx(0.325) and out["n_bins"] == 2


def test_calibration_bins_edges_and_averages():
    y = np.array([[1, 0], [0, 0], [1, 1], [0, 1]])
    p = np.array([[1.0, 0.05], [0.5, 0.0], [0.55, 0.95], [0.0, 0.99]])
    out = unc.calibration(y, p, label_names=["a", "b"])
    bins = out["per_symptom"]["a"]["bins"]
    assert out["n_bins"] == 10 and len(bins) == 10
    assert bins[9]["count"] == 1 and bins[9]["mean_predicted"] == 1.0  # p = 1 goes to the last bin
    assert bins[5]["count"] == 2  # 0.5 and 0.55: bin [0.5, 0.6)
    assert bins[0]["count"] == 1 and bins[3]["count"] == 0 and bins[3]["mean_predicted"] is None
    # label a: Brier (0 + .25 + .2025 + 0)/4 = .113125; ECE = 2/4·|.525 - .5| = .0125
    assert out["per_symptom"]["a"]["brier"] == pytest.approx(0.113125)
    assert out["per_symptom"]["a"]["ece"] == pytest.approx(0.0125)
    # label b: Brier (.0025 + 0 + .0025 + .0001)/4 = .001275; ECE = (.05 + 0 + .05 + .01)/4 = .0275
    assert out["per_symptom"]["b"]["ece"] == pytest.approx(0.0275)
    assert out["brier"] == pytest.approx((0.113125 + 0.001275) / 2)
    assert out["ece"] == pytest.approx((0.0125 + 0.0275) / 2)
    assert _json(out) == out
    with pytest.raises(ValueError, match="n_bins"):
        unc.calibration(y, p, n_bins=0, label_names=["a", "b"])


# ------------------------------------------------------------------------------------------------ few positives


def test_few_positives_flags_below_the_minimum():
    y = np.zeros((90, 9), dtype=int)
    y[:4, 0] = 1
    y[:5, 1] = 1
    y[:30, 2] = 1
    out = unc.few_positives(y)
    assert out["DEPRESSED_MOOD"] == {"n_positives": 4, "few_positives": True}
    assert out["ANHEDONIA"] == {"n_positives": 5, "few_positives": False}
    assert out["FATIGUE"] == {"n_positives": 0, "few_positives": True}
    assert unc.few_positives(y, min_positives=31)["APPETITE_CHANGE"]["few_positives"] is True
    assert list(out) == list(SYMPTOMS)
    with pytest.raises(ValueError, match=r"\(n_posts, 9\)"):
        unc.few_positives(y[:, :3])

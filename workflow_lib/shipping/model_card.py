"""The model card (README.md inside the final model folder), in the Hugging Face layout.

huggingface_hub's ModelCard renders it from templates/model_card.md.j2: YAML front matter from a
ModelCardData (language, license, tags, datasets, metrics and a ``model-index`` whose eval results are the
test numbers), then Markdown sections: what the model predicts, intended and out-of-scope use, training
data, every metric with the split it was computed on, the weakest symptoms, the decision thresholds,
limitations, how to use it, and its lineage. This module turns the reports into the template's values
(numbers formatted, table rows built); the template holds the prose. With the uncertainty fields of a
report_version 3 report the card also gives the test figures' intervals and few-positive flags, the threshold rule,
the model against each baseline, the paper's definitions with the published rows, and a calibration summary
(each optional: a report without them gives the card of before); the model-index keeps the point estimates. For
the sentence model (``task.criteria_from: sentences``) it says how its decisions and its evidence come from the
same sentence scores (report_text.decisions_text), the evidence threshold (how and where it was chosen, the rule)
and the sentence-level test metrics.

Everything comes from the evaluation report and the data card the pipeline wrote; the card states
nothing the reports do not hold, and nothing that changes between two writes of the same model (no
creation time): the card is a file of the model folder, whose manifest digest the reports compare.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow_lib.config import Encoder, Training
from workflow_lib.persistence.paths import Layout
from workflow_lib.shipping import report_text
from workflow_lib.symptoms import SYMPTOMS

TEMPLATE = Path(__file__).with_name("templates") / "model_card.md.j2"
TAGS = (
    "text-classification",
    "multi-label-classification",
    "mental-health",
    "depression",
    "dsm-5",
    "redsm5",
    "reddit",
    "research-only",
    "not-for-diagnosis",
)
LICENSE_DETAILS = (
    "No license has been chosen for these weights; the license of the training data "
    "(ReDSM5 and its Reddit posts) also applies. Ask the data owners before any reuse."
)
EVIDENCE_METRICS = ("token_f1", "char_f1", "exact_match", "null_span_accuracy")
TEST_METRICS = (
    ("macro_f1", "macro F1"),
    ("micro_f1", "micro F1"),
    ("macro_precision", "macro precision"),
    ("macro_recall", "macro recall"),
    ("accuracy", "subset accuracy"),
)
TRAINING_SETTINGS = ("head", "pooling", "loss", "finetune", "freeze_layers", "learning_rate", "batch_size")
# thresholds.source -> how the card's prose says where they came from (a report of older code: tuned on its split)
CHOSEN = {"oof": "chosen on the out-of-fold predictions of the train split", "fixed": "fixed at 0.5"}


def _f(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    return f"{x:.{digits}f}"


def _ci(x: Any, iv: Mapping | None, digits: int = 4) -> str:
    """A figure with its interval when the report gives one ('0.552 [0.471, 0.630]'), else :func:`_f`."""
    return report_text.interval(iv, missing="n/a") or _f(x, digits)


def _share(n: int, of: int, what: str) -> str:
    """'12 of 80 evidence sentences (15.0%)'."""
    return f"{n} of {of} {what} ({100 * (n / of if of else 0.0):.1f}%)"


# ---------------------------------------------------------------------------------------- front matter
def dataset_name(data_card: Mapping) -> str:
    """A short name of the data source: the hub id, or what kind of local/embedded data it is."""
    src = data_card.get("source") or {}
    kind = src.get("kind")
    if kind == "hub":
        return str(src.get("id"))
    if kind == "embedded":
        return "redsm5-embedded-synthetic"
    return "redsm5-format-local"


def eval_results(report: Mapping, data_card: Mapping) -> list:
    """The test numbers as huggingface_hub EvalResults (the card's ``model-index``): the symptom task, and
    the evidence task when the model has one."""
    from huggingface_hub import EvalResult

    test, at05 = report["metrics"]["test"], report["metrics"]["test_at_0.5"]
    hub = (data_card.get("source") or {}).get("kind") == "hub"
    dataset = {
        "dataset_name": "ReDSM5" if hub else f"ReDSM5-format data ({dataset_name(data_card)})",
        "dataset_type": dataset_name(data_card),
        "dataset_split": "test",
    }
    symptoms = {"task_type": "text-classification", "task_name": "DSM-5 symptom detection (multi-label, 9 symptoms)"}
    origin = report_text.threshold_origin(report["thresholds"])
    metrics = [
        ("f1", f"macro F1 (test, thresholds {origin})", test["macro_f1"]),
        ("f1", f"micro F1 (test, thresholds {origin})", test["micro_f1"]),
        ("f1", "macro F1 (test, threshold 0.5)", at05["macro_f1"]),
        ("accuracy", "subset accuracy (test, tuned thresholds)", test["accuracy"]),
    ]
    if test.get("macro_pr_auc") is not None:
        metrics.append(("average_precision", "macro PR-AUC (test)", test["macro_pr_auc"]))
    out = [
        EvalResult(**symptoms, **dataset, metric_type=t, metric_name=n, metric_value=round(v, 4)) for t, n, v in metrics
    ]
    ev = report["metrics"].get("evidence")
    if ev:
        spans = {"task_type": "token-classification", "task_name": "evidence span extraction"}
        out += [
            EvalResult(
                **spans,
                **dataset,
                metric_type=k,
                metric_name=f"evidence {k} (test)",
                metric_value=round(float(ev[k]), 4),
            )
            for k in EVIDENCE_METRICS
        ]
    return out


def card_data(report: Mapping, data_card: Mapping, name: str):
    """The card's front matter as a huggingface_hub ModelCardData (``name``: the model-index's model name)."""
    from huggingface_hub import ModelCardData

    tags = list(TAGS)
    if report["task"]["evidence_task"] or report_text.sentence_model(report):
        tags.insert(2, "evidence-extraction")
    return ModelCardData(
        language=["en"],
        license="other",
        license_name="unknown",
        license_details=LICENSE_DETAILS,
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=tags,
        datasets=[dataset_name(data_card)],
        metrics=["f1", "precision", "recall", "average_precision", "accuracy"],
        model_name=name,
        eval_results=eval_results(report, data_card),
    )


# ---------------------------------------------------------------------------------------- body values
def weakest_symptoms(per_symptom: Mapping[str, Mapping], n: int = 3) -> list[dict]:
    """The ``n`` symptoms with the lowest F1 among those with test positives (ties: smaller support
    first, then DSM order), each ``{"symptom", "f1", "support", "precision", "recall"}``."""
    scored = [
        (float(m["f1"]), int(m["support"]), SYMPTOMS.index(s), s)
        for s, m in per_symptom.items()
        if int(m["support"]) > 0
    ]
    return [
        {
            "symptom": s,
            "f1": f1,
            "support": support,
            "precision": float(per_symptom[s]["precision"]),
            "recall": float(per_symptom[s]["recall"]),
        }
        for f1, support, _, s in sorted(scored)[:n]
    ]


def _window_settings(report: Mapping, spec: Mapping, tcfg: Mapping) -> list[list]:
    """The architecture rows about long posts: the policy, and the window settings under ``windows``."""
    cov = report.get("input_coverage") or {}
    policy = cov.get("policy", tcfg.get("long_posts"))
    if not policy:
        return []
    rows = [
        [
            "long posts",
            "truncate (the first max_length tokens only)"
            if policy == "truncate"
            else "windows (overlapping windows of max_length tokens over the whole post)",
        ]
    ]
    if policy == "windows":
        names = {"window_overlap": "window_overlap", "max_windows": "max_windows", "aggregation": "window_aggregation"}
        settings = cov or {k: tcfg.get(j) for k, j in names.items()}
        overlap = settings.get("window_overlap")
        rows += [
            ["window overlap", "n/a" if overlap is None else f"{overlap:.0%} of a window's post tokens"],
            ["max windows per post", "all" if settings.get("max_windows") is None else settings["max_windows"]],
            ["window aggregation", settings.get("aggregation")],
        ]
    return rows


def _architecture(report: Mapping, spec: Mapping, tcfg: Mapping) -> list[list]:
    """The model's settings table: encoder, window, training settings (those given)."""
    evidence = bool(report["task"]["evidence_task"])
    rows = [["backbone", report["lineage"]["backbone"]], ["encoder source", spec.get("source", "n/a")]]
    encoder = spec.get("hub_id") or spec.get("package") or spec.get("path")
    if encoder:
        rows.append(["encoder", f"{encoder}" + (f" @ {spec['revision']}" if spec.get("revision") else "")])
    rows += [
        ["max_length (tokens)", spec.get("max_length", (report.get("input_coverage") or {}).get("max_length"))],
        ["input format", report["task"]["input_format"]],
        ["evidence task", "yes" if evidence else "no"],
    ]
    if report_text.sentence_model(report):
        agg = report["task"].get("sentence_aggregation") or tcfg.get("sentence_aggregation")
        rows += [
            ["criteria from", "sentences (nine probabilities per sentence; the post's aggregate them)"],
            ["sentence aggregation", agg or "n/a"],
            ["evidence threshold", _f((report["thresholds"].get("evidence") or {}).get("value"), 2)],
        ]
    rows += _window_settings(report, spec, tcfg)
    rows += [[k, tcfg[k]] for k in TRAINING_SETTINGS if k in tcfg]
    if evidence and "evidence_head" in tcfg:
        rows.append(["evidence head", tcfg["evidence_head"]])
    rows.append(["epochs (final training)", report["training"]["epochs"]])
    return rows


def _training_data(report: Mapping, data_card: Mapping) -> dict:
    src = data_card.get("source") or {}
    tr = report["training"]
    return {
        "source": data_card.get("origin") or src.get("kind", "n/a"),
        "fingerprint": json.dumps(src, sort_keys=True),
        "data_key": data_card.get("data_key", report["lineage"]["data_key"]),
        "split_origin": data_card.get("split_origin"),
        "trained_on": " + ".join(tr["trained_on"]),
        "n_posts": tr["n_posts"],
        "epochs": tr["epochs"],
        "synthetic": src.get("kind") == "embedded",
    }


def _counts(data_card: Mapping) -> dict:
    """Posts per split: all, without any symptom, with each symptom."""
    splits = (data_card.get("counts") or {}).get("splits") or {}
    names = [s for s in ("train", "validation", "test") if s in splits]
    rows = [
        ["posts", *[splits[s].get("posts") for s in names]],
        ["posts without any symptom", *[splits[s].get("no_symptom") for s in names]],
    ]
    rows += [[f"posts with {sym}", *[(splits[s].get("per_symptom") or {}).get(sym) for s in names]] for sym in SYMPTOMS]
    return {"splits": names, "rows": rows}


def _lengths(data_card: Mapping) -> list[list]:
    """Post lengths in words per split (the data card's ``lengths``); none for a card without them."""
    splits = (data_card.get("lengths") or {}).get("splits") or {}
    rows = []
    for name in (s for s in ("train", "validation", "test") if s in splits):
        w = splits[name].get("words") or {}
        words = [_f(w.get("mean"), 1), _f(w.get("p50"), 1), _f(w.get("p95"), 1), w.get("max", "n/a")]
        rows.append([name, splits[name].get("posts"), *words])
    return rows


def _evaluation(report: Mapping) -> list[list]:
    """The main metrics table: metric, split, value, model (CV, refit on validation, final on test)."""
    m, split = report["metrics"], report["split"]
    rows = []
    cv = report.get("cv")
    if cv:
        ci = cv.get("interval")
        spread = f"mean [{report_text.level(ci)} t-interval over {ci['k']} folds]" if ci else "mean ± std over folds"
        label = f"CV {cv['metric']} ({spread}; objective: {cv.get('objective', cv['metric'])})"
        value = report_text.t_interval(ci, missing="n/a") if ci else f"{_f(cv['mean'])} ± {_f(cv['std'])}"
        rows.append([label, cv["split"], value, "best trial of the study, per-fold models"])
    rv = report.get("refit_validation")
    if rv:
        for key, label in (("at_tuned_thresholds", "tuned thresholds"), ("at_0.5", "threshold 0.5")):
            v = rv.get(key) or {}
            for k, name in TEST_METRICS[:2]:
                rows.append([f"{name} ({label})", rv["split"], _f(v.get(k)), rv.get("model", "refit model")])
    for label, mm, ivs in (
        ("tuned thresholds", m["test"], report_text.intervals_of(report)),
        ("threshold 0.5", m["test_at_0.5"], report_text.intervals_of(report, "at_0.5")),
    ):
        rows += [
            [f"{name} ({label})", split, _ci(mm[k], report_text.figure_interval(ivs, k)), "final model"]
            for k, name in TEST_METRICS
        ]
    rows.append(["macro PR-AUC (threshold-free)", split, _f(m["test"].get("macro_pr_auc")), "final model"])
    ev = m.get("evidence")
    if ev:
        model = f"final model; {ev['n']} rows, {ev['n_null']} without gold span"
        ivs = (report.get("intervals") or {}).get("evidence") or {}
        rows += [[f"evidence {k}", split, _ci(ev[k], ivs.get(k)), model] for k in EVIDENCE_METRICS]
    if rv and rv.get("evidence"):
        token_f1 = _f(rv["evidence"].get("token_f1"))
        rows.append(["evidence token_f1", rv["split"], token_f1, rv.get("model", "refit model")])
    sm = m.get("sentences")
    if sm:
        at = f"evidence threshold {sm['threshold']:g}"
        model = f"final model; {sm['n_cells']} sentence-symptom cells with a known label"
        rows += [
            [f"sentence-level {name} ({at})", split, _f(sm[key]), model]
            for key, name in (
                ("micro_precision", "micro precision"),
                ("micro_recall", "micro recall"),
                ("micro_f1", "micro F1"),
                ("macro_f1", "macro F1"),
            )
        ]
    return rows


def _per_symptom(report: Mapping) -> list[list]:
    """Per symptom: the few-positives flag beside its name, support, threshold, precision, recall, F1 (with its
    interval when the report has one), F1 at 0.5, PR-AUC."""
    per, per05 = report["metrics"]["test"]["per_symptom"], report["metrics"]["test_at_0.5"]["per_symptom"]
    thr = report["thresholds"]["values"]
    ivs, flags = report_text.intervals_of(report).get("per_symptom") or {}, report_text.few_positive_flags(report)
    return [
        [f"{s} {flags[s].text}" if s in flags else s, per[s]["support"], _f(thr[s], 2)]
        + [_f(x, 3) for x in (per[s]["precision"], per[s]["recall"])]
        + [report_text.interval((ivs.get(s) or {}).get("f1"), missing="n/a") or _f(per[s]["f1"], 3)]
        + [_f(x, 3) for x in (per05[s]["f1"], per[s]["pr_auc"])]
        for s in SYMPTOMS
    ]


def _weakest(report: Mapping) -> list[dict]:
    weak = weakest_symptoms(report["metrics"]["test"]["per_symptom"])
    flags = report_text.few_positive_flags(report)
    return [
        {**w, **{k: _f(w[k], 3) for k in ("f1", "precision", "recall")}, "flag": flags.get(w["symptom"])} for w in weak
    ]


def _thresholds(report: Mapping) -> dict:
    """The decision thresholds: where they came from, the rule verbatim, the out-of-fold F1 at them and at 0.5,
    and per symptom its threshold (and, when the report says, whether the tuned one was adopted and why)."""
    thr = report["thresholds"]
    per = thr.get("per_symptom") or {}
    oof = thr.get("oof") or {}
    tuned, half = oof.get("at_tuned_thresholds") or {}, oof.get("at_0.5") or {}
    rows = [[s, _f(thr["values"][s], 2)] for s in SYMPTOMS]
    if per:
        rows = [
            [
                *row,
                _f(per[s].get("tuned_threshold"), 2),
                report_text.interval(per[s].get("gain"), signed=True, missing="n/a") or "n/a",
                per[s].get("reason") or ("tuned threshold adopted" if per[s].get("adopted") else "kept 0.5"),
            ]
            if s in per
            else [*row, "n/a", "n/a", "n/a"]
            for s, row in zip(SYMPTOMS, rows)
        ]
    return {
        "code": thr.get("source"),
        "source": report_text.threshold_source(thr),
        "split": thr.get("split"),
        "origin": report_text.threshold_origin(thr),
        "chosen": CHOSEN.get(thr.get("source"), f"tuned on the {thr.get('split')} split"),
        "rule": thr.get("rule"),
        "oof": {
            "split": oof.get("split"),
            "n_posts": oof.get("n_posts"),
            "macro": (_f(tuned.get("macro_f1"), 3), _f(half.get("macro_f1"), 3)),
            "micro": (_f(tuned.get("micro_f1"), 3), _f(half.get("micro_f1"), 3)),
        }
        if tuned or half
        else None,
        "head": ["symptom", "threshold"]
        + (["tuned threshold (OOF)", "cross-fitted gain over 0.5 (OOF)", "decision"] if per else []),
        "rows": rows,
    }


def _evidence_threshold(report: Mapping) -> dict | None:
    """The sentence model's evidence threshold (the report's ``thresholds.evidence``): value, how and on which
    split it was chosen, the rule verbatim, the sentence-level micro F1 at it there; None for any other model."""
    block = report["thresholds"].get("evidence")
    if not report_text.sentence_model(report) and not block:
        return None
    block = block or {}
    at = report_text.evidence_threshold_f1(block)
    return {
        "value": None if block.get("value") is None else f"{block['value']:g}",
        "code": block.get("source"),
        "source": report_text.evidence_threshold_source(block) if block else None,
        "split": block.get("split"),
        "rule": block.get("rule"),
        "f1": None if at is None else _f(at, 3),
    }


def _baselines(report: Mapping) -> dict | None:
    """Model vs every baseline on the test split: macro/micro F1 with intervals, the paired difference with its
    interval and one-sided p, one sentence per baseline; None for a report without baselines."""
    baselines = report.get("baselines") or []
    if not baselines:
        return None
    ivs, test = report_text.intervals_of(report), report["metrics"]["test"]
    rows = [
        [
            "this model (final)",
            _ci(test["macro_f1"], ivs.get("macro_f1")),
            _ci(test["micro_f1"], ivs.get("micro_f1")),
            "",
            "",
        ]
    ]
    sentences = []
    for b in baselines:
        m, iv, pd = b.get("metrics") or {}, b.get("intervals") or {}, b.get("paired_difference")
        rows.append(
            [
                f"`{b['name']}` (threshold {b.get('threshold', 0.5):g}{', reference' if b.get('reference') else ''})",
                _ci(m.get("macro_f1"), iv.get("macro_f1")),
                _ci(m.get("micro_f1"), iv.get("micro_f1")),
                report_text.difference(pd, missing="n/a") or "n/a",
                report_text.p_value((pd or {}).get("p_value"), missing="n/a"),
            ]
        )
        if pd:
            sentences.append(
                report_text.difference_sentence("this model", f"`{b['name']}`", pd, b.get("split", "test"))
            )
    metric = next((b["paired_difference"]["metric"] for b in baselines if b.get("paired_difference")), "macro_f1")
    return {"rows": rows, "sentences": sentences, "metric": report_text.metric_name(metric)}


def _paper(report: Mapping) -> dict | None:
    """The paper's definitions on this test split at 0.5 and at the thresholds used, with intervals, then the
    published rows (a different split) and the published note verbatim; None for a report without."""
    paper = report.get("paper")
    if not paper:
        return None
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
                [
                    label,
                    paper.get("split", report["split"]),
                    *[_ci(m.get(k), iv.get(k), 3) for k in report_text.PAPER_METRICS],
                ]
            )
    for b in paper.get("published_baselines") or []:
        name = f"*{b['model']}*" + (f" ({b['note']})" if b.get("note") else "")
        rows.append([name, "*published, different split*", *[_f(b.get(k), 3) for k in report_text.PAPER_METRICS]])
    return {
        "definition": paper.get("definition"),
        "split": paper.get("split", report["split"]),
        "rows": rows,
        "note": paper.get("published_note"),
    }


def _calibration(report: Mapping) -> list[dict]:
    """Mean Brier score and ECE over the symptoms, per split the report's calibration block has (test first)."""
    cal = report.get("calibration") or {}
    return [
        {
            "split": cal[k].get("split", k),
            "brier": _f(cal[k].get("brier"), 3),
            "ece": _f(cal[k].get("ece"), 3),
            "n_bins": cal[k].get("n_bins"),
        }
        for k in ("test", "oof")
        if cal.get(k)
    ]


def _co_best(report: Mapping) -> list[list]:
    return [
        [
            c["backbone"],
            c["variant"],
            f"`{c['trial_key']}`",
            _f(c["cv_mean"]),
            _f(c["metrics"]["test"]["macro_f1"]),
            _f(c["metrics"]["test_at_0.5"]["macro_f1"]),
        ]
        for c in report.get("co_best") or []
    ]


def _window(report: Mapping, backbone_spec: Mapping | None) -> dict:
    """The input window's policy and what it cut of the test posts (the report's ``input_coverage``);
    without one, the encoder's max_length (``policy`` None)."""
    cov = report.get("input_coverage")
    if not cov:
        return {"policy": None, "max_length": (backbone_spec or {}).get("max_length")}
    n, n_ev, beyond, capped = (
        cov["n_posts"],
        cov["n_evidence_sentences"],
        cov["n_evidence_beyond_read"],
        cov["n_posts_capped"],
    )
    return {
        "policy": cov["policy"],
        "policy_text": cov["policy_text"],
        "split": cov["split"],
        "longer": _share(cov["n_longer_than_window"], n, "posts"),
        "n_evidence": n_ev,
        "evidence_beyond": _share(beyond, n_ev, "evidence sentences") if beyond else None,
        "read_mean": _f(cov["windows_read"]["mean"], 2),
        "read_max": cov["windows_read"]["max"],
        "need_p95": _f(cov["windows_needed"]["p95"], 1),
        "need_max": cov["windows_needed"]["max"],
        "capped": _share(capped, n, "posts") if capped else None,
        "max_windows": cov["max_windows"],
    }


def _lineage(report: Mapping) -> list[list]:
    lin = report["lineage"]
    return [
        ["final_key", f"`{report['final_key']}`"],
        ["data_key", f"`{lin['data_key']}`"],
        ["study_key", f"`{lin['study_key']}` (variant v{lin['variant']})"],
        ["trial_key", f"`{lin['trial_key']}`"],
        ["selection_key", f"`{lin['selection_key']}`"],
        ["selected params", f"`{json.dumps(report['selected'].get('params'), sort_keys=True)}`"],
        ["code_version", f"`{lin['code_version']}`"],
    ]


def _reports(report: Mapping, layout: Layout) -> dict:
    final_key = report["final_key"]
    return {
        "evaluation_report": layout.evaluation_report(final_key),
        "evaluation_html": Path(layout.evaluation_html(final_key)).name,
        "test_predictions": Path(layout.test_predictions(final_key)).name,
        "selection_report": layout.selection_report(report["lineage"]["selection_key"]),
    }


def card_view(
    report: Mapping,
    data_card: Mapping,
    *,
    backbone_spec: Encoder | None = None,
    train_cfg: Training | None = None,
    model_dir: str | None = None,
    registered_model: str | None = None,
    model_alias: str | None = None,
    layout: Layout | None = None,
) -> dict:
    """The values templates/model_card.md.j2 renders (arguments as :func:`render_model_card`)."""
    layout = layout or Layout()
    uri = f"models:/{registered_model}@{model_alias}" if registered_model and model_alias else None
    tcfg = dict(train_cfg or {})
    return {
        "name": f"redsm5-symptoms-{report['lineage']['backbone']}-{report['final_key']}",
        "symptoms": list(SYMPTOMS),
        "evidence": bool(report["task"]["evidence_task"]) or report_text.sentence_model(report),
        "decisions": report_text.decisions_text(report, tcfg.get("sentence_aggregation")),
        "evidence_threshold": _evidence_threshold(report),
        "input_format": report["task"]["input_format"],
        "split": report["split"],
        "n_test": report["n_test_posts"],
        "architecture": _architecture(report, dict(backbone_spec or {}), tcfg),
        "training": _training_data(report, data_card),
        "counts": _counts(data_card),
        "lengths": _lengths(data_card),
        "evaluation": _evaluation(report),
        "per_symptom": _per_symptom(report),
        "weakest": _weakest(report),
        "no_positives": [s for s in SYMPTOMS if int(report["metrics"]["test"]["per_symptom"][s]["support"]) == 0],
        "co_best": _co_best(report),
        "thresholds": _thresholds(report),
        "intervals_note": report_text.bootstrap_note(report),
        "baselines": _baselines(report),
        "paper": _paper(report),
        "calibration": _calibration(report),
        "window": _window(report, backbone_spec),
        "usage": {
            "model_dir": model_dir or layout.final_model_dir(report["final_key"]),
            "uri": uri,
            "registered_model": registered_model,
            "model_alias": model_alias,
        },
        "lineage": _lineage(report),
        "reports": _reports(report, layout),
    }


# ---------------------------------------------------------------------------------------- card
def render_model_card(
    report: Mapping,
    data_card: Mapping,
    *,
    backbone_spec: Encoder | None = None,
    train_cfg: Training | None = None,
    model_dir: str | None = None,
    registered_model: str | None = None,
    model_alias: str | None = None,
    layout: Layout | None = None,
) -> str:
    """README.md for the final model folder.

    ``report`` is the evaluation report (its ``checkpoint`` entry may be missing: the card is
    written into the model folder before the folder's manifest exists); ``data_card`` the
    prepared data's data_card.json; ``backbone_spec`` / ``train_cfg`` the resolved encoder spec and
    training section the model was trained with (the card leaves out what is not given);
    ``registered_model`` / ``model_alias`` the MLflow registry name and
    alias (the MLflow lines are left out without both); ``layout`` the output tree the paths
    in the card name.
    """
    from huggingface_hub import ModelCard

    view = card_view(
        report,
        data_card,
        backbone_spec=backbone_spec,
        train_cfg=train_cfg,
        model_dir=model_dir,
        registered_model=registered_model,
        model_alias=model_alias,
        layout=layout,
    )
    data = card_data(report, data_card, view["name"])
    card = ModelCard.from_template(data, template_str=TEMPLATE.read_text(encoding="utf-8"), **view)
    return str(card).rstrip("\n") + "\n"

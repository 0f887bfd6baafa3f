"""One function per pipeline stage; every script in scripts/ calls exactly one of them.

Each function reads its inputs, does the work, tracks it in MLflow and writes
its outputs atomically (the report last). Paths are passed in, never re-derived from the working
directory or the output layout: the rule declares every file and folder the stage writes and
hands those paths (and any other path the stage links to, via params) to the script, which hands
them here. A stage that reads settings takes the job's resolved ``Config`` whole (as the script got
it from jobs.start; the Tracker and Plan read all of it) and hands every other function only the
sections it needs (``cfg.encoders[b]``, ``cfg.hpo.objective``, ``StatePolicy.of(cfg)`` ...), never
checking or completing them again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from workflow_lib.config import Config, Hpo, Training
from workflow_lib.config.keys import input_digest as digest_of
from workflow_lib.devices import describe
from workflow_lib.learning.checkpoint import load_checkpoint, manifest_digest, save_checkpoint
from workflow_lib.learning.retention import release
from workflow_lib.learning.spans import evidence_char_spans, evidence_is_complete
from workflow_lib.persistence.paths import Layout
from workflow_lib.persistence.reports import atomic_write_text, read_json, validate_report, write_json
from workflow_lib.pipeline import evaluation as ev
from workflow_lib.pipeline.evaluation import cv_interval
from workflow_lib.pipeline.plan import Plan
from workflow_lib.pipeline.runmode import resumes_training
from workflow_lib.pipeline.thresholds import (
    check_evidence_source,
    check_source,
    evidence_threshold_block,
    read_evidence_counts,
    read_out_of_fold,
    thresholds_block,
)
from workflow_lib.provenance import code_version, library_versions
from workflow_lib.search.selection import select
from workflow_lib.shipping.model_card import render_model_card
from workflow_lib.shipping.predictor import PredictError, predict_file, prediction_rows, span_rows
from workflow_lib.symptoms import SYMPTOMS
from workflow_lib.tracking.tracker import Tracker

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- data ------------------------------------------------------------------------
def prepare_data(cfg: Config, *, data_key: str, out_dir: str) -> dict:
    from workflow_lib.data.prepare import prepare

    tracker = Tracker(cfg)  # first: its replayer opens the store while this job works
    expected = Plan(cfg).data_key
    if data_key != expected:
        raise RuntimeError(
            f"data key {data_key} does not match the config's {expected}; rerun snakemake so the "
            f"workflow and the job see the same data source"
        )
    card = prepare(cfg.data, out_dir, data_key)
    with tracker.run("prepare_data", {"data_key": data_key}, params={"data": cfg.data}) as run:
        tracker.log_metrics(run, {"posts": card["counts"]["posts"]})
        tracker.log_artifact(run, str(Path(out_dir) / "data_card.json"))
    tracker.close()
    return card


def baseline(cfg: Config, *, data_dir: str, out: str, out_sentences: str) -> list[dict]:
    """The TF-IDF baselines on the study's folds, scored on hpo.metric: post level to ``out``, sentence level
    (one model per symptom over the train posts' sentences, max per post) to ``out_sentences``."""
    from workflow_lib.data.prepare import load_prepared
    from workflow_lib.learning.baseline import tfidf_baseline, tfidf_sentence_baseline

    prepared = load_prepared(data_dir)
    metric, seed = cfg.hpo.metric, cfg.data.split.seed
    results = []
    for path, result in (
        (out, tfidf_baseline(prepared.folds, prepared.texts, prepared.labels, metric=metric, seed=seed)),
        (
            out_sentences,
            tfidf_sentence_baseline(
                prepared.folds,
                prepared.sentences,
                prepared.sentence_labels,
                prepared.labels,
                metric=metric,
                seed=seed,
            ),
        ),
    ):
        result["data_key"] = prepared.card["data_key"]
        write_json(path, result, kind="baseline")
        log.info("baseline %s: CV %s %.4f ± %.4f", result["name"], metric, result["mean"], result["std"])
        results.append(result)
    return results


# -- hpo ---------------------------------------------------------------------------
def hpo_worker(
    cfg: Config,
    *,
    backbone: str,
    study_key: str,
    variant: int,
    worker: str,
    data_key: str,
    data_dir: str,
    out: str,
    threads: int | None = None,
) -> dict:
    """This worker's share of the study (search.hpo.run_worker); ``out`` (the worker's done file) records
    how many trials the study holds finished when the worker stopped."""
    from workflow_lib.search.hpo import run_worker

    result = run_worker(
        cfg,
        backbone=backbone,
        study_key=study_key,
        variant=variant,
        worker=worker,
        data_key=data_key,
        data_dir=data_dir,
        threads=threads,
    )
    write_json(out, result)
    return result


def hpo_summary(cfg: Config, *, backbone: str, study_key: str, variant: int, data_key: str, out: str) -> dict:
    from workflow_lib.search.hpo import summarize

    summary = summarize(cfg, backbone=backbone, study_key=study_key, variant=variant, data_key=data_key)
    write_json(out, summary, kind="study_summary")
    b = summary["best_trial"]
    log.info(
        "study %s: %s; best trial %s",
        summary["study_name"],
        summary["counts"],
        f"#{b['number']} {b['mean']:.4f} ± {b['std']:.4f}" if b else "none",
    )
    return summary


# -- refit -------------------------------------------------------------------------
def refit(
    cfg: Config,
    *,
    summary_path: str,
    trial_key: str,
    data_dir: str,
    model_dir: str,
    metrics_path: str,
    fold_metrics: list[str],
    threads: int | None = None,
) -> dict:
    """Best trial's configuration on the full train split, early-stopped on validation; decision thresholds
    chosen as ``thresholds.source`` says (pipeline/thresholds.py): on the out-of-fold probabilities of the
    trial's folds (``fold_metrics``: every fold's metrics.json of the trial, as the rule declares them), on the
    validation predictions, or fixed at 0.5.

    The training state goes to ``state/`` beside ``model_dir`` (a rerun resumes from it; removed
    once metrics_path is written). MLflow metrics are logged just before metrics_path is written,
    so a rerun after a kill logs each epoch once.
    """
    from workflow_lib.data.prepare import load_prepared
    from workflow_lib.learning.epoch_states import StatePolicy
    from workflow_lib.learning.examples import sentence_threshold_counts
    from workflow_lib.learning.metrics import multilabel_metrics
    from workflow_lib.learning.training import train
    from workflow_lib.search.hpo import best_trial_config

    tracker = Tracker(cfg)
    summary = read_json(summary_path)
    backbone = summary["backbone"]
    spec = cfg.encoders[backbone]
    tcfg = best_trial_config(cfg, summary, trial_key)
    prepared = load_prepared(data_dir)
    tr, va = prepared.splits["train"], prepared.splits["validation"]
    source = cfg.thresholds.source
    oof = read_out_of_fold(fold_metrics, tr, prepared.labels)  # before training: a bad fold file fails at once
    check_source(source, oof)
    sentences = tcfg.criteria_from == "sentences"
    oof_counts = read_evidence_counts(fold_metrics) if sentences else None
    if sentences and source == "oof":
        check_evidence_source(source, oof_counts)  # before training: fold files without counts fail at once
    ids = {
        "backbone": backbone,
        "trial_key": trial_key,
        "study_key": summary["study_key"],
        "variant": summary["variant"],
        "data_key": summary["data_key"],
    }
    metric = cfg.hpo.metric
    state_dir = Layout.run_state(model_dir)
    with tracker.run("refit", ids, params={"config": tcfg, "refit": cfg.refit}) as run:
        val_records = prepared.of(va)
        res = train(
            spec,
            tcfg,
            prepared.of(tr),
            val_records,
            epochs=cfg.refit.max_epochs,
            patience=cfg.refit.patience,
            metric=metric,
            objective=cfg.hpo.objective,
            progress_desc=f"refit {backbone}",
            threads=threads,
            state_dir=state_dir,
            state_policy=StatePolicy.of(cfg),
        )
        y_val = prepared.labels(va)
        chosen = thresholds_block(source, oof=oof, y_val=y_val, val_probs=res.val_probs)
        thresholds = [chosen["values"][s] for s in SYMPTOMS]
        meta = {**ids, "stage": "refit", "best_epoch": res.best_epoch, "thresholds": chosen["values"]}
        if sentences:
            vp = res.val_prediction
            chosen["evidence"] = evidence_threshold_block(
                source,
                oof_counts=oof_counts,
                validation_counts=sentence_threshold_counts(vp.examples, val_records, vp.sentence_probs),
                fixed=tcfg.evidence_threshold,
            )
            meta["evidence_threshold"] = chosen["evidence"]["value"]
        manifest = save_checkpoint(
            model_dir,
            res.model,
            res.tokenizer,
            backbone_spec=spec,
            train_cfg=tcfg,
            meta=meta,
        )
        metrics = {
            **ids,
            "best_epoch": res.best_epoch,
            "history": res.history,
            "train_seconds": res.train_seconds,
            "device": describe(),
            "n_train": len(tr),
            "n_validation": len(va),
            "validation": {
                "split": "validation",
                "at_0.5": multilabel_metrics(y_val, res.val_probs),
                "at_tuned_thresholds": multilabel_metrics(y_val, res.val_probs, thresholds),
                "input_coverage": res.val_prediction.examples.coverage("validation"),
            },
            "thresholds": chosen,
            "objective": {**cfg.hpo.objective, "metric": metric, "best_value": res.best_score},
            "config": tcfg,
            "code_version": code_version(),
            "resumed_from_epoch": res.resumed_from,
        }
        for h in res.history:
            tracker.log_metrics(run, {k: v for k, v in h.items() if k != "epoch"}, step=h["epoch"])
        val_metrics = res.val_metrics
        if sentences:  # the sentence model's evidence on validation, at the thresholds it will be used at
            val_metrics = res.val_prediction.metrics(val_records, thresholds, chosen["evidence"]["value"])
            metrics["validation"]["sentences"] = val_metrics["sentences"]
        if "evidence" in val_metrics:
            metrics["validation"]["evidence"] = val_metrics["evidence"]
            tracker.log_metrics(
                run,
                {f"validation_evidence_{k}": v for k, v in val_metrics["evidence"].items() if isinstance(v, float)},
            )
        tracker.log_metrics(
            run, {f"validation_{metric}": metrics["validation"]["at_0.5"][metric], "best_epoch": res.best_epoch}
        )
        if "oof" in chosen:
            o = chosen["oof"]
            tracker.log_metrics(
                run,
                {
                    "oof_macro_f1_at_tuned": o["at_tuned_thresholds"]["macro_f1"],
                    "oof_macro_f1_at_0.5": o["at_0.5"]["macro_f1"],
                    "oof_brier": o["calibration"]["brier"],
                    "oof_ece": o["calibration"]["ece"],
                },
            )
        write_json(metrics_path, metrics)
    release(state_dir, metrics_path)
    tracker.close()
    log.info(
        "refit %s: best epoch %d, validation %s %.4f; thresholds %s (%s); %d files in checkpoint",
        trial_key,
        res.best_epoch,
        metric,
        metrics["validation"]["at_0.5"][metric],
        source,
        ", ".join(f"{v:g}" for v in thresholds),
        len(manifest["files"]),
    )
    return metrics


# -- benchmark -----------------------------------------------------------------------
def benchmark(
    cfg: Config, *, model_dir: str, trial_key: str, backbone: str, data_dir: str, out: str, threads: int | None = None
) -> dict:
    """Fixed-shape figures, and per-post figures over the prepared train and validation posts
    (never the test split: it is read once, by the final stage)."""
    from workflow_lib.data.prepare import load_prepared
    from workflow_lib.pipeline.inference_benchmark import run_benchmark

    tracker = Tracker(cfg)
    threads = cfg.benchmark.threads or threads
    prepared = load_prepared(data_dir)
    posts = prepared.of(prepared.splits["train"] + prepared.splits["validation"])
    ids = {"backbone": backbone, "trial_key": trial_key}
    with tracker.run("benchmark", ids, params={"benchmark": cfg.benchmark}) as run:
        result = run_benchmark(
            model_dir, cfg.benchmark, posts=posts, posts_source="train+validation", threads=threads, extra=ids
        )
        for row in result["results"]:
            tag = f"bs{row['batch_size']}_len{row['seq_length']}"
            tracker.log_metrics(
                run, {f"p95_ms_{tag}": row["latency_ms"]["p95"], f"throughput_{tag}": row["throughput_per_s"]}
            )
        pp = result["per_post"]
        tracker.log_metrics(
            run,
            {
                "per_post_p50_ms": pp["latency_ms"]["p50"],
                "per_post_p95_ms": pp["latency_ms"]["p95"],
                "per_post_mean_ms": pp["latency_ms"]["mean"],
                "posts_per_s": pp["throughput_posts_per_s"],
                "windows_per_post_mean": pp["windows_per_post"]["mean"],
            },
        )
        if "sentences_vs_post" in result:  # the sentence model's cost over post windows, measured side by side
            ratios = result["sentences_vs_post"]
            keep = ("per_post_latency_ratio", "per_post_p95_ratio", "batched_seconds_ratio", "throughput_ratio")
            tracker.log_metrics(run, {f"sentences_vs_post_{k}": ratios[k] for k in keep if ratios.get(k) is not None})
        write_json(out, result, kind="benchmark")
    tracker.close()
    return result


# -- selection -----------------------------------------------------------------------
def fold_sizes(card: Mapping) -> tuple[float, float]:
    """(n_train, n_test): the posts a CV fold trains on and scores, mean over the data card's folds."""
    folds = card["counts"]["folds"]
    return (
        sum(f["train"] for f in folds) / len(folds),
        sum(f["heldout"] for f in folds) / len(folds),
    )


def _fill_final_key(pattern: str, final_key: str) -> str:
    """``pattern`` (a path with ``{final_key}``, as the rule gives it) for ``final_key``."""
    if "{final_key}" not in pattern:
        raise ValueError(f"{pattern!r} has no {{final_key}} to fill in; pass the evaluation page's path pattern")
    return pattern.replace("{final_key}", final_key)


def objective_label(hpo: Hpo) -> str:
    """'macro_f1', or e.g. '0.5 x macro_f1 + 0.5 x evidence token_f1' when evidence is weighed."""
    o = hpo.objective
    if not o.evidence_weight:
        return hpo.metric
    total = o.criteria_weight + o.evidence_weight
    return (
        f"{o.criteria_weight / total:g} x {hpo.metric} + {o.evidence_weight / total:g} x evidence {o.evidence_metric}"
    )


def selection(
    cfg: Config,
    *,
    summaries: list[str],
    benchmarks: Mapping[str, str],
    baseline_paths: list[str],
    data_card_path: str,
    selection_key: str,
    out_json: str,
    out_html: str,
    plots_dir: str,
    evaluation_html_pattern: str,
) -> dict:
    """Pick the best candidate; write the page ``out_html`` with its plots in ``plots_dir``, then the
    report ``out_json``. ``baseline_paths``: the baselines' CV results (none when selection.baseline is off);
    ``data_card_path``: the data card, whose fold sizes the corrected t-tests use. ``evaluation_html_pattern``:
    the path of the final stage's evaluation page with ``{final_key}`` in place of the final key, which follows
    from this stage's choice (the selected trial and the trials tied with it); the page links to it."""
    from workflow_lib.shipping.report_html import selection_page

    tracker = Tracker(cfg)
    plan = Plan(cfg, main_process=False)
    cands, variants = plan.candidates(summaries)
    summ = [read_json(v["summary"]) for v in variants if v["compared"]]
    if plan.selection_key(cands) != selection_key:
        raise RuntimeError(f"selection key {selection_key} does not match the candidates on disk; rerun snakemake")
    for c in cands:
        c["benchmark"] = read_json(benchmarks[c["trial_key"]])
    bases = [read_json(p, kind="baseline") for p in baseline_paths] if cfg.selection.baseline else []
    report = select(
        cands,
        cfg.selection,
        baselines=bases,
        metric=cfg.hpo.metric,
        objective=objective_label(cfg.hpo),
        fold_sizes=fold_sizes(read_json(data_card_path, kind="data_card")),
    )
    report["selection_key"] = selection_key
    report["lineage"] = {
        "data_key": summ[0]["data_key"] if summ else None,
        "studies": [{k: s[k] for k in ("backbone", "study_key", "variant")} for s in summ],
    }
    report["variants"] = variants
    report["code_version"] = code_version()
    report["html"] = Path(out_html).name
    validate_report("selection_report", report)
    # The final key follows from this report (selected trial + co-best trials), so the page can link
    # to the evaluation page the final stage writes later.
    evaluation_html = _fill_final_key(evaluation_html_pattern, plan.final_key_of(report))
    link = os.path.relpath(evaluation_html, os.path.dirname(out_html))
    selection_page(report, summ, evaluation_link=link).write(out_html, plots_dir)
    write_json(out_json, report, kind="selection_report")
    with tracker.run("selection", {"selection_key": selection_key}) as run:
        sel = report["selected"]
        tracker.set_tags(run, {"selected.backbone": sel["backbone"], "selected.trial_key": sel["trial_key"]})
        lead = report["winner_lead"]
        tracker.log_metrics(
            run,
            {
                "selected_cv_mean": sel["cv_mean"],
                **({"winner_lead_p": lead["p_one_sided"]} if lead["p_one_sided"] is not None else {}),
                **({"vs_baseline_p": v} if (v := (lead["vs_baseline"] or {}).get("p_one_sided")) is not None else {}),
            },
        )
        tracker.log_artifact(run, out_html)
    tracker.close()
    log.info("selected %s trial %s: %s", sel["backbone"], sel["trial_key"], report["reason"])
    return report


# -- final ---------------------------------------------------------------------------
def _test_metrics(pred, records, thresholds) -> dict:
    """Criteria at the tuned thresholds and at 0.5, evidence once (it has no per-symptom threshold); the sentence
    model's sentence-level metrics at the prediction's evidence threshold."""
    from workflow_lib.learning.examples import post_labels
    from workflow_lib.learning.metrics import multilabel_metrics

    tuned = pred.metrics(records, thresholds)
    out = {"test": tuned["criteria"], "test_at_0.5": multilabel_metrics(post_labels(records), pred.probs, 0.5)}
    for key in ("evidence", "sentences"):
        if key in tuned:
            out[key] = tuned[key]
    return out


def test_prediction_rows(pred, records, thresholds, train_cfg: Training) -> list[dict]:
    """One row per test post: predict.prediction_rows (probabilities, decisions at ``thresholds``,
    predicted spans) with the post's split, gold labels and gold evidence spans per symptom."""
    rows = prediction_rows(records, pred, thresholds, train_cfg.input_format)
    for row, r in zip(rows, records):
        row.update(
            {
                "split": "test",
                "labels": {s: int(r["labels"][j]) for j, s in enumerate(SYMPTOMS)},
                "gold_evidence": {s: span_rows(r["text"], sp) for s in SYMPTOMS if (sp := evidence_char_spans(r, [s]))},
                "gold_evidence_complete": evidence_is_complete(r),
            }
        )
    return rows


def _evaluation_extras(report: Mapping, sel_report: Mapping, refit_metrics: Mapping, hpo: Hpo, pred) -> dict:
    """What the evaluation page and the model card show beside the test metrics, each with its split:
    the study's CV score (with its t-interval), the refit model's validation scores, confusion counts, and what
    the input window read of the test posts (the test prediction's own coverage: no second tokenisation)."""
    sel = sel_report["selected"]
    cand = next((c for c in sel_report.get("candidates", []) if c.get("selected")), {})
    val = refit_metrics["validation"]
    keep = ("macro_f1", "micro_f1", "macro_precision", "macro_recall", "macro_pr_auc")
    rv = {
        "split": val["split"],
        "model": "refit checkpoint (trained on the train split)",
        "at_tuned_thresholds": {k: val["at_tuned_thresholds"].get(k) for k in keep},
        "at_0.5": {k: val["at_0.5"].get(k) for k in keep},
    }
    if val.get("evidence"):
        rv["evidence"] = {
            k: v
            for k, v in val["evidence"].items()
            if k in ("token_f1", "char_f1", "exact_match", "null_span_accuracy")
        }
    m = report["metrics"]
    return {
        "cv": {
            "split": sel_report["split"],
            "metric": hpo.metric,
            "objective": objective_label(hpo),
            "mean": sel["cv_mean"],
            "std": sel.get("cv_std"),
            "fold_scores": cand.get("fold_scores", []),
            "interval": cv_interval(cand.get("fold_scores", [])),
        },
        "refit_validation": rv,
        "confusion": {
            "split": report["split"],
            "at_tuned_thresholds": {s: v["confusion_matrix"] for s, v in m["test"]["per_symptom"].items()},
            "at_0.5": {s: v["confusion_matrix"] for s, v in m["test_at_0.5"]["per_symptom"].items()},
        },
        "input_coverage": pred.examples.coverage(report["split"]),
    }


def _inside(path: str, folder: str) -> str:
    """``path`` relative to ``folder``, which must hold it (ValueError otherwise)."""
    rel = os.path.relpath(path, folder)
    if rel == os.curdir or rel.split(os.sep)[0] == os.pardir:
        raise ValueError(
            f"{path} is not inside the model folder {folder}; the model card is written into the model "
            "folder (covered by its manifest): declare it there in the rule"
        )
    return rel


def final(
    cfg: Config,
    *,
    selection_path: str,
    summary_path: str,
    refit_metrics_path: str,
    data_dir: str,
    final_key: str,
    model_dir: str,
    model_card_path: str,
    test_predictions_path: str,
    evaluation_html: str,
    plots_dir: str,
    report_path: str,
    selection_html: str,
    co_best_refits: Mapping[str, Mapping] | None = None,
    threads: int | None = None,
) -> dict:
    """Train the selected configuration on train+validation; evaluate once on test.

    Writes, in this order: the model folder ``model_dir`` (with the model card ``model_card_path``
    inside it, covered by its manifest), ``test_predictions_path``, the evaluation page
    ``evaluation_html`` with its plots in ``plots_dir`` and last the report ``report_path`` (the
    rule's completion marker). ``selection_html``: the selection page, which the evaluation page
    links to.

    ``co_best_refits`` maps the trial key of every candidate tied with the selected one (within
    selection.tie_tolerance) to its refit ``{"model_dir", "metrics"}``; those checkpoints are
    scored (at their own thresholds) on the same test read, one entry each under ``co_best``, with their paired
    differences to the selected model and to the baselines.

    Beside the point metrics the report (version 3, pipeline/evaluation.py) carries the thresholds block of the
    refit, intervals of every test figure (``evaluation.bootstrap`` resamples of the test posts, seed
    ``evaluation.seed``), few-positive flags, the TF-IDF baselines fitted on train+validation and scored on the
    same test posts (the one best on CV first) with the paired difference model − baseline, the ReDSM5 paper's
    metrics beside its published rows, calibration (test and out-of-fold) and the CV t-interval.
    The training state goes to ``state/`` beside ``model_dir`` (resumed by a rerun, removed once the
    report is written).
    """
    from workflow_lib.data.prepare import load_prepared
    from workflow_lib.learning.epoch_states import StatePolicy
    from workflow_lib.learning.examples import post_labels
    from workflow_lib.learning.inference import predict
    from workflow_lib.learning.training import train
    from workflow_lib.search.hpo import best_trial_config
    from workflow_lib.shipping.report_html import evaluation_page

    card_in_model = _inside(model_card_path, model_dir)  # before the training, not after it
    tracker = Tracker(cfg)
    sel_report = read_json(selection_path)
    sel = sel_report["selected"]
    summary = read_json(summary_path)
    refit_metrics = read_json(refit_metrics_path)
    backbone, trial_key = sel["backbone"], sel["trial_key"]
    spec = cfg.encoders[backbone]
    tcfg = best_trial_config(cfg, summary, trial_key)
    epochs = cfg.final.epochs or refit_metrics["best_epoch"]
    chosen = refit_metrics["thresholds"]  # the refit's thresholds block: source, rule, values, out-of-fold summary
    thresholds = [chosen["values"][s] for s in SYMPTOMS]
    evidence_threshold = chosen["evidence"]["value"] if "evidence" in chosen else None  # the sentence model's
    boot = ev.Bootstrap.of(cfg.evaluation)
    prepared = load_prepared(data_dir)
    fit_ids = prepared.splits["train"] + prepared.splits["validation"]
    test_ids = prepared.splits["test"]
    lineage = {
        "data_key": summary["data_key"],
        "study_key": summary["study_key"],
        "trial_key": trial_key,
        "selection_key": sel_report["selection_key"],
        "final_key": final_key,
        "variant": int(summary["variant"]),
        "backbone": backbone,
        "code_version": code_version(),
    }
    ids = {k: v for k, v in lineage.items() if k != "code_version"}
    state_dir = Layout.run_state(model_dir)
    if not resumes_training(cfg.run, "final") and release(state_dir):  # force_new: a fresh start, not a resume
        log.info("run.mode.final is force_new: the interrupted training state in %s was discarded", state_dir)
    with tracker.run("final", ids, params={"config": tcfg, "epochs": epochs}) as run:
        t0 = time.perf_counter()
        res = train(
            spec,
            tcfg,
            prepared.of(fit_ids),
            epochs=epochs,
            progress_desc=f"final {backbone}",
            threads=threads,
            state_dir=state_dir,
            state_policy=StatePolicy.of(cfg),
        )
        seconds = time.perf_counter() - t0
        # The one and only read of the test split: the final model and every co-best refit checkpoint.
        # Predicted before the model is saved, so the model card inside the model folder has the results.
        test_records = prepared.of(test_ids)
        pred = predict(
            res.model,
            res.tokenizer,
            test_records,
            tcfg,
            max_length=spec.max_length,
            evidence_threshold=evidence_threshold,
        )
        y_test = post_labels(test_records)
        scored = ev.Scored("model", pred.probs, thresholds)  # the final model, decided at the refit's thresholds
        co_best, co_scored = [], []
        tied = {c["trial_key"]: c for c in sel_report.get("co_best", [])}
        for tkey, refit_paths in sorted((co_best_refits or {}).items()):
            path = refit_paths["model_dir"]
            cmodel, tok, info = load_checkpoint(path)
            cand = tied[tkey]
            cthr = [read_json(refit_paths["metrics"])["thresholds"]["values"][s] for s in SYMPTOMS]
            cpred = predict(
                cmodel,
                tok,
                test_records,
                info["train_cfg"],
                max_length=info["backbone_spec"].max_length,
                evidence_threshold=(info.get("meta") or {}).get("evidence_threshold"),
            )
            co_best.append(
                {
                    **{k: cand[k] for k in ("backbone", "study_key", "variant", "trial_key", "cv_mean")},
                    "checkpoint": {
                        "path": str(path),
                        "manifest_sha256": info["manifest_sha256"],
                        "stage": "refit (train split only)",
                    },
                    "metrics": _test_metrics(cpred, test_records, cthr),
                    "input_coverage": cpred.examples.coverage("test"),
                }
            )
            co_scored.append(ev.Scored(tkey, cpred.probs, cthr))
        intervals = ev.intervals_block(y_test, scored, boot, ev.evidence_contributions(pred))
        reference = ev.reference_baseline(sel_report, [b.name for b in ev.baseline_models()])
        baselines, baseline_scores = ev.baselines_block(
            prepared, fit_ids, test_ids, y_test, scored, boot, seed=cfg.data.split.seed, reference=reference
        )
        for entry, co in zip(co_best, co_scored):
            entry.update(ev.co_best_differences(y_test, scored, co, baseline_scores, boot))
        report = {
            "report_version": 3,
            "final_key": final_key,
            "split": "test",
            "n_test_posts": len(test_ids),
            "task": {
                "input_format": tcfg.input_format,
                "evidence_task": tcfg.evidence_task,
                "criteria_from": tcfg.criteria_from,
                "sentence_aggregation": tcfg.sentence_aggregation if tcfg.criteria_from == "sentences" else None,
                "sentence_context": tcfg.sentence_context if tcfg.criteria_from == "sentences" else None,
                "objective": {**cfg.hpo.objective, "metric": cfg.hpo.metric},
            },
            "selected": {
                "backbone": backbone,
                "trial_key": trial_key,
                "study_key": summary["study_key"],
                "variant": int(summary["variant"]),
                "selection_key": sel_report["selection_key"],
                "params": sel["params"],
            },
            "training": {
                "trained_on": ["train", "validation"],
                "n_posts": len(fit_ids),
                "epochs": epochs,
                "device": describe(),
                "seconds": seconds,
                "resumed_from_epoch": res.resumed_from,
            },
            "thresholds": chosen,
            "metrics": _test_metrics(pred, test_records, thresholds),
            "intervals": intervals,
            "few_positives": ev.few_positives_block(y_test),
            "baselines": baselines,
            "paper": ev.paper_block(y_test, scored, intervals),
            "calibration": ev.calibration_block(y_test, pred.probs, chosen),
            "co_best": co_best,
            "lineage": lineage,
            "library_versions": library_versions(),
            "created_at": _now(),
        }
        report.update(_evaluation_extras(report, sel_report, refit_metrics, cfg.hpo, pred))
        outputs = {
            "evaluation_html": evaluation_html,
            "plots": plots_dir,
            "test_predictions": test_predictions_path,
            "model_card": model_card_path,
        }
        report["outputs"] = {k: os.path.relpath(v, os.path.dirname(report_path)) for k, v in outputs.items()}
        card = render_model_card(
            report,
            prepared.card,
            backbone_spec=spec,
            train_cfg=tcfg,
            model_dir=str(model_dir),
            registered_model=cfg.tracking.registered_model,
            model_alias=cfg.tracking.model_alias,
            layout=Layout(cfg.results_dir),  # the report paths the card names
        )
        meta = {**lineage, "stage": "final", "epochs": epochs, "thresholds": dict(zip(SYMPTOMS, thresholds))}
        if evidence_threshold is not None:
            meta["evidence_threshold"] = evidence_threshold
        save_checkpoint(
            model_dir,
            res.model,
            res.tokenizer,
            backbone_spec=spec,
            train_cfg=tcfg,
            meta=meta,
            extra=lambda folder: (Path(folder) / card_in_model).write_text(card, encoding="utf-8"),
        )
        report["checkpoint"] = {"path": str(model_dir), "manifest_sha256": manifest_digest(model_dir)}
        rows = test_prediction_rows(pred, test_records, thresholds, tcfg)
        atomic_write_text(test_predictions_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        evaluation_page(
            report,
            rows,
            {r["post_id"]: r["text"] for r in test_records},
            links={
                "selection page": os.path.relpath(selection_html, os.path.dirname(evaluation_html)),
                "model card (model/README.md)": report["outputs"]["model_card"],
                "test_predictions.jsonl": report["outputs"]["test_predictions"],
            },
        ).write(evaluation_html, plots_dir)
        m = report["metrics"]["test"]
        for h in res.history:  # just before the report: a rerun after a kill logs each epoch once
            tracker.log_metrics(run, {"train_loss": h["train_loss"]}, step=h["epoch"])
        tracker.log_metrics(run, ev.mlflow_metrics(report))
        write_json(report_path, report, kind="evaluation_report")
        # Through the tracking spool (workflow_lib.shipping.mlflow_model): the report and its page as run artifacts,
        # the model folder as the pyfunc model, registered once per final_key, the alias moved to it.
        tracker.log_artifact(run, report_path)
        tracker.log_artifact(run, evaluation_html)
        tracker.log_model(run, model_dir, cfg.tracking.registered_model, cfg.tracking.model_alias, lineage)
    release(state_dir, report_path)
    tracker.close()
    iv, ref = report["intervals"]["at_tuned_thresholds"]["macro_f1"], report["baselines"][0]
    log.info(
        "final %s: test macro-F1 %.4f [%.4f, %.4f], micro-F1 %.4f (n=%d); %s %.4f, difference %+.4f (p=%.3f)%s",
        backbone,
        m["macro_f1"],
        iv["low"],
        iv["high"],
        m["micro_f1"],
        len(test_ids),
        ref["name"],
        ref["metrics"]["macro_f1"],
        ref["paired_difference"]["difference"]["estimate"],
        ref["paired_difference"]["p_value"],
        f"; {len(co_best)} co-best checkpoint(s) also scored" if co_best else "",
    )
    return report


# -- predict -------------------------------------------------------------------------
def predict_posts(
    *, model_dir: str, input_path: str, input_digest: str, out: str, summary_path: str, threads: int | None = None
) -> dict:
    """The selected final model on ``input_path`` (whose content digest names the output folder),
    rows to ``out``, a summary to ``summary_path`` (shipping.predictor.predict_file)."""
    found = digest_of(input_path)
    if found != input_digest:
        raise PredictError(
            f"{input_path}: its content changed while the workflow ran (sha256 prefix {found}, "
            f"the job was planned for {input_digest}); run the predict target again"
        )
    summary = predict_file(model_dir, input_path, out, threads=threads, progress=True)
    summary["input_digest"] = input_digest
    write_json(summary_path, summary)
    log.info(
        "predicted %d posts in %.2f s (%.1f posts/s, %d threads) with %s -> %s",
        summary["n_posts"],
        summary["seconds"],
        summary["posts_per_second"] or 0.0,
        summary["threads"],
        model_dir,
        out,
    )
    return summary

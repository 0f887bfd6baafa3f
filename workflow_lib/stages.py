"""One function per pipeline stage. Scripts call these with paths Snakemake resolved.

Each function reads its inputs, does the work, tracks it in MLflow and writes
its outputs atomically (the report last). Inputs are passed in, never
re-derived from the working directory.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from workflow_lib.devices import describe
from workflow_lib.plan import Plan
from workflow_lib.provenance import code_version, library_versions
from workflow_lib.reports import read_json, validate_report, write_json
from workflow_lib.runmode import resumes_training
from workflow_lib.symptoms import SYMPTOMS
from workflow_lib.tracking import Tracker

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- data ------------------------------------------------------------------------
def prepare_data(cfg: Mapping, *, data_key: str, out_dir: str) -> dict:
    from workflow_lib.data.prepare import prepare

    tracker = Tracker(cfg)  # first: its replayer opens the store while this job works
    expected = Plan(cfg).data_key
    if data_key != expected:
        raise RuntimeError(f"data key {data_key} does not match the config's {expected}; rerun snakemake so the "
                           f"workflow and the job see the same data source")
    card = prepare(cfg["data"], out_dir, data_key)
    with tracker.run("prepare_data", {"data_key": data_key}, params={"data": cfg["data"]}) as run:
        tracker.log_metrics(run, {"posts": card["counts"]["posts"]})
        tracker.log_artifact(run, str(Path(out_dir) / "data_card.json"))
    tracker.close()
    return card


def baseline(cfg: Mapping, *, data_dir: str, out: str) -> dict:
    from workflow_lib.baseline import tfidf_baseline
    from workflow_lib.data.prepare import load_prepared

    prepared = load_prepared(data_dir)
    result = tfidf_baseline(prepared.folds, prepared.texts, prepared.labels, metric=cfg["hpo"]["metric"],
                            seed=cfg["data"]["split"]["seed"])
    result["data_key"] = prepared.card["data_key"]
    write_json(out, result, kind="baseline")
    return result


# -- hpo ---------------------------------------------------------------------------
def hpo_summary(cfg: Mapping, *, backbone: str, study_key: str, variant: int, data_key: str, out: str) -> dict:
    from workflow_lib.hpo import summarize

    summary = summarize(cfg, backbone=backbone, study_key=study_key, variant=variant, data_key=data_key)
    write_json(out, summary, kind="study_summary")
    b = summary["best_trial"]
    log.info("study %s: %s; best trial %s", summary["study_name"], summary["counts"],
             f"#{b['number']} {b['mean']:.4f} ± {b['std']:.4f}" if b else "none")
    return summary


# -- refit -------------------------------------------------------------------------
def refit(cfg: Mapping, *, summary_path: str, trial_key: str, data_dir: str, model_dir: str, metrics_path: str,
          threads: int | None = None) -> dict:
    """Best trial's configuration on the full train split, early-stopped on validation;
    decision thresholds tuned on the validation predictions.

    The training state goes to ``state/`` beside ``model_dir`` (a rerun resumes from it; removed
    once metrics_path is written). MLflow metrics are logged just before metrics_path is written,
    so a rerun after a kill logs each epoch once.
    """
    from workflow_lib.checkpoint import save_checkpoint
    from workflow_lib.data.prepare import load_prepared
    from workflow_lib.hpo import best_trial_config
    from workflow_lib.metrics import multilabel_metrics, tune_thresholds
    from workflow_lib.retention import release
    from workflow_lib.training import train

    tracker = Tracker(cfg)
    summary = read_json(summary_path)
    backbone = summary["backbone"]
    spec = cfg["encoders"][backbone]
    tcfg = best_trial_config(cfg, summary, trial_key)
    prepared = load_prepared(data_dir)
    tr, va = prepared.splits["train"], prepared.splits["validation"]
    ids = {"backbone": backbone, "trial_key": trial_key, "study_key": summary["study_key"],
           "variant": summary["variant"], "data_key": summary["data_key"]}
    metric = cfg["hpo"]["metric"]
    state_dir = str(Path(model_dir).parent / "state")
    with tracker.run("refit", ids, params={"config": tcfg, "refit": cfg["refit"]}) as run:
        val_records = prepared.of(va)
        res = train(spec, tcfg, prepared.of(tr), val_records, epochs=cfg["refit"]["max_epochs"],
                    patience=cfg["refit"]["patience"], metric=metric, objective=cfg["hpo"]["objective"],
                    progress_desc=f"refit {backbone}", threads=threads, state_dir=state_dir,
                    checkpoint_cfg=cfg["checkpoints"], policy=cfg)
        y_val = prepared.labels(va)
        thresholds = tune_thresholds(y_val, res.val_probs)
        manifest = save_checkpoint(model_dir, res.model, res.tokenizer, backbone_spec=spec,
                                   train_cfg=tcfg, meta={**ids, "stage": "refit", "best_epoch": res.best_epoch,
                                                         "thresholds": dict(zip(SYMPTOMS, thresholds))})
        metrics = {
            **ids,
            "best_epoch": res.best_epoch,
            "history": res.history,
            "train_seconds": res.train_seconds,
            "device": describe(),
            "n_train": len(tr), "n_validation": len(va),
            "validation": {"split": "validation", "at_0.5": multilabel_metrics(y_val, res.val_probs),
                           "at_tuned_thresholds": multilabel_metrics(y_val, res.val_probs, thresholds)},
            "thresholds": {"split": "validation", "values": dict(zip(SYMPTOMS, thresholds))},
            "objective": {**cfg["hpo"]["objective"], "metric": metric, "best_value": res.best_score},
            "config": tcfg,
            "code_version": code_version(),
            "resumed_from_epoch": res.resumed_from,
        }
        for h in res.history:
            tracker.log_metrics(run, {k: v for k, v in h.items() if k != "epoch"}, step=h["epoch"])
        if "evidence" in res.val_metrics:
            metrics["validation"]["evidence"] = res.val_metrics["evidence"]
            tracker.log_metrics(run, {f"validation_evidence_{k}": v for k, v in res.val_metrics["evidence"].items()
                                      if isinstance(v, float)})
        tracker.log_metrics(run, {f"validation_{metric}": metrics["validation"]["at_0.5"][metric],
                                  "best_epoch": res.best_epoch})
        write_json(metrics_path, metrics)
    release(state_dir, metrics_path)
    tracker.close()
    log.info("refit %s: best epoch %d, validation %s %.4f; %d files in checkpoint", trial_key, res.best_epoch,
             metric, metrics["validation"]["at_0.5"][metric], len(manifest["files"]))
    return metrics


# -- benchmark -----------------------------------------------------------------------
def benchmark(cfg: Mapping, *, model_dir: str, trial_key: str, backbone: str, out: str,
              threads: int | None = None) -> dict:
    from workflow_lib.benchmark import run_benchmark

    tracker = Tracker(cfg)
    threads = cfg["benchmark"]["threads"] or threads
    ids = {"backbone": backbone, "trial_key": trial_key}
    with tracker.run("benchmark", ids, params={"benchmark": cfg["benchmark"]}) as run:
        result = run_benchmark(model_dir, cfg["benchmark"], threads=threads, extra=ids)
        for row in result["results"]:
            tag = f"bs{row['batch_size']}_len{row['seq_length']}"
            tracker.log_metrics(run, {f"p95_ms_{tag}": row["latency_ms"]["p95"],
                                      f"throughput_{tag}": row["throughput_per_s"]})
        write_json(out, result, kind="benchmark")
    tracker.close()
    return result


# -- selection -----------------------------------------------------------------------
def objective_label(hpo: Mapping) -> str:
    """'macro_f1', or e.g. '0.5 x macro_f1 + 0.5 x evidence token_f1' when evidence is weighed."""
    o = hpo["objective"]
    if not o["evidence_weight"]:
        return hpo["metric"]
    total = o["criteria_weight"] + o["evidence_weight"]
    return (f"{o['criteria_weight'] / total:g} x {hpo['metric']} + "
            f"{o['evidence_weight'] / total:g} x evidence {o['evidence_metric']}")


def selection(cfg: Mapping, *, summaries: list[str], benchmarks: Mapping[str, str], baseline_path: str | None,
              selection_key: str, out_json: str, out_html: str) -> dict:
    from workflow_lib.report_html import render_selection_html
    from workflow_lib.selection import select

    tracker = Tracker(cfg)
    plan = Plan(cfg, main_process=False)
    cands, variants = plan.candidates(summaries)
    summ = [read_json(v["summary"]) for v in variants if v["compared"]]
    if plan.selection_key(cands) != selection_key:
        raise RuntimeError(f"selection key {selection_key} does not match the candidates on disk; rerun snakemake")
    for c in cands:
        c["benchmark"] = read_json(benchmarks[c["trial_key"]])
    base = read_json(baseline_path) if baseline_path and cfg["selection"]["baseline"] else None
    report = select(cands, cfg["selection"], baseline=base, metric=cfg["hpo"]["metric"],
                    objective=objective_label(cfg["hpo"]))
    report["selection_key"] = selection_key
    report["lineage"] = {"data_key": summ[0]["data_key"] if summ else None,
                         "studies": [{k: s[k] for k in ("backbone", "study_key", "variant")} for s in summ]}
    report["variants"] = variants
    report["code_version"] = code_version()
    report["html"] = Path(out_html).name
    validate_report("selection_report", report)
    Path(out_html).parent.mkdir(parents=True, exist_ok=True)
    Path(out_html).write_text(render_selection_html(report, summ), encoding="utf-8")
    write_json(out_json, report, kind="selection_report")
    with tracker.run("selection", {"selection_key": selection_key}) as run:
        sel = report["selected"]
        tracker.set_tags(run, {"selected.backbone": sel["backbone"], "selected.trial_key": sel["trial_key"]})
        tracker.log_metrics(run, {"selected_cv_mean": sel["cv_mean"]})
        tracker.log_artifact(run, out_html)
    tracker.close()
    log.info("selected %s trial %s: %s", sel["backbone"], sel["trial_key"], report["reason"])
    return report


# -- final ---------------------------------------------------------------------------
def _test_metrics(pred, records, thresholds) -> dict:
    """Criteria at the tuned thresholds and at 0.5, evidence once (it has no per-symptom threshold)."""
    from workflow_lib.examples import post_labels
    from workflow_lib.metrics import multilabel_metrics

    tuned = pred.metrics(records, thresholds)
    out = {"test": tuned["criteria"], "test_at_0.5": multilabel_metrics(post_labels(records), pred.probs, 0.5)}
    if "evidence" in tuned:
        out["evidence"] = tuned["evidence"]
    return out


def final(cfg: Mapping, *, selection_path: str, summary_path: str, refit_metrics_path: str, data_dir: str,
          final_key: str, model_dir: str, report_path: str, co_best_refits: Mapping[str, Mapping] | None = None,
          threads: int | None = None) -> dict:
    """Train the selected configuration on train+validation; evaluate once on test.

    ``co_best_refits`` maps the trial key of every candidate tied with the selected one (within
    selection.tie_tolerance) to its refit ``{"model_dir", "metrics"}``; those checkpoints are
    scored (at their own tuned thresholds) on the same test read, one entry each under ``co_best``.
    The training state goes to ``state/`` beside ``model_dir`` (resumed by a rerun, removed once the
    report is written).
    """
    from workflow_lib.checkpoint import load_checkpoint, manifest_digest, save_checkpoint
    from workflow_lib.data.prepare import load_prepared
    from workflow_lib.hpo import best_trial_config
    from workflow_lib.retention import release
    from workflow_lib.training import predict, train

    tracker = Tracker(cfg)
    sel_report = read_json(selection_path)
    sel = sel_report["selected"]
    summary = read_json(summary_path)
    refit_metrics = read_json(refit_metrics_path)
    backbone, trial_key = sel["backbone"], sel["trial_key"]
    spec = cfg["encoders"][backbone]
    tcfg = best_trial_config(cfg, summary, trial_key)
    epochs = cfg["final"]["epochs"] or refit_metrics["best_epoch"]
    thresholds = [refit_metrics["thresholds"]["values"][s] for s in SYMPTOMS]
    prepared = load_prepared(data_dir)
    fit_ids = prepared.splits["train"] + prepared.splits["validation"]
    test_ids = prepared.splits["test"]
    lineage = {"data_key": summary["data_key"], "study_key": summary["study_key"], "trial_key": trial_key,
               "selection_key": sel_report["selection_key"], "final_key": final_key,
               "variant": int(summary["variant"]), "backbone": backbone, "code_version": code_version()}
    ids = {k: v for k, v in lineage.items() if k != "code_version"}
    state_dir = str(Path(model_dir).parent / "state")
    if not resumes_training(cfg, "final") and release(state_dir):  # force_new: a fresh start, not a resume
        log.info("run.mode.final is force_new: the interrupted training state in %s was discarded", state_dir)
    with tracker.run("final", ids, params={"config": tcfg, "epochs": epochs}) as run:
        t0 = time.perf_counter()
        res = train(spec, tcfg, prepared.of(fit_ids), epochs=epochs, progress_desc=f"final {backbone}",
                    threads=threads, state_dir=state_dir, checkpoint_cfg=cfg["checkpoints"], policy=cfg)
        seconds = time.perf_counter() - t0
        save_checkpoint(model_dir, res.model, res.tokenizer, backbone_spec=spec, train_cfg=tcfg,
                        meta={**lineage, "stage": "final", "epochs": epochs,
                              "thresholds": dict(zip(SYMPTOMS, thresholds))})
        # The one and only read of the test split: the final model and every co-best refit checkpoint.
        test_records = prepared.of(test_ids)
        pred = predict(res.model, res.tokenizer, test_records, tcfg, max_length=spec["max_length"])
        co_best = []
        tied = {c["trial_key"]: c for c in sel_report.get("co_best", [])}
        for tkey, refit_paths in sorted((co_best_refits or {}).items()):
            path = refit_paths["model_dir"]
            model, tok, info = load_checkpoint(path)
            cand = tied[tkey]
            cthr = [read_json(refit_paths["metrics"])["thresholds"]["values"][s] for s in SYMPTOMS]
            cpred = predict(model, tok, test_records, info["train_cfg"], max_length=info["backbone_spec"]["max_length"])
            co_best.append({**{k: cand[k] for k in ("backbone", "study_key", "variant", "trial_key", "cv_mean")},
                            "checkpoint": {"path": str(path), "manifest_sha256": info["manifest_sha256"],
                                           "stage": "refit (train split only)"},
                            "metrics": _test_metrics(cpred, test_records, cthr)})
        report = {
            "report_version": 2,
            "final_key": final_key,
            "split": "test",
            "n_test_posts": len(test_ids),
            "task": {"input_format": tcfg["input_format"], "evidence_task": tcfg["evidence_task"],
                     "objective": {**cfg["hpo"]["objective"], "metric": cfg["hpo"]["metric"]}},
            "selected": {"backbone": backbone, "trial_key": trial_key, "study_key": summary["study_key"],
                         "variant": int(summary["variant"]), "selection_key": sel_report["selection_key"],
                         "params": sel["params"]},
            "training": {"trained_on": ["train", "validation"], "n_posts": len(fit_ids), "epochs": epochs,
                         "device": describe(),
                         "seconds": seconds, "resumed_from_epoch": res.resumed_from},
            "thresholds": {"source": "tuned per symptom on the refit model's validation predictions",
                           "split": "validation", "values": dict(zip(SYMPTOMS, thresholds))},
            "metrics": _test_metrics(pred, test_records, thresholds),
            "co_best": co_best,
            "lineage": lineage,
            "checkpoint": {"path": str(model_dir), "manifest_sha256": manifest_digest(model_dir)},
            "library_versions": library_versions(),
            "created_at": _now(),
        }
        m = report["metrics"]["test"]
        for h in res.history:  # just before the report: a rerun after a kill logs each epoch once
            tracker.log_metrics(run, {"train_loss": h["train_loss"]}, step=h["epoch"])
        tracker.log_metrics(run, {"test_macro_f1": m["macro_f1"], "test_micro_f1": m["micro_f1"],
                                  "test_accuracy": m["accuracy"]})
        if "evidence" in report["metrics"]:
            tracker.log_metrics(run, {f"test_evidence_{k}": v for k, v in report["metrics"]["evidence"].items()
                                      if isinstance(v, float)})
        write_json(report_path, report, kind="evaluation_report")
    release(state_dir, report_path)
    tracker.close()
    log.info("final %s: test macro-F1 %.4f, micro-F1 %.4f (n=%d)%s", backbone, m["macro_f1"], m["micro_f1"],
             len(test_ids), f"; {len(co_best)} co-best checkpoint(s) also scored" if co_best else "")
    return report

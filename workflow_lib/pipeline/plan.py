"""What the workflow computes for a config: keys and target paths, for rules/common.smk.

The Snakefile asks this module, and only this module, which data key, study keys, variants,
candidates and final key a config leads to, and which file the predict target reads. Each value
is computed once per process (the variant in particular: scanned from disk once, so force_new
yields exactly one new variant per invocation).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

from workflow_lib.config import Config, Encoder, keys
from workflow_lib.data.loader import source_fingerprint
from workflow_lib.devices import gpu_count
from workflow_lib.persistence.paths import Layout, existing_variants
from workflow_lib.persistence.reports import read_json
from workflow_lib.pipeline.runmode import study_variant
from workflow_lib.shipping.predictor import PredictError


class Plan:
    def __init__(self, cfg: Config, *, main_process: bool = True):
        self.cfg = cfg
        self.layout = Layout(cfg.results_dir)
        self.main_process = main_process
        self._variants: dict[str, int] = {}

    @cached_property
    def fingerprint(self) -> dict:
        return source_fingerprint(self.cfg.data)

    @cached_property
    def data_key(self) -> str:
        return keys.data_key(self.fingerprint, self.cfg.data)

    def spec(self, backbone: str) -> Encoder:
        return self.cfg.encoders[backbone]

    def study_key(self, backbone: str) -> str:
        return keys.study_key(self.data_key, self.spec(backbone), self.cfg.training, self.cfg.hpo)

    def variant(self, backbone: str) -> int:
        if backbone not in self._variants:
            found = existing_variants(self.layout.backbone_dir(backbone))
            self._variants[backbone] = study_variant(
                self.cfg.run, found, self.study_key(backbone), main_process=self.main_process
            )
        return self._variants[backbone]

    def studies(self) -> list[dict]:
        """The studies this config runs, one per backbone: backbone, study_key, variant, summary path."""
        out = []
        for b in self.cfg.backbones:
            sk, v = self.study_key(b), self.variant(b)
            out.append({"backbone": b, "study_key": sk, "variant": v, "summary": self.layout.study_summary(b, sk, v)})
        return out

    def earlier_variants(self) -> list[dict]:
        """Other variants of this config's backbones on disk that selection also compares
        (run.benchmark_all_variants with benchmark_strategy best_per_variant): finished studies only
        (they have a summary); never rerun - no rule produces their summaries."""
        run = self.cfg.run
        if not run.benchmark_all_variants or run.benchmark_strategy == "latest_only":
            return []
        current = {(s["backbone"], s["variant"]) for s in self.studies()}
        out = []
        for b in self.cfg.backbones:
            for v, sk in existing_variants(self.layout.backbone_dir(b)):
                path = self.layout.study_summary(b, sk, v)
                if (b, v) not in current and os.path.exists(path):
                    out.append({"backbone": b, "study_key": sk, "variant": v, "summary": path})
        return out

    def variant_pattern(self) -> str:
        """Regex for the {variant} wildcard of the HPO rules: only this invocation's variants."""
        return "|".join(sorted({str(s["variant"]) for s in self.studies()}))

    @property
    def gpus_per_job(self) -> int:
        """The gpu resource of a training job: 1 on a machine with GPUs, else 0."""
        return 1 if gpu_count() else 0

    def n_workers(self) -> int:
        return self.cfg.hpo.n_workers

    def refit_key(self, trial_key: str) -> str:
        h = self.cfg.hpo
        return keys.refit_key(trial_key, self.cfg.refit, h.metric, h.objective, self.cfg.thresholds)

    def fold_metrics(self, candidate: Mapping) -> list[str]:
        """The metrics.json of every CV fold of a candidate's trial in its study (each holds the fold's
        out-of-fold probabilities, which the refit chooses the thresholds on)."""
        study_dir = self.layout.study_dir(candidate["backbone"], candidate["study_key"], candidate["variant"])
        return [Layout.fold_metrics(study_dir, candidate["trial_key"], k) for k in range(self.cfg.data.n_folds)]

    def selection_key(self, candidates: list[Mapping]) -> str:
        ident = [{k: c[k] for k in ("backbone", "study_key", "variant", "trial_key")} for c in candidates]
        return keys.selection_key(ident, self.cfg.selection, self.cfg.benchmark)

    def final_key(self, trial_key: str, co_best: list[str] = ()) -> str:
        c = self.cfg
        return keys.final_key(trial_key, self.data_key, c.final, c.refit, c.thresholds, c.evaluation, co_best)

    def final_key_of(self, selection_report: Mapping) -> str:
        """The final key a selection report leads to: its selected trial with the trials tied with it."""
        co_best = [c["trial_key"] for c in selection_report["co_best"]]
        return self.final_key(selection_report["selected"]["trial_key"], co_best)

    def predict_input(self) -> str:
        """The predict target's input file (config ``predict_input``); a clear error when unset or missing."""
        path = self.cfg.predict_input
        if not path:
            raise PredictError(
                "the predict target needs the file of posts to predict: pass --config "
                "predict_input=PATH (a CSV or JSONL file with post_id and text, e.g. ReDSM5's posts.csv)"
            )
        if not Path(path).is_file():
            raise PredictError(
                f"predict_input: {path!r} is not a file; pass --config predict_input=PATH with an "
                f"existing CSV or JSONL file of posts (post_id, text)"
            )
        return path

    def training_threads(self, cores: int) -> int:
        """Threads per training job: share the cores among the jobs that can run side by side."""
        parallel = max(1, len(self.cfg.backbones) * self.n_workers())
        return max(1, cores // parallel)

    def candidates(self, summary_paths: list[str]) -> tuple[list[dict], list[dict]]:
        """(selection candidates, every variant compared) from study summaries on disk.

        A variant is comparable when it was scored on the same data (data_key) with the same
        objective as this config; others are listed with the reason they were left out.
        """
        h = self.cfg.hpo
        want = {"data_key": self.data_key, "metric": h.metric, "objective": dict(h.objective)}
        summaries, variants = [], []
        for path in summary_paths:
            s = read_json(path)
            row = {
                "backbone": s["backbone"],
                "study_key": s["study_key"],
                "variant": int(s["variant"]),
                "best_trial_key": (s.get("best_trial") or {}).get("trial_key"),
                "best_cv_mean": (s.get("best_trial") or {}).get("mean"),
                "summary": str(path),
            }
            differs = [k for k in want if s.get(k) != want[k]]
            if differs:
                row["compared"], row["reason"] = False, f"different {', '.join(differs)} than this config"
            elif not s.get("best_trial"):
                row["compared"], row["reason"] = False, "no completed trial"
            else:
                row["compared"], row["reason"] = True, "best trial refit and benchmarked"
                summaries.append(s)
            variants.append(row)
        cands = candidates_from_summaries(summaries)
        for c in cands:
            c["refit_key"] = self.refit_key(c["trial_key"])
        return cands, variants


def candidates_from_summaries(summaries: list[Mapping]) -> list[dict]:
    """The best trial of each study summary (and the trials tied with it), as selection candidates."""
    out = []
    for s in summaries:
        best = s.get("best_trial")
        if not best:
            continue
        for t in [best, *best.get("co_best", [])]:
            out.append(
                {
                    "backbone": s["backbone"],
                    "study_key": s["study_key"],
                    "variant": s["variant"],
                    "trial_key": t["trial_key"],
                    "cv_mean": t["mean"],
                    "cv_std": t["std"],
                    "fold_scores": t["fold_scores"],
                    "params": t["params"],
                    "cv_criteria_mean": t.get("criteria_mean"),
                    "cv_criteria_fold_scores": t.get("criteria_fold_scores"),
                }
            )
    return out

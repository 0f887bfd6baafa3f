"""What the workflow computes for a config: keys and target paths, for rules/common.smk.

The Snakefile asks this module, and only this module, which data key, study
keys, variants, candidates and final key a config leads to. Each value is
computed once per process (the variant in particular: scanned from disk
once, so force_new yields exactly one new variant per invocation).
"""
from __future__ import annotations

from functools import cached_property
from typing import Mapping

from workflow_lib import keys
from workflow_lib.paths import Layout
from workflow_lib.runmode import study_variant


class Plan:
    def __init__(self, cfg: Mapping):
        self.cfg = cfg
        self.layout = Layout(cfg["results_dir"])
        self._variants: dict[str, int] = {}

    @cached_property
    def fingerprint(self) -> dict:
        from workflow_lib.data.loader import source_fingerprint

        return source_fingerprint(self.cfg["data"])

    @cached_property
    def data_key(self) -> str:
        return keys.data_key(self.fingerprint, self.cfg["data"])

    def spec(self, backbone: str) -> dict:
        return self.cfg["encoders"][backbone]

    def study_key(self, backbone: str) -> str:
        c = self.cfg
        return keys.study_key(self.data_key, self.spec(backbone), c["training"], c["hpo"])

    def variant(self, backbone: str) -> int:
        if backbone not in self._variants:
            root = self.layout.study_root(backbone, self.study_key(backbone))
            self._variants[backbone] = study_variant(self.cfg, root)
        return self._variants[backbone]

    def studies(self) -> list[dict]:
        """One entry per backbone: backbone, study_key, variant, summary path."""
        out = []
        for b in self.cfg["backbones"]:
            sk, v = self.study_key(b), self.variant(b)
            out.append({"backbone": b, "study_key": sk, "variant": v,
                        "summary": self.layout.study_summary(b, sk, v)})
        return out

    def n_workers(self) -> int:
        return 1

    def selection_key(self, candidates: list[Mapping]) -> str:
        ident = [{k: c[k] for k in ("backbone", "study_key", "variant", "trial_key")} for c in candidates]
        return keys.selection_key(ident, self.cfg["selection"], self.cfg["benchmark"])

    def final_key(self, trial_key: str, co_best: list[str] = ()) -> str:
        return keys.final_key(trial_key, self.data_key, self.cfg["final"], self.cfg["refit"], co_best)

    def training_threads(self, cores: int) -> int:
        """Threads per training job: share the cores among the jobs that can run side by side."""
        parallel = max(1, len(self.cfg["backbones"]) * self.n_workers())
        return max(1, cores // parallel)


def candidates_from_summaries(summaries: list[Mapping]) -> list[dict]:
    """The best trial of each study summary (and the trials tied with it), as selection candidates."""
    out = []
    for s in summaries:
        best = s.get("best_trial")
        if not best:
            continue
        for t in [best, *best.get("co_best", [])]:
            out.append({"backbone": s["backbone"], "study_key": s["study_key"], "variant": s["variant"],
                        "trial_key": t["trial_key"], "cv_mean": t["mean"], "cv_std": t["std"],
                        "fold_scores": t["fold_scores"], "params": t["params"],
                        "cv_criteria_mean": t.get("criteria_mean")})
    return out

"""Every path of the output tree, built from keys (the Layout methods below).

The modules that write the results take their paths from here. What they still join themselves
are names inside a folder that a Layout path gave them and that the writing module owns: the files
of a checkpoint or training state (learning/checkpoint.py, learning/resume.py: manifest.json, epoch_{e}/,
...), the model card inside a model folder and the data card inside a data folder (pipeline/stages.py), a
heartbeat file inside heartbeats/ (search/hpo.py), a spool file inside the spool folder (tracking/tracker.py).

    {results}/data/{data_key}/            posts.jsonl, splits.json, folds.json, data_card.json
    {results}/hpo/{backbone}/{study_key}/v{n}/
        study.json (the study's definition), study.journal, study_summary.json, workers/{w}.done,
        heartbeats/{trial_number}, .claim.lock
        trials/{trial_key}/fold_{k}/metrics.json, trials/{trial_key}/fold_{k}/state/ (while training)
    {results}/baseline/{data_key}/baseline.json, baseline_sentences.json   (post- and sentence-level TF-IDF)
    {results}/refit/{refit_key}/          model/, metrics.json, state/ (while training)
    {results}/benchmark/{refit_key}/benchmark.json

Variant numbers count the studies of one backbone (v1, v2, ... across study keys), so a
second study beside the first - another search space, or a forced new one - is v{n+1}.
    {results}/selection/{selection_key}/  selection_report.json, selection_report.html, plots/*.png
    {results}/final/{final_key}/          model/ (with manifest.json and the model card README.md),
                                          test_predictions.jsonl, evaluation_report.html, plots/*.png,
                                          evaluation_report.json
    {results}/predictions/{final_key}/{input_digest}/   predictions.jsonl, predictions.json (the predict rule)
    {results}/logs/{rule}/...log          one log per job
    {results}/.force/{stage}              force tokens (run.mode ... force_new)
    {results}/mlflow.db, mlartifacts/, .tracking/spool/   the default MLflow store and the tracking spool
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VARIANT_RE = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class Layout:
    root: str = "results"

    # -- data -----------------------------------------------------------------
    def data_dir(self, data_key: str) -> str:
        return f"{self.root}/data/{data_key}"

    def data_file(self, data_key: str, name: str) -> str:
        """name: posts.jsonl | splits.json | folds.json | data_card.json"""
        return f"{self.data_dir(data_key)}/{name}"

    # -- hpo ------------------------------------------------------------------
    def backbone_dir(self, backbone: str) -> str:
        return f"{self.root}/hpo/{backbone}"

    def study_root(self, backbone: str, study_key: str) -> str:
        return f"{self.backbone_dir(backbone)}/{study_key}"

    def study_dir(self, backbone: str, study_key: str, variant: int | str) -> str:
        return f"{self.study_root(backbone, study_key)}/v{variant}"

    def study_storage(self, backbone: str, study_key: str, variant: int | str) -> str:
        return f"{self.study_dir(backbone, study_key, variant)}/study.journal"

    def study_definition(self, backbone: str, study_key: str, variant: int | str) -> str:
        return f"{self.study_dir(backbone, study_key, variant)}/study.json"

    def study_summary(self, backbone: str, study_key: str, variant: int | str) -> str:
        return f"{self.study_dir(backbone, study_key, variant)}/study_summary.json"

    def worker_done(self, backbone: str, study_key: str, variant: int | str, worker: int | str) -> str:
        return f"{self.study_dir(backbone, study_key, variant)}/workers/{worker}.done"

    @staticmethod
    def fold_metrics(study_dir: str, trial_key: str, fold: int) -> str:
        return f"{study_dir}/trials/{trial_key}/fold_{fold}/metrics.json"

    @staticmethod
    def fold_state(study_dir: str, trial_key: str, fold: int) -> str:
        """The fold's epoch states while it trains (removed once its metrics exist)."""
        return f"{study_dir}/trials/{trial_key}/fold_{fold}/state"

    @staticmethod
    def run_state(model_dir: str) -> str:
        """The epoch states of the run that writes ``model_dir`` (refit/{key}/state, final/{key}/state)."""
        return f"{Path(model_dir).parent}/state"

    def fold_metrics_elsewhere(self, backbone: str, trial_key: str, fold: int) -> list[str]:
        """The fold's metrics.json in every study of ``backbone`` on disk (a trial key names the data,
        the backbone and the trained configuration, so any of them is the same trained fold)."""
        root = Path(self.backbone_dir(backbone))
        return sorted(str(p) for p in root.glob(f"*/v*/trials/{trial_key}/fold_{fold}/metrics.json"))

    def heartbeats_dir(self, backbone: str, study_key: str, variant: int | str) -> str:
        return f"{self.study_dir(backbone, study_key, variant)}/heartbeats"

    def heartbeat(self, backbone: str, study_key: str, variant: int | str, trial_number: int) -> str:
        return f"{self.heartbeats_dir(backbone, study_key, variant)}/{trial_number}"

    def study_lock(self, backbone: str, study_key: str, variant: int | str) -> str:
        return f"{self.study_dir(backbone, study_key, variant)}/.claim.lock"

    # -- downstream -----------------------------------------------------------
    def baseline(self, data_key: str) -> str:
        """The post-level TF-IDF baseline's CV scores (learning.baseline.tfidf_baseline)."""
        return f"{self.root}/baseline/{data_key}/baseline.json"

    def baseline_sentences(self, data_key: str) -> str:
        """The sentence-level TF-IDF baseline's CV scores (learning.baseline.tfidf_sentence_baseline)."""
        return f"{self.root}/baseline/{data_key}/baseline_sentences.json"

    def baselines(self, data_key: str) -> list[str]:
        """Every baseline's CV scores: post level, then sentence level."""
        return [self.baseline(data_key), self.baseline_sentences(data_key)]

    def refit_dir(self, refit_key: str) -> str:
        return f"{self.root}/refit/{refit_key}"

    def refit_model_dir(self, refit_key: str) -> str:
        return f"{self.refit_dir(refit_key)}/model"

    def refit_manifest(self, refit_key: str) -> str:
        return f"{self.refit_model_dir(refit_key)}/manifest.json"

    def refit_metrics(self, refit_key: str) -> str:
        return f"{self.refit_dir(refit_key)}/metrics.json"

    def benchmark(self, refit_key: str) -> str:
        return f"{self.root}/benchmark/{refit_key}/benchmark.json"

    def selection_dir(self, selection_key: str) -> str:
        return f"{self.root}/selection/{selection_key}"

    def selection_report(self, selection_key: str) -> str:
        return f"{self.selection_dir(selection_key)}/selection_report.json"

    def selection_html(self, selection_key: str) -> str:
        return f"{self.selection_dir(selection_key)}/selection_report.html"

    def selection_plots(self, selection_key: str) -> str:
        """Folder of the selection page's plots as PNG files."""
        return f"{self.selection_dir(selection_key)}/plots"

    def final_dir(self, final_key: str) -> str:
        return f"{self.root}/final/{final_key}"

    def evaluation_report(self, final_key: str) -> str:
        return f"{self.final_dir(final_key)}/evaluation_report.json"

    def final_model_dir(self, final_key: str) -> str:
        return f"{self.final_dir(final_key)}/model"

    def final_manifest(self, final_key: str) -> str:
        return f"{self.final_model_dir(final_key)}/manifest.json"

    def model_card(self, final_key: str) -> str:
        """The model card, inside the model folder (covered by its manifest)."""
        return f"{self.final_model_dir(final_key)}/README.md"

    def evaluation_html(self, final_key: str) -> str:
        return f"{self.final_dir(final_key)}/evaluation_report.html"

    def test_predictions(self, final_key: str) -> str:
        """One JSON row per test post: gold labels, probabilities, decisions, gold and predicted spans."""
        return f"{self.final_dir(final_key)}/test_predictions.jsonl"

    def final_plots(self, final_key: str) -> str:
        """Folder of the evaluation page's plots as PNG files."""
        return f"{self.final_dir(final_key)}/plots"

    # -- predictions of the selected model on a given file ---------------------
    def predictions_dir(self, final_key: str, input_digest: str) -> str:
        """``input_digest``: keys.input_digest of the input file's content."""
        return f"{self.root}/predictions/{final_key}/{input_digest}"

    def predictions(self, final_key: str, input_digest: str) -> str:
        return f"{self.predictions_dir(final_key, input_digest)}/predictions.jsonl"

    def predictions_summary(self, final_key: str, input_digest: str) -> str:
        return f"{self.predictions_dir(final_key, input_digest)}/predictions.json"

    def log(self, rule: str, name: str = "") -> str:
        return f"{self.root}/logs/{rule}/{name or rule}.log"

    def mlflow_db(self) -> str:
        return f"{self.root}/mlflow.db"

    def mlartifacts(self) -> str:
        return f"{self.root}/mlartifacts"

    def tracking_spool(self) -> str:
        return f"{self.root}/.tracking/spool"

    def force_token(self, stage: str) -> str:
        return f"{self.root}/.force/{stage}"


def existing_variants(backbone_dir: str | Path) -> list[tuple[int, str]]:
    """(variant number, study key) of every study of one backbone on disk, by variant number."""
    root = Path(backbone_dir)
    if not root.is_dir():
        return []
    found = []
    for study in root.iterdir():
        if not study.is_dir():
            continue
        for child in study.iterdir():
            m = VARIANT_RE.match(child.name)
            if m and child.is_dir():
                found.append((int(m.group(1)), study.name))
    return sorted(found)

"""Every content hash of the pipeline. Nothing else in the project hashes config.

A key is sha256 over canonical JSON (sorted keys, no whitespace, floats as
repr) of exactly the inputs that change the stage's result, cut to 12 hex
digits. Keys are the cache: same inputs, same directory, no recomputation.

The config arguments are resolved sections (workflow_lib.config.sections), read by attribute; a section
hashes as the plain dict the schema completed, so a key does not depend on the section's class.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workflow_lib.config.search_space import effective_config
from workflow_lib.symptoms import DESCRIPTIONS

if TYPE_CHECKING:
    from workflow_lib.config.sections import (
        Benchmark,
        Data,
        Encoder,
        Evaluation,
        Final,
        Hpo,
        Objective,
        Refit,
        Selection,
        Thresholds,
        Training,
    )

KEY_LENGTH = 12

# The shape of what data/prepare.py writes (posts.jsonl, splits.json, folds.json, data_card.json). It enters the
# data key, so a results/data/{data_key}/ folder written by older code is never reused by newer code that reads
# another shape. Bump it whenever prepare.py's output changes (prepare.py may record it in the data card).
# 2: posts carry their sentences and sentence labels; status-0 rows are aligned like evidence.
PREPARED_FORMAT = 2


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(obj: Any, length: int = KEY_LENGTH) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:length]


def _data_settings(data_cfg: Data) -> dict:
    """The preprocessing settings that shape prepared data (the source is covered by the fingerprint).

    data.strict is not one (it refuses defects, never changes what is prepared); every split setting is,
    the protocol included."""
    return {
        "alignment_threshold": data_cfg.alignment_threshold,
        "max_post_chars": data_cfg.max_post_chars,
        "split": dict(data_cfg.split),
        "n_folds": data_cfg.n_folds,
    }


def data_key(fingerprint: Mapping, data_cfg: Data) -> str:
    """Hash of the data source's fingerprint, the preprocessing settings and the prepared format
    (:data:`PREPARED_FORMAT`)."""
    return digest(
        {
            "kind": "data",
            "format": PREPARED_FORMAT,
            "source": dict(fingerprint),
            "settings": _data_settings(data_cfg),
        }
    )


def _model_identity(backbone_spec: Encoder) -> dict:
    # Everything in the spec changes the trained model (source, weights, tokenizer, max_length).
    return dict(backbone_spec)


def trial_key(dkey: str, backbone_spec: Encoder, trial_config: Training) -> str:
    """Hash of one trained configuration; independent of the study that proposed it.

    ``trial_config`` is the trial's resolved training configuration (search_space.trial_training_config:
    the fixed settings with the trial's parameters merged in, seed included; it also holds the task
    shape: input format, evidence task, heads). Only the settings that change the trained model enter the key
    (search_space.effective_config), so an inert setting never forks a trial; the folds are
    fixed by ``dkey``.
    """
    config = effective_config(trial_config)
    payload = {"kind": "trial", "data": dkey, "backbone": _model_identity(backbone_spec), "config": config}
    if config["input_format"] == "binary_pairs":  # the pairs' second text is part of the input
        payload["descriptions"] = DESCRIPTIONS
    return digest(payload)


def study_key(dkey: str, backbone_spec: Encoder, training: Training, hpo_cfg: Hpo) -> str:
    """Hash of a study's definition: data, backbone, fixed settings, space, sampler, budget, objective."""
    return digest(
        {
            "kind": "study",
            "data": dkey,
            "backbone": _model_identity(backbone_spec),
            "training": dict(training),
            "search_space": hpo_cfg.search_space,
            "sampler": hpo_cfg.sampler,
            "pruner": hpo_cfg.pruner,
            "n_trials": hpo_cfg.n_trials,
            "metric": hpo_cfg.metric,
            "objective": hpo_cfg.objective,
        }
    )


def refit_key(tkey: str, refit_cfg: Refit, metric: str, objective: Objective, thresholds_cfg: Thresholds) -> str:
    """Hash of a refit: the trial's configuration, the refit settings, the objective it early-stops on and how
    its decision thresholds are chosen (the checkpoint carries them)."""
    return digest(
        {
            "kind": "refit",
            "trial": tkey,
            "refit": dict(refit_cfg),
            "metric": metric,
            "objective": dict(objective),
            "thresholds": dict(thresholds_cfg),
        }
    )


def selection_key(candidates: list[Mapping], selection_cfg: Selection, benchmark_cfg: Benchmark) -> str:
    """Hash of the candidate set (each backbone/variant's best trial) and the selection rule."""
    cands = sorted((dict(c) for c in candidates), key=canonical_json)
    return digest(
        {"kind": "selection", "candidates": cands, "selection": dict(selection_cfg), "benchmark": dict(benchmark_cfg)}
    )


def final_key(
    tkey: str,
    dkey: str,
    final_cfg: Final,
    refit_cfg: Refit,
    thresholds_cfg: Thresholds,
    evaluation_cfg: Evaluation,
    co_best: Sequence[str] = (),
) -> str:
    """Hash of the final report: the selected trial, the data, the final/refit settings, how the thresholds
    it decides at were chosen, the test evaluation's bootstrap, and the co-best trials whose refit checkpoints
    the report also scores (none: the key of a report without co-best entries)."""
    payload = {
        "kind": "final",
        "trial": tkey,
        "data": dkey,
        "final": dict(final_cfg),
        "refit": dict(refit_cfg),
        "thresholds": dict(thresholds_cfg),
        "evaluation": dict(evaluation_cfg),
    }
    if co_best:
        payload["co_best"] = sorted(co_best)
    return digest(payload)


def tensors_sha256(named: Iterable[tuple[str, Any]]) -> str:
    """sha256 over named tensors (name, dtype, shape and raw bytes, in the order given)."""
    import torch  # here, not at the top: the Snakefile imports this module and must start fast

    h = hashlib.sha256()
    for name, t in named:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def seed_from(*parts: Any) -> int:
    """A 64-bit seed derived from ``parts`` (stable across processes, unlike hash())."""
    return int(hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:16], 16)


def input_digest(path) -> str:
    """Key of a file to predict on (the predict rule's folder name): sha256 of its content, KEY_LENGTH hex."""
    return file_sha256(path)[:KEY_LENGTH]


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """Full sha256 of a file (manifests and data fingerprints)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()

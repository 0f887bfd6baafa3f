"""Inference of a trained classifier: criteria probabilities per post and evidence spans.

Every stage that reads a model's predictions goes through here: validation during training
(workflow_lib/learning/training.py), the held-out folds (search/hpo.py), the final test read
(pipeline/stages.py), the inference benchmark (pipeline/inference_benchmark.py) and the shipped
predictor (shipping/predictor.py). Posts become input rows through the one windowing path
(workflow_lib/learning/examples.py); rows run longest first in eval mode without gradients in the
given precision (workflow_lib/learning/precision.py), and window logits and spans are merged back
per post.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from workflow_lib.config import Training
from workflow_lib.learning.examples import Examples, build_examples, evaluate, post_probabilities
from workflow_lib.learning.precision import Precision
from workflow_lib.symptoms import SYMPTOMS


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """``batch``'s tensors on ``device`` (the batch itself on CPU)."""
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@dataclass
class Prediction:
    """Predictions for a list of post records."""

    examples: Examples
    row_probs: np.ndarray  # (rows, n_out) sigmoid probabilities
    probs: np.ndarray  # (posts, 9): criteria probabilities per post
    spans: list | None = None  # per row: predicted evidence character spans ([] = none)

    def metrics(self, records: Sequence[Mapping], thresholds: float | Sequence[float] = 0.5) -> dict:
        return evaluate(self.examples, records, self.row_probs, self.spans, thresholds)


def _predict_examples(model: nn.Module, ex: Examples, batch_size: int, threshold: float, precision: Precision):
    """(row probabilities (n, n_out), character spans per row or None); eval mode, no gradients.

    Rows go longest first (less padding; order restored) in batches of at most ``batch_size``
    windows (at least one row); a row's window spans are merged in its post (Examples.row_char_spans)."""
    n = len(ex)
    n_out = int(ex.targets.shape[1])
    with_spans = ex.has_evidence and getattr(model, "evidence_head", None) is not None
    if n == 0:
        return np.zeros((0, n_out), dtype=np.float32), ([] if with_spans else None)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = torch.argsort(ex.row_lengths(), descending=True, stable=True)
    out = torch.empty((n, n_out), dtype=torch.float32)
    window_spans: dict[int, list] = {}
    try:
        with torch.inference_mode():
            for idx in ex.row_batches(order, int(batch_size)):
                batch = to_device(ex.batch(idx), device)
                with precision.autocast():
                    res = model(**batch)
                out[idx] = torch.sigmoid(res["criteria"].float()).cpu()
                if with_spans:
                    decoded = model.evidence_head.decode(
                        res["evidence"], batch["eligible"], batch["sentence_ids"], threshold=threshold
                    )
                    window_spans.update(zip(ex.window_index(idx).tolist(), decoded))
    finally:
        model.train(was_training)
    return out.numpy(), (ex.row_char_spans(window_spans) if with_spans else None)


def predict_examples(
    model: nn.Module, ex: Examples, *, batch_size: int, evidence_threshold: float, precision: Precision
) -> Prediction:
    """Predict the rows of ``ex`` in ``precision`` (batches of at most ``batch_size`` windows)."""
    row_probs, spans = _predict_examples(model, ex, batch_size, evidence_threshold, precision)
    return Prediction(ex, row_probs, post_probabilities(ex, row_probs), spans)


def predict(
    model: nn.Module,
    tokenizer,
    records: Sequence[Mapping],
    train_cfg: Training,
    *,
    max_length: int,
    batch_size: int | None = None,
) -> Prediction:
    """Criteria probabilities per post (and evidence spans with the evidence task) for ``records``."""
    ex = build_examples(records, tokenizer, train_cfg, max_length)
    precision = Precision.for_device(train_cfg.precision, next(model.parameters()).device, training=False)
    return predict_examples(
        model,
        ex,
        batch_size=int(batch_size or train_cfg.eval_batch_size),
        evidence_threshold=train_cfg.evidence_threshold,
        precision=precision,
    )


def predict_proba(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    train_cfg: Training,
    *,
    max_length: int,
    batch_size: int | None = None,
) -> np.ndarray:
    """Criteria probabilities (n, 9) for bare post texts, in their order, read as the model was
    trained to read them (``train_cfg``: input format, long-post policy, precision)."""
    records = [
        {"post_id": str(i), "text": t if isinstance(t, str) else str(t), "labels": [0] * len(SYMPTOMS), "evidence": []}
        for i, t in enumerate(texts)
    ]
    return predict(
        model, tokenizer, records, train_cfg.replace(evidence_task=False), max_length=max_length, batch_size=batch_size
    ).probs

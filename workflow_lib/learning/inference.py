"""Inference of a trained classifier: criteria probabilities per post and evidence spans.

Every stage that reads a model's predictions goes through here: validation during training
(workflow_lib/learning/training.py), the held-out folds (search/hpo.py), the final test read
(pipeline/stages.py), the inference benchmark (pipeline/inference_benchmark.py) and the shipped
predictor (shipping/predictor.py). Posts become input rows through the one windowing path
(workflow_lib/learning/examples.py); rows run longest first in eval mode without gradients in the
given precision (workflow_lib/learning/precision.py), and window logits and spans are merged back
per post.

The sentence model (training.criteria_from: sentences) also gives every read sentence nine probabilities
(``Prediction.sentence_probs``); its decisions and its evidence come from them: a predicted symptom's evidence
is its sentences whose probability passes ``evidence_threshold`` (else its top sentence), as character spans
with the symptom and the score (``Prediction.evidence``, scope "symptom"). The evidence threshold is a
parameter of the prediction, to be tuned on posts the model did not train on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from workflow_lib.config import Training
from workflow_lib.learning.examples import Examples, build_examples, evaluate, post_probabilities, sentence_evidence
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
    sentence_probs: np.ndarray | None = None  # sentence model: (units, 9), examples.units (the read sentences)
    evidence_threshold: float = 0.5  # sentence model: the default threshold of its evidence

    @property
    def evidence_scope(self) -> str | None:
        """What a post's evidence belongs to: "symptom" (sentence model, binary_pairs spans), "post" (the
        symptom-agnostic span head of multi_label), None without evidence."""
        if self.sentence_probs is not None or (self.spans is not None and self.examples.input_format == "binary_pairs"):
            return "symptom"
        return "post" if self.spans is not None else None

    def metrics(
        self,
        records: Sequence[Mapping],
        thresholds: float | Sequence[float] = 0.5,
        evidence_threshold: float | None = None,
    ) -> dict:
        """Criteria metrics (at ``thresholds``) and, with evidence, evidence metrics; for the sentence model
        also sentence-level metrics (examples.evaluate), at ``evidence_threshold`` (None: the prediction's)."""
        if self.sentence_probs is None:
            return evaluate(self.examples, records, self.row_probs, self.spans, thresholds)
        return evaluate(
            self.examples,
            records,
            self.row_probs,
            thresholds=thresholds,
            sentence_probs=self.sentence_probs,
            evidence_threshold=self.evidence_threshold if evidence_threshold is None else evidence_threshold,
        )

    def _require_sentences(self, what: str) -> None:
        if self.sentence_probs is None:
            raise ValueError(f"{what} needs a model trained with training.criteria_from: sentences")

    def sentence_scores(self) -> list[list[dict]]:
        """Per post, every sentence the model read: ``{"sentence": index in the post, "start", "end",
        "probabilities": {SYMPTOM: p}}`` in sentence order (sentence model only)."""
        self._require_sentences("sentence scores")
        units, out = self.examples.units, []
        for i in range(len(self.examples)):
            rows = []
            for u in range(int(units.starts[i]), int(units.starts[i + 1])):
                if int(units.sentence[u]) < 0:
                    continue
                start, end = units.spans[u]
                probs = {s: float(self.sentence_probs[u, j]) for j, s in enumerate(SYMPTOMS)}
                rows.append({"sentence": int(units.sentence[u]), "start": start, "end": end, "probabilities": probs})
            out.append(rows)
        return out

    def evidence(
        self, thresholds: float | Sequence[float] = 0.5, evidence_threshold: float | None = None
    ) -> list[dict[str, list[dict]]]:
        """Per post, the evidence of each symptom predicted at ``thresholds`` (sentence model only):
        ``{SYMPTOM: [{"start", "end", "text", "score"}, ...]}``, the sentences whose probability for the
        symptom is >= ``evidence_threshold`` (None: the prediction's), else its top sentence
        (examples.sentence_evidence); scope "symptom"."""
        self._require_sentences("sentence evidence")
        found = sentence_evidence(
            self.examples,
            self.sentence_probs,
            self.probs,
            thresholds,
            self.evidence_threshold if evidence_threshold is None else evidence_threshold,
        )
        return [
            {
                symptom: [{"start": a, "end": b, "text": text[a:b], "score": p} for a, b, p in spans]
                for symptom, spans in post.items()
            }
            for text, post in zip(self.examples.texts, found)
        ]


def _predict_examples(model: nn.Module, ex: Examples, batch_size: int, threshold: float, precision: Precision):
    """(row probabilities (n, n_out), character spans per row or None, sentence probabilities (units, 9) or
    None); eval mode, no gradients.

    Rows go longest first (less padding; order restored) in batches of at most ``batch_size``
    windows (at least one row); a row's window spans are merged in its post (Examples.row_char_spans)."""
    n = len(ex)
    n_out = int(ex.targets.shape[1])
    with_spans = ex.has_evidence and getattr(model, "evidence_head", None) is not None
    units = ex.units
    sentences = torch.empty((len(units), n_out), dtype=torch.float32) if units is not None else None
    if n == 0:
        empty = sentences.numpy() if sentences is not None else None
        return np.zeros((0, n_out), dtype=np.float32), ([] if with_spans else None), empty
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
                if sentences is not None:
                    sentences[units.index(idx)] = torch.sigmoid(res["sentences"].float()).cpu()
                if with_spans:
                    decoded = model.evidence_head.decode(
                        res["evidence"], batch["eligible"], batch["sentence_ids"], threshold=threshold
                    )
                    window_spans.update(zip(ex.window_index(idx).tolist(), decoded))
    finally:
        model.train(was_training)
    return (
        out.numpy(),
        (ex.row_char_spans(window_spans) if with_spans else None),
        (sentences.numpy() if sentences is not None else None),
    )


def predict_examples(
    model: nn.Module, ex: Examples, *, batch_size: int, evidence_threshold: float, precision: Precision
) -> Prediction:
    """Predict the rows of ``ex`` in ``precision`` (batches of at most ``batch_size`` windows);
    ``evidence_threshold``: the span heads' decoding threshold, or the sentence model's evidence threshold."""
    row_probs, spans, sentence_probs = _predict_examples(model, ex, batch_size, evidence_threshold, precision)
    return Prediction(
        ex,
        row_probs,
        post_probabilities(ex, row_probs),
        spans,
        sentence_probs=sentence_probs,
        evidence_threshold=float(evidence_threshold),
    )


def predict(
    model: nn.Module,
    tokenizer,
    records: Sequence[Mapping],
    train_cfg: Training,
    *,
    max_length: int,
    batch_size: int | None = None,
    evidence_threshold: float | None = None,
) -> Prediction:
    """Criteria probabilities per post (and evidence spans with the evidence task; sentence probabilities and
    their evidence with criteria_from: sentences) for ``records``. ``evidence_threshold`` None:
    training.evidence_threshold (the sentence model's tuned threshold is the caller's to pass)."""
    ex = build_examples(records, tokenizer, train_cfg, max_length)
    precision = Precision.for_device(train_cfg.precision, next(model.parameters()).device, training=False)
    return predict_examples(
        model,
        ex,
        batch_size=int(batch_size or train_cfg.eval_batch_size),
        evidence_threshold=train_cfg.evidence_threshold if evidence_threshold is None else evidence_threshold,
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

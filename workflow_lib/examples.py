"""Model inputs and evaluation for both tasks and both input formats.

A prepared post record (data/prepare.py) becomes one input row (``multi_label``: the post,
nine criteria targets) or nine (``binary_pairs``: the post paired with each symptom's
description, one present/absent target; rows are post-major, symptoms in SYMPTOMS order).
With the evidence task each row also carries BIO tags over its post tokens, the sentence of
each token and the gold character spans: for ``multi_label`` every aligned evidence sentence
of the post, for ``binary_pairs`` those of the row's symptom. A row without spans teaches the
null prediction - but only when its evidence is complete (spans.evidence_is_complete): a row
with unaligned evidence, or a positive label without any evidence row, has unknown spans, so
it gets no evidence target in training and is left out of the evidence metrics.

Texts are tokenised once, right-padded; a batch is a slice cut to its longest row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from workflow_lib.symptoms import DESCRIPTIONS, SYMPTOMS

IGNORE = -100


@dataclass
class Examples:
    """Tokenised rows of one data set part (see module docstring)."""
    input_ids: torch.Tensor                      # (n, L) right-padded
    lengths: torch.Tensor                        # (n,)
    targets: torch.Tensor                        # (n, n_out) float 0/1
    n_posts: int
    input_format: str
    token_type_ids: torch.Tensor | None = None   # (n, L) for text pairs
    tags: torch.Tensor | None = None             # (n, L) BIO 0/1/2, IGNORE outside the post
    sentence_ids: torch.Tensor | None = None     # (n, L) post sentence of each token, -1 elsewhere
    eligible: torch.Tensor | None = None         # (n, L) bool: post tokens a span may cover
    complete: torch.Tensor | None = None         # (n,) bool: the row's gold spans are all its evidence
    offsets: list[list[tuple[int, int]]] = field(default_factory=list)  # per row (evidence task)
    texts: list[str] = field(default_factory=list)                      # post text of each row
    gold_spans: list[list[tuple[int, int]]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def has_evidence(self) -> bool:
        return self.tags is not None

    def batch(self, idx: torch.Tensor, training: bool = False) -> dict[str, torch.Tensor]:
        """Model inputs for the rows ``idx``, cut to their longest row (dynamic padding).

        ``training``: rows with incomplete evidence get no eligible token, so the evidence
        loss skips them (their spans are unknown, not empty)."""
        lengths = self.lengths[idx]
        width = int(lengths.max())
        out = {"input_ids": self.input_ids[idx, :width],
               "attention_mask": (torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)).long()}
        if self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids[idx, :width]
        if self.eligible is not None:
            eligible = self.eligible[idx, :width]
            sids = self.sentence_ids[idx, :width]
            if training:
                eligible = eligible & self.complete[idx].unsqueeze(1)
                sids = torch.where(eligible, sids, torch.full_like(sids, -1))
            out["eligible"], out["sentence_ids"] = eligible, sids
        return out

    def evidence_targets(self, idx: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tags[idx, :width], self.sentence_ids[idx, :width]


def _rows(records: Sequence[Mapping], input_format: str):
    """(post text, second text or None, targets, record, symptom or None) per row."""
    for r in records:
        if input_format == "binary_pairs":
            for j, s in enumerate(SYMPTOMS):
                yield r["text"], DESCRIPTIONS[s], [float(r["labels"][j])], r, s
        else:
            yield r["text"], None, [float(v) for v in r["labels"]], r, None


def build_examples(records: Sequence[Mapping], tokenizer, train_cfg: Mapping[str, Any], max_length: int) -> Examples:
    """Tokenise ``records`` for the input format and tasks of ``train_cfg`` (once per data set)."""
    from workflow_lib.data.align import split_sentences
    from workflow_lib.spans import char_spans_to_tags, evidence_char_spans, evidence_is_complete
    from workflow_lib.spans import sentence_ids as token_sentence_ids

    fmt = train_cfg["input_format"]
    evidence = bool(train_cfg["evidence_task"])
    rows = list(_rows(records, fmt))
    n_out = 1 if fmt == "binary_pairs" else len(SYMPTOMS)
    if not rows:
        return Examples(torch.zeros((0, 1), dtype=torch.long), torch.zeros(0, dtype=torch.long),
                        torch.zeros((0, n_out)), 0, fmt)
    firsts = [r[0] for r in rows]
    seconds = [r[1] for r in rows] if fmt == "binary_pairs" else None
    side = getattr(tokenizer, "padding_side", "right")
    tokenizer.padding_side = "right"
    try:
        enc = tokenizer(firsts, seconds, truncation="only_first" if seconds else True, max_length=int(max_length),
                        padding="longest", return_tensors="pt", return_attention_mask=True,
                        return_offsets_mapping=evidence)
    finally:
        tokenizer.padding_side = side
    lengths = enc["attention_mask"].sum(dim=1)
    ttype = enc.get("token_type_ids")
    if ttype is not None and not bool(ttype.any()):
        ttype = None  # single texts: all zeros, the encoder's default
    ex = Examples(enc["input_ids"].contiguous(), lengths, torch.tensor([r[2] for r in rows], dtype=torch.float32),
                  len(records), fmt, token_type_ids=ttype, texts=firsts)
    if evidence:
        width = ex.input_ids.shape[1]
        tags = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        sids = torch.full((len(rows), width), -1, dtype=torch.long)
        elig = torch.zeros((len(rows), width), dtype=torch.bool)
        complete = torch.zeros(len(rows), dtype=torch.bool)
        sentences_of: dict[int, list[tuple[int, int]]] = {}
        for i, (text, _, _, record, symptom) in enumerate(rows):
            offsets = [tuple(map(int, o)) for o in enc["offset_mapping"][i].tolist()]
            seq = enc.sequence_ids(i)
            ok = [seq[t] == 0 and offsets[t][1] > offsets[t][0] for t in range(width)]
            which = None if symptom is None else [symptom]
            gold = [tuple(g) for g in evidence_char_spans(record, which)]
            complete[i] = evidence_is_complete(record, which)
            sentences = sentences_of.setdefault(id(record), split_sentences(text))
            tags[i] = torch.tensor(char_spans_to_tags(offsets, gold, ok), dtype=torch.long)
            sids[i] = torch.tensor(token_sentence_ids(offsets, sentences, ok), dtype=torch.long)
            elig[i] = torch.tensor(ok, dtype=torch.bool)
            ex.offsets.append(offsets)
            ex.gold_spans.append(gold)
        ex.tags, ex.sentence_ids, ex.eligible, ex.complete = tags, sids, elig, complete
    return ex


def post_probabilities(examples: Examples, probs: np.ndarray) -> np.ndarray:
    """Row probabilities -> (n_posts, 9): binary_pairs rows are folded back post by post."""
    if examples.input_format == "binary_pairs":
        return np.asarray(probs, dtype=np.float32).reshape(examples.n_posts, len(SYMPTOMS))
    return np.asarray(probs, dtype=np.float32)


def post_labels(records: Sequence[Mapping]) -> np.ndarray:
    if not records:
        return np.zeros((0, len(SYMPTOMS)), dtype=np.int64)
    return np.asarray([r["labels"] for r in records], dtype=np.int64)


def evidence_char_spans(examples: Examples, token_spans: Sequence[Sequence[tuple[int, int]]]) -> list:
    """Decoded token spans -> character spans in each row's post text."""
    from workflow_lib.spans import token_spans_to_char_spans

    return [token_spans_to_char_spans(list(ts), examples.offsets[i]) for i, ts in enumerate(token_spans)]


def evaluate(examples: Examples, records: Sequence[Mapping], probs: np.ndarray,
             pred_spans: Sequence | None = None, thresholds: float | Sequence[float] = 0.5) -> dict:
    """Criteria metrics on posts (and evidence metrics on rows when spans were predicted)."""
    from workflow_lib.metrics import multilabel_metrics

    out = {"criteria": multilabel_metrics(post_labels(records), post_probabilities(examples, probs), thresholds)}
    if pred_spans is not None and examples.has_evidence:
        from workflow_lib.spans import evidence_metrics

        keep = [i for i in range(len(examples)) if bool(examples.complete[i])]
        if not keep:  # no row with known spans: nothing to score
            return out
        out["evidence"] = evidence_metrics([examples.texts[i] for i in keep], [examples.gold_spans[i] for i in keep],
                                           [pred_spans[i] for i in keep])
        out["evidence"]["n_incomplete_excluded"] = len(examples) - len(keep)
    return out


def objective_value(metrics: Mapping, metric: str, objective: Mapping) -> float:
    """The HPO objective: weighted mean of the criteria metric and the evidence metric."""
    wc, we = float(objective["criteria_weight"]), float(objective["evidence_weight"])
    value = wc * float(metrics["criteria"][metric])
    if we > 0:
        if "evidence" not in metrics:
            raise ValueError("the objective weighs evidence but the model has no evidence predictions; "
                             "set training.evidence_task: true")
        value += we * float(metrics["evidence"][objective["evidence_metric"]])
    return value / (wc + we)

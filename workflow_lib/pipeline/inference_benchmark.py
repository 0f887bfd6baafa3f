"""The inference benchmark stage's measurements of a refit checkpoint: latency percentiles, throughput, memory.

(The developer benchmarks of the code itself are elsewhere: devbench/ at the repo root.)

Two kinds of figures:

- **Fixed shape** (``results``): synthetic token ids drawn with a fixed seed
  from the tokenizer's vocabulary (special tokens excluded, [CLS]/[SEP] at the
  ends when the tokenizer has them), exactly ``seq_length`` long, no padding,
  so every configuration measures the same amount of work on every machine.
  Each (batch_size, seq_length) configuration gets ``warmup`` untimed runs,
  then ``iterations`` timed runs (time.perf_counter around one forward pass
  under torch.inference_mode, model in eval mode, CUDA synchronised on GPU).
- **Per post** (``per_post``): a seeded sample of ``posts_sample`` of the
  prepared data's own posts (never the test split), so the figures follow the
  data's length distribution. Each timed run is one
  :func:`workflow_lib.learning.inference.predict` call on one post, end to end
  (tokenisation, every window of the post when the checkpoint's
  ``training.long_posts`` is ``windows``, forward passes, aggregation,
  evidence decoding): ``warmup`` untimed posts first, then every sampled post
  once -> p50/p95/mean ms per post. Posts per second comes from one predict
  call over the whole sample in batches of the checkpoint's eval_batch_size.

The sentence model (``training.criteria_from: sentences``) reads the same synthetic sequences cut into
sentences of ``SENTENCE_TOKENS`` tokens (one post per sequence, the special tokens pooled nowhere), given to it
as examples.SentenceUnits.batch_inputs shapes them (``unit_ids``, ``unit_rows``). Its benchmark also times the
same encoder weights read as the post-windows model (:func:`post_reading`: the checkpoint's training config
with ``criteria_from: post``, so the same max_length, windows, batch sizes, precision and posts) on every
configuration and post, the two interleaved (alternating which goes first) so the machine's noise hits both;
``sentences_vs_post`` gives the ratios of the sentence model's cost to the post model's (target: at most
``SENTENCES_TARGET``) with both sides' figures. With two readings "batched" is the mean of two calls per
reading, in the order sentences, post, post, sentences.
"""

from __future__ import annotations

import gc
import math
import platform
import resource
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from workflow_lib.config import Benchmark, Training
from workflow_lib.learning.checkpoint import load_checkpoint
from workflow_lib.learning.models.model import CriteriaClassifier, SentenceClassifier, assemble
from workflow_lib.persistence.reports import validate_report
from workflow_lib.provenance import code_version, library_versions

BENCHMARK_VERSION = 2  # 2: per-post figures over the data's own posts
SEED = 0
INPUTS = "synthetic token ids from the tokenizer's vocabulary, fixed seed, exact seq_length, no padding"
PER_POST_INPUTS = (
    "a seeded sample of the prepared {source} posts; one timed run = one training.predict() call "
    "on one post, end to end (tokenisation, all windows under long_posts=windows, forward, "
    "aggregation, evidence decoding)"
)
SENTENCE_TOKENS = 20  # the sentence model's synthetic sentences: one per this many tokens of a sequence
SENTENCE_INPUTS = f"; the sentence model reads each sequence as one post of sentences of {SENTENCE_TOKENS} tokens"
SENTENCES_TARGET = 1.3  # issue 17: the sentence model may cost at most 1.3x the post-windows model per post
POST_READING = (
    "the sentence model's encoder (same weights, shared) read as the post-windows model: its training config "
    "with criteria_from: post (same max_length, windows, batch sizes, posts and precision), pooling, window "
    "aggregation and criteria head of that config with untrained weights (cost only)"
)
_MEASURED_KEYS = (
    "device",
    "device_name",
    "threads",
    "peak_memory_mb",
    "parameters",
    "library_versions",
    "warmup",
    "iterations",
    "results",
    "inputs",
    "rows_per_post",
    "seed",
    "benchmark_version",
    "seconds",
    "code_version",
    "created_at",
    "per_post",
    "sentences_vs_post",
)


def _rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except Exception:  # psutil missing or not permitted: fall back to the process peak
        return _peak_rss_mb()


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or device.type


def _vocab_pool(tokenizer) -> tuple[torch.Tensor, int | None, int | None]:
    size = getattr(tokenizer, "vocab_size", None) or len(tokenizer)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    keep = torch.ones(int(size), dtype=torch.bool)
    for i in special:
        if 0 <= i < int(size):
            keep[i] = False
    pool = torch.nonzero(keep).flatten()
    if pool.numel() == 0:
        raise ValueError("the tokenizer's vocabulary has no non-special tokens to build benchmark inputs from")
    return pool, getattr(tokenizer, "cls_token_id", None), getattr(tokenizer, "sep_token_id", None)


def _synthetic_inputs(pool, cls_id, sep_id, batch_size: int, seq_length: int, seed: int, device):
    gen = torch.Generator().manual_seed(seed * 1_000_003 + batch_size * 1009 + seq_length)
    idx = torch.randint(0, pool.numel(), (batch_size, seq_length), generator=gen)
    ids = pool[idx]
    if cls_id is not None and seq_length >= 2:
        ids[:, 0] = cls_id
    if sep_id is not None and seq_length >= 2:
        ids[:, -1] = sep_id
    mask = torch.ones_like(ids)
    return ids.to(device), mask.to(device)


def synthetic_units(n_sequences: int, seq_length: int, first: int, end: int, device=None) -> dict[str, torch.Tensor]:
    """The sentence model's inputs for ``n_sequences`` synthetic sequences of one post each, shaped as
    examples.SentenceUnits.batch_inputs shapes them: tokens ``first:end`` of every sequence cut into sentences of
    SENTENCE_TOKENS tokens (the last one shorter), the other tokens ([CLS], [SEP]) pooled nowhere.

    ``unit_ids`` (n_sequences, seq_length): the batch sentence of each token or -1; ``unit_rows``: the post
    (sequence) of each sentence, every post at least one sentence (a sentence without tokens when
    ``first >= end``, like the unit of an empty post)."""
    n_tokens = max(end - first, 0)
    per_post = max(1, math.ceil(n_tokens / SENTENCE_TOKENS))
    local = torch.full((seq_length,), -1, dtype=torch.long)
    local[first : first + n_tokens] = torch.arange(n_tokens) // SENTENCE_TOKENS
    offsets = torch.arange(n_sequences).unsqueeze(1) * per_post
    return {
        "unit_ids": torch.where(local >= 0, local + offsets, -1).to(device),
        "unit_rows": torch.arange(n_sequences).repeat_interleave(per_post).to(device),
    }


def _fixed_inputs(model, pool, cls_id, sep_id, n_sequences: int, seq_length: int, device) -> dict[str, torch.Tensor]:
    """The keyword arguments of one forward pass of ``model`` over the synthetic sequences (module docstring)."""
    ids, mask = _synthetic_inputs(pool, cls_id, sep_id, n_sequences, seq_length, SEED, device)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if isinstance(model, SentenceClassifier):
        first = 1 if cls_id is not None and seq_length >= 2 else 0
        end = seq_length - 1 if sep_id is not None and seq_length >= 2 else seq_length
        inputs.update(synthetic_units(n_sequences, seq_length, first, end, device))
    return inputs


def _max_positions(model) -> int | None:
    for holder in (model, getattr(model, "encoder", None), getattr(model, "backbone", None)):
        cfg = getattr(holder, "config", None)
        n = getattr(cfg, "max_position_embeddings", None)
        if isinstance(n, int):
            return n
    return None


def _percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms, dtype=float)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    # np.percentile (linear) is monotone in q; max() guards float rounding
    p95 = max(p95, p50)
    p99 = max(p99, p95)
    return {
        "mean": float(a.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def _as_int_list(values: Iterable, what: str) -> list[int]:
    out = [int(v) for v in values]
    if not out or any(v < 1 for v in out):
        raise ValueError(f"benchmark {what} must be a non-empty list of positive integers, got {values!r}")
    return out


@contextmanager
def _bench_mode(model: torch.nn.Module, threads: int | None):
    """The model in eval mode with ``threads`` torch threads (None: as they are); both restored on exit.
    Yields the number of threads in force."""
    old_threads = torch.get_num_threads()
    was_training = model.training
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        model.eval()
        yield torch.get_num_threads()
    finally:
        model.train(was_training)
        if threads is not None:
            torch.set_num_threads(old_threads)


@contextmanager
def _bench_modes(models: Sequence[torch.nn.Module], threads: int | None):
    """_bench_mode for every model (restored in reverse order, so a shared encoder ends as the first left it)."""
    with ExitStack() as stack:
        in_force = [stack.enter_context(_bench_mode(m, threads)) for m in models]
        yield in_force[-1]


def _turns(n: int, i: int) -> list[int]:
    """The order the ``n`` readings run in at their ``i``-th turn: as given, then reversed, alternately."""
    order = list(range(n))
    return order if i % 2 == 0 else order[::-1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_inference(
    model, tokenizer, *, batch_sizes, seq_lengths, warmup, iterations, threads=None, rows_per_post: int = 1
) -> dict:
    """Time ``model(input_ids=..., attention_mask=...)`` at every (batch_size, seq_length) (the sentence model
    also gets ``unit_ids`` and ``unit_rows``: :func:`synthetic_units`).

    ``batch_size`` counts posts; a binary_pairs model reads ``rows_per_post`` (9) rows per post,
    so its batches hold batch_size x 9 sequences and latency/throughput stay per post.

    Returns {"device", "device_name", "threads", "peak_memory_mb", "parameters",
    "library_versions", "warmup", "iterations", "inputs", "seed",
    "results": [{"batch_size", "seq_length", "latency_ms": {mean,p50,p95,p99,min,max},
    "throughput_per_s", "peak_rss_mb"}, ...]} (one row per configuration,
    batch sizes outer, sequence lengths inner, in the order given).
    """
    return measure_inference_of(
        [model],
        tokenizer,
        batch_sizes=batch_sizes,
        seq_lengths=seq_lengths,
        warmup=warmup,
        iterations=iterations,
        threads=threads,
        rows_per_post=rows_per_post,
    )[0]


def measure_inference_of(
    models: Sequence[torch.nn.Module],
    tokenizer,
    *,
    batch_sizes,
    seq_lengths,
    warmup,
    iterations,
    threads=None,
    rows_per_post: int = 1,
) -> list[dict]:
    """:func:`measure_inference` of every model of ``models`` (on one device), interleaved: at every
    configuration each model's warm-up runs, then each timed iteration runs every model, the order
    alternating (:func:`_turns`). One result per model, in their order."""
    batch_sizes = _as_int_list(batch_sizes, "batch_sizes")
    seq_lengths = _as_int_list(seq_lengths, "seq_lengths")
    warmup, iterations = int(warmup), int(iterations)
    if warmup < 0 or iterations < 1:
        raise ValueError(
            f"benchmark needs warmup >= 0 and iterations >= 1, got warmup={warmup}, iterations={iterations}"
        )
    for model in models:
        max_pos = _max_positions(model)
        if max_pos is not None and max(seq_lengths) > max_pos:
            raise ValueError(
                f"benchmark seq_lengths {seq_lengths} exceed the model's max_position_embeddings "
                f"{max_pos}; lower benchmark.seq_lengths"
            )

    device = _model_device(models[0])
    cuda = device.type == "cuda"
    pool, cls_id, sep_id = _vocab_pool(tokenizer)
    configs = [(b, s) for b in batch_sizes for s in seq_lengths]
    rows: list[list[dict]] = [[] for _ in models]
    with _bench_modes(models, threads) as threads_in_force:
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode():
            for b, s in tqdm(configs, desc="benchmark", unit="config", file=sys.stderr):
                inputs = [_fixed_inputs(m, pool, cls_id, sep_id, b * int(rows_per_post), s, device) for m in models]
                gc.collect()
                peak_rss = [_rss_mb()] * len(models)
                for k, model in enumerate(models):
                    for _ in range(warmup):
                        model(**inputs[k])
                        _sync(device)
                    peak_rss[k] = max(peak_rss[k], _rss_mb())
                times_ms: list[list[float]] = [[] for _ in models]
                for i in range(iterations):
                    for k in _turns(len(models), i):
                        t0 = time.perf_counter()
                        models[k](**inputs[k])
                        _sync(device)
                        times_ms[k].append((time.perf_counter() - t0) * 1000.0)
                        peak_rss[k] = max(peak_rss[k], _rss_mb())
                for k in range(len(models)):
                    total_s = sum(times_ms[k]) / 1000.0
                    rows[k].append(
                        {
                            "batch_size": b,
                            "seq_length": s,
                            "latency_ms": _percentiles(times_ms[k]),
                            "throughput_per_s": float(b * iterations / max(total_s, 1e-9)),
                            "peak_rss_mb": float(peak_rss[k]),
                        }
                    )
                del inputs

    peak_memory = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else _peak_rss_mb()
    return [
        {
            "device": str(device),
            "device_name": _device_name(device),
            "threads": int(threads_in_force),
            "peak_memory_mb": float(peak_memory),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "library_versions": library_versions(),
            "warmup": warmup,
            "iterations": iterations,
            "inputs": INPUTS + (SENTENCE_INPUTS if isinstance(model, SentenceClassifier) else ""),
            "rows_per_post": int(rows_per_post),
            "seed": SEED,
            "results": model_rows,
        }
        for model, model_rows in zip(models, rows)
    ]


def sample_posts(records: Sequence[Mapping], n: int, seed: int = SEED) -> list[Mapping]:
    """``min(n, len(records))`` of ``records`` drawn without replacement with ``seed``, in the drawn order."""
    k = min(int(n), len(records))
    idx = np.random.default_rng(seed).choice(len(records), size=k, replace=False)
    return [records[i] for i in idx.tolist()]


def _spread(values) -> dict:
    a = np.asarray(values, dtype=float)
    return {
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def measure_posts(
    model,
    tokenizer,
    records: Sequence[Mapping],
    train_cfg: Training,
    *,
    max_length: int,
    warmup: int,
    threads: int | None = None,
    source: str = "",
) -> dict:
    """Per-post latency and posts per second of ``inference.predict`` over ``records`` (see the module docstring).

    ``records`` are the (already sampled) post records; ``train_cfg`` is the checkpoint's resolved
    training section (load_checkpoint's ``info["train_cfg"]``), so windows, input format and eval
    batch size are those the model was trained with.

    Returns {"inputs", "source", "posts", "warmup", "long_posts", "window_overlap", "max_windows",
    "max_length", "input_format", "rows_per_post", "batch_size", "precision", "latency_ms" {mean,p50,p95,
    p99,min,max} (one predict call per post), "throughput_posts_per_s", "batched_seconds" (one predict
    call over all posts in batches of batch_size), "post_tokens" {mean,p50,p95,max} (whole post, no
    special tokens), "windows_per_post" {mean,p50,p95,max} (binary_pairs: the mean over a post's 9
    rows, whose descriptions leave the post different room), "peak_rss_mb", "coverage" (the
    Examples' coverage() over the sample)}.
    """
    return measure_posts_of(
        [(model, train_cfg)], tokenizer, records, max_length=max_length, warmup=warmup, threads=threads, source=source
    )[0]


def measure_posts_of(
    readings: Sequence[tuple[torch.nn.Module, Training]],
    tokenizer,
    records: Sequence[Mapping],
    *,
    max_length: int,
    warmup: int,
    threads: int | None = None,
    source: str = "",
) -> list[dict]:
    """:func:`measure_posts` of every ``(model, train_cfg)`` of ``readings`` over the same posts, interleaved:
    each post runs through every reading, the order alternating post by post (:func:`_turns`); with more
    than one reading, ``batched_seconds`` is the mean of two whole-sample calls per reading (first and
    last in turn: A B B A). One result per reading, in their order."""
    from workflow_lib.learning.inference import predict

    records = list(records)
    if not records:
        raise ValueError(
            "benchmark per-post figures need at least one post, and the prepared data has none "
            "outside the test split; check the data source (data.*) and its splits"
        )
    warmup = int(warmup)
    if warmup < 0:
        raise ValueError(f"benchmark needs warmup >= 0, got warmup={warmup}")
    n = len(readings)
    device = _model_device(readings[0][0])

    def run(k: int, recs):
        model, cfg = readings[k]
        pred = predict(model, tokenizer, recs, cfg, max_length=int(max_length), batch_size=cfg.eval_batch_size)
        _sync(device)
        return pred

    def rows_per_post(cfg: Training) -> int:
        return 9 if cfg.input_format == "binary_pairs" else 1

    tokens = [
        len(ids)
        for ids in tokenizer([r["text"] for r in records], add_special_tokens=False, verbose=False)["input_ids"]
    ]
    times_ms: list[list[float]] = [[] for _ in readings]
    windows: list[list[float]] = [[] for _ in readings]
    batched_s: list[list[float]] = [[] for _ in readings]
    batched = [None] * n
    gc.collect()
    peak_rss = [_rss_mb()] * n
    with _bench_modes([m for m, _ in readings], threads):
        for i in range(warmup):
            for k in _turns(n, i):
                run(k, [records[i % len(records)]])
        for i, rec in enumerate(tqdm(records, desc="benchmark per post", unit="post", file=sys.stderr)):
            for k in _turns(n, i):
                t0 = time.perf_counter()
                pred = run(k, [rec])
                times_ms[k].append((time.perf_counter() - t0) * 1000.0)
                # input_ids holds one sequence per window of every row (a post's rows_per_post rows)
                windows[k].append(int(pred.examples.input_ids.shape[0]) / rows_per_post(readings[k][1]))
                peak_rss[k] = max(peak_rss[k], _rss_mb())
        for k in range(n) if n == 1 else [*range(n), *reversed(range(n))]:
            t0 = time.perf_counter()
            batched[k] = run(k, records)
            batched_s[k].append(time.perf_counter() - t0)
            peak_rss[k] = max(peak_rss[k], _rss_mb())
    out = []
    for k, (_, cfg) in enumerate(readings):
        seconds = float(np.mean(batched_s[k]))
        long_posts = cfg.long_posts
        out.append(
            {
                "inputs": PER_POST_INPUTS.format(source=source or "data's"),
                "source": source,
                "posts": len(records),
                "warmup": warmup,
                "long_posts": long_posts,
                "window_overlap": cfg.window_overlap if long_posts == "windows" else None,
                "max_windows": cfg.max_windows if long_posts == "windows" else None,
                "max_length": int(max_length),
                "input_format": cfg.input_format,
                "rows_per_post": rows_per_post(cfg),
                "batch_size": cfg.eval_batch_size,
                "precision": cfg.precision,
                "latency_ms": _percentiles(times_ms[k]),
                "throughput_posts_per_s": float(len(records) / max(seconds, 1e-9)),
                "batched_seconds": seconds,
                "post_tokens": _spread(tokens),
                "windows_per_post": _spread(windows[k]),
                "peak_rss_mb": float(peak_rss[k]),
                "coverage": batched[k].examples.coverage(),
            }
        )
    return out


def post_reading(model: SentenceClassifier, train_cfg: Training) -> tuple[CriteriaClassifier, Training]:
    """The sentence model's encoder read as the post-windows model (POST_READING): ``(model, training config)``.

    The encoder is shared, not copied (same weights, same device, LoRA adapters included); pooling, window
    aggregation and criteria head come from ``train_cfg`` with ``criteria_from: post``, freshly initialised
    (their weights do not change the cost), in ``model``'s training mode."""
    post_cfg = train_cfg.replace(criteria_from="post")
    # finetune full and no freezing: the shared encoder is used as it is (assemble would add LoRA again)
    twin = assemble(
        model.encoder, post_cfg.replace(finetune="full", freeze_layers=0), model.n_labels, max_length=model.max_length
    )
    twin.to(_model_device(model))
    twin.train(model.training)
    return twin, post_cfg


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("inf")


def sentences_vs_post(
    sentence_rows: Sequence[Mapping], post_rows: Sequence[Mapping], sentence_pp: Mapping, post_pp: Mapping
) -> dict:
    """The ``sentences_vs_post`` block: the sentence model's cost over the post-windows model's, measured in
    the same run (fixed-shape rows and per-post figures of both readings, same configurations and posts).

    Cost ratios (sentences / post; at most SENTENCES_TARGET is the target): ``per_post_latency_ratio`` (mean ms
    of one predict call per post), ``per_post_p50_ratio``, ``per_post_p95_ratio``, ``batched_seconds_ratio``;
    ``throughput_ratio``: posts per second, sentences / post (its inverse, at least 1 / target). ``fixed_shape``:
    per configuration, the mean-latency ratio and the throughput ratio. ``sentences`` and ``post``: both
    readings' per-post figures side by side, and ``post`` also its fixed-shape rows and coverage."""
    s_lat, p_lat = sentence_pp["latency_ms"], post_pp["latency_ms"]
    fixed = [
        {
            "batch_size": s["batch_size"],
            "seq_length": s["seq_length"],
            "latency_ratio": _ratio(s["latency_ms"]["mean"], p["latency_ms"]["mean"]),
            "throughput_ratio": _ratio(s["throughput_per_s"], p["throughput_per_s"]),
        }
        for s, p in zip(sentence_rows, post_rows)
    ]

    def side(pp: Mapping) -> dict:
        keys = ("latency_ms", "throughput_posts_per_s", "batched_seconds", "windows_per_post")
        return {k: pp[k] for k in keys}

    return {
        "target": SENTENCES_TARGET,
        "post_reading": POST_READING,
        "interleaved": "every configuration's iterations and every post alternate the two readings "
        "(which goes first alternates); batched: sentences, post, post, sentences",
        "per_post_latency_ratio": _ratio(s_lat["mean"], p_lat["mean"]),
        "per_post_p50_ratio": _ratio(s_lat["p50"], p_lat["p50"]),
        "per_post_p95_ratio": _ratio(s_lat["p95"], p_lat["p95"]),
        "batched_seconds_ratio": _ratio(sentence_pp["batched_seconds"], post_pp["batched_seconds"]),
        "throughput_ratio": _ratio(sentence_pp["throughput_posts_per_s"], post_pp["throughput_posts_per_s"]),
        "fixed_shape": fixed,
        "sentences": side(sentence_pp),
        "post": {**side(post_pp), "results": list(post_rows), "coverage": post_pp["coverage"]},
    }


def run_benchmark(
    checkpoint_dir,
    bench_cfg: Benchmark,
    *,
    posts: Sequence[Mapping],
    posts_source: str,
    threads=None,
    extra: dict | None = None,
) -> dict:
    """Load a refit checkpoint and benchmark it with the resolved ``benchmark`` config section.

    ``posts``: the prepared post records the per-post figures sample ``bench_cfg.posts_sample``
    of (never test posts); ``posts_source`` names them (e.g. "train+validation").
    Threads: ``bench_cfg.threads`` when set, else ``threads`` (the job's
    Snakemake threads), else torch's current setting. ``extra`` (lineage keys:
    trial_key, backbone, data_key, study_key, variant, lineage) is merged into
    the result, which is validated against benchmark.schema.json. A sentence model
    (criteria_from: sentences) is timed beside its post reading (:func:`post_reading`), and the result
    gets ``sentences_vs_post`` (:func:`sentences_vs_post`).
    """
    checkpoint_dir = Path(checkpoint_dir)
    n_threads = bench_cfg.threads or threads
    t0 = time.perf_counter()
    model, tokenizer, info = load_checkpoint(checkpoint_dir)  # train_cfg a Training, backbone_spec an Encoder
    train_cfg = info["train_cfg"]
    readings = [(model, train_cfg)]
    if train_cfg.criteria_from == "sentences":
        readings.append(post_reading(model, train_cfg))
    fixed = measure_inference_of(
        [m for m, _ in readings],
        tokenizer,
        batch_sizes=bench_cfg.batch_sizes,
        seq_lengths=bench_cfg.seq_lengths,
        warmup=bench_cfg.warmup,
        iterations=bench_cfg.iterations,
        threads=n_threads,
        rows_per_post=9 if train_cfg.input_format == "binary_pairs" else 1,
    )
    per_post = measure_posts_of(
        readings,
        tokenizer,
        sample_posts(posts, bench_cfg.posts_sample),
        max_length=info["backbone_spec"].max_length,
        warmup=bench_cfg.warmup,
        threads=n_threads,
        source=posts_source,
    )
    result = {**fixed[0], "per_post": per_post[0]}
    if len(readings) > 1:
        result["sentences_vs_post"] = sentences_vs_post(fixed[0]["results"], fixed[1]["results"], *per_post)
    result.update(
        {
            "benchmark_version": BENCHMARK_VERSION,
            "seconds": time.perf_counter() - t0,
            "code_version": code_version(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "checkpoint": {"path": str(checkpoint_dir), "manifest_sha256": info["manifest_sha256"]},
        }
    )
    for key, value in (extra or {}).items():
        if key in _MEASURED_KEYS or key == "checkpoint":
            raise ValueError(f"run_benchmark extra key {key!r} would overwrite a measured field")
        result[key] = value
    return validate_report("benchmark", result)

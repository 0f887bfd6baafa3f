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
"""

from __future__ import annotations

import gc
import platform
import resource
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from workflow_lib.config import Benchmark, Training
from workflow_lib.learning.checkpoint import load_checkpoint
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


def measure_inference(
    model, tokenizer, *, batch_sizes, seq_lengths, warmup, iterations, threads=None, rows_per_post: int = 1
) -> dict:
    """Time ``model(input_ids=..., attention_mask=...)`` at every (batch_size, seq_length).

    ``batch_size`` counts posts; a binary_pairs model reads ``rows_per_post`` (9) rows per post,
    so its batches hold batch_size x 9 sequences and latency/throughput stay per post.

    Returns {"device", "device_name", "threads", "peak_memory_mb", "parameters",
    "library_versions", "warmup", "iterations", "inputs", "seed",
    "results": [{"batch_size", "seq_length", "latency_ms": {mean,p50,p95,p99,min,max},
    "throughput_per_s", "peak_rss_mb"}, ...]} (one row per configuration,
    batch sizes outer, sequence lengths inner, in the order given).
    """
    batch_sizes = _as_int_list(batch_sizes, "batch_sizes")
    seq_lengths = _as_int_list(seq_lengths, "seq_lengths")
    warmup, iterations = int(warmup), int(iterations)
    if warmup < 0 or iterations < 1:
        raise ValueError(
            f"benchmark needs warmup >= 0 and iterations >= 1, got warmup={warmup}, iterations={iterations}"
        )
    max_pos = _max_positions(model)
    if max_pos is not None and max(seq_lengths) > max_pos:
        raise ValueError(
            f"benchmark seq_lengths {seq_lengths} exceed the model's max_position_embeddings "
            f"{max_pos}; lower benchmark.seq_lengths"
        )

    device = _model_device(model)
    cuda = device.type == "cuda"
    pool, cls_id, sep_id = _vocab_pool(tokenizer)
    configs = [(b, s) for b in batch_sizes for s in seq_lengths]
    rows = []
    with _bench_mode(model, threads) as threads_in_force:
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode():
            for b, s in tqdm(configs, desc="benchmark", unit="config", file=sys.stderr):
                ids, mask = _synthetic_inputs(pool, cls_id, sep_id, b * int(rows_per_post), s, SEED, device)
                gc.collect()
                peak_rss = _rss_mb()
                for _ in range(warmup):
                    model(input_ids=ids, attention_mask=mask)
                    if cuda:
                        torch.cuda.synchronize(device)
                peak_rss = max(peak_rss, _rss_mb())
                times_ms = []
                for _ in range(iterations):
                    t0 = time.perf_counter()
                    model(input_ids=ids, attention_mask=mask)
                    if cuda:
                        torch.cuda.synchronize(device)
                    times_ms.append((time.perf_counter() - t0) * 1000.0)
                    peak_rss = max(peak_rss, _rss_mb())
                lat = _percentiles(times_ms)
                total_s = sum(times_ms) / 1000.0
                throughput = b * iterations / max(total_s, 1e-9)
                rows.append(
                    {
                        "batch_size": b,
                        "seq_length": s,
                        "latency_ms": lat,
                        "throughput_per_s": float(throughput),
                        "peak_rss_mb": float(peak_rss),
                    }
                )
                del ids, mask

    if cuda:
        peak_memory = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_memory = _peak_rss_mb()
    return {
        "device": str(device),
        "device_name": _device_name(device),
        "threads": int(threads_in_force),
        "peak_memory_mb": float(peak_memory),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "library_versions": library_versions(),
        "warmup": warmup,
        "iterations": iterations,
        "inputs": INPUTS,
        "rows_per_post": int(rows_per_post),
        "seed": SEED,
        "results": rows,
    }


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
    rows_per_post = 9 if train_cfg.input_format == "binary_pairs" else 1
    batch_size = train_cfg.eval_batch_size
    device = _model_device(model)
    cuda = device.type == "cuda"

    def run(recs):
        pred = predict(model, tokenizer, recs, train_cfg, max_length=int(max_length), batch_size=batch_size)
        if cuda:
            torch.cuda.synchronize(device)
        return pred

    tokens = [
        len(ids)
        for ids in tokenizer([r["text"] for r in records], add_special_tokens=False, verbose=False)["input_ids"]
    ]
    times_ms, windows = [], []
    gc.collect()
    peak_rss = _rss_mb()
    with _bench_mode(model, threads):
        for i in range(warmup):
            run([records[i % len(records)]])
        for rec in tqdm(records, desc="benchmark per post", unit="post", file=sys.stderr):
            t0 = time.perf_counter()
            pred = run([rec])
            times_ms.append((time.perf_counter() - t0) * 1000.0)
            # input_ids holds one sequence per window of every row (a post's rows_per_post rows)
            windows.append(int(pred.examples.input_ids.shape[0]) / rows_per_post)
            peak_rss = max(peak_rss, _rss_mb())
        t0 = time.perf_counter()
        batched = run(records)
        batched_s = time.perf_counter() - t0
        peak_rss = max(peak_rss, _rss_mb())
    long_posts = train_cfg.long_posts
    out = {
        "inputs": PER_POST_INPUTS.format(source=source or "data's"),
        "source": source,
        "posts": len(records),
        "warmup": warmup,
        "long_posts": long_posts,
        "window_overlap": train_cfg.window_overlap if long_posts == "windows" else None,
        "max_windows": train_cfg.max_windows if long_posts == "windows" else None,
        "max_length": int(max_length),
        "input_format": train_cfg.input_format,
        "rows_per_post": rows_per_post,
        "batch_size": batch_size,
        "precision": train_cfg.precision,
        "latency_ms": _percentiles(times_ms),
        "throughput_posts_per_s": float(len(records) / max(batched_s, 1e-9)),
        "batched_seconds": float(batched_s),
        "post_tokens": _spread(tokens),
        "windows_per_post": _spread(windows),
        "peak_rss_mb": float(peak_rss),
    }
    out["coverage"] = batched.examples.coverage()
    return out


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
    the result, which is validated against benchmark.schema.json.
    """
    checkpoint_dir = Path(checkpoint_dir)
    n_threads = bench_cfg.threads or threads
    t0 = time.perf_counter()
    model, tokenizer, info = load_checkpoint(checkpoint_dir)  # train_cfg a Training, backbone_spec an Encoder
    train_cfg = info["train_cfg"]
    result = measure_inference(
        model,
        tokenizer,
        batch_sizes=bench_cfg.batch_sizes,
        seq_lengths=bench_cfg.seq_lengths,
        warmup=bench_cfg.warmup,
        iterations=bench_cfg.iterations,
        threads=n_threads,
        rows_per_post=9 if train_cfg.input_format == "binary_pairs" else 1,
    )
    result["per_post"] = measure_posts(
        model,
        tokenizer,
        sample_posts(posts, bench_cfg.posts_sample),
        train_cfg,
        max_length=info["backbone_spec"].max_length,
        warmup=bench_cfg.warmup,
        threads=n_threads,
        source=posts_source,
    )
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

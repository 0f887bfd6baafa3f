"""The sentence model (models/sentences.py, model.SentenceClassifier): the aggregations on hand cases and their
gradients, the sentence pooling and loss, the frozen-layer cache, LoRA, bf16 on CPU, resume and checkpoints
with criteria_from: sentences; and post mode held to the outputs it had before the sentence model existed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.resume import policy, without_timings
from tests.helpers.training import CFG, SCORED, TINY
from workflow_lib.learning.checkpoint import load_checkpoint, model_signature, save_checkpoint
from workflow_lib.learning.examples import build_examples
from workflow_lib.learning.inference import predict
from workflow_lib.learning.models.model import SentenceClassifier, build_model, by_length
from workflow_lib.learning.models.sentences import (
    SentenceAggregator,
    SentencePooling,
    balanced_pos_weight,
    sentence_loss,
)
from workflow_lib.learning.training import train
from workflow_lib.symptoms import SYMPTOMS

REFERENCE = Path(__file__).resolve().parents[3] / "fixtures" / "post_mode_reference.json"
SENTENCES = CFG.replace(criteria_from="sentences")

# -- aggregation ---------------------------------------------------------------------------------------------

# two posts: three sentences, then one; two symptoms
LOGITS = [[0.0, -2.0], [1.0, -3.0], [-1.0, 4.0], [2.0, 0.5]]
ROWS = [0, 0, 0, 1]


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def _logit(p):
    return math.log(p / (1 - p))


def _expected(method):
    posts = [[r for r, row in zip(LOGITS, ROWS) if row == i] for i in (0, 1)]
    out = []
    for sents in posts:
        cols = list(zip(*sents))
        if method == "max":
            out.append([max(c) for c in cols])
        elif method == "logsumexp":
            out.append([math.log(sum(math.exp(x) for x in c)) for c in cols])
        else:  # noisy_or
            out.append([_logit(1 - math.prod(1 - _sigmoid(x) for x in c)) for c in cols])
    return out


@pytest.mark.parametrize("method", ["max", "logsumexp", "noisy_or"])
def test_aggregations_give_their_values_on_a_hand_case_and_pass_gradients(method):
    agg = SentenceAggregator(method, in_features=3, n_labels=2)
    x = torch.tensor(LOGITS, requires_grad=True)
    out = agg(x, torch.tensor(ROWS))
    np.testing.assert_allclose(out.detach().numpy(), _expected(method), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    g = x.grad.numpy()
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g[3], [1.0, 1.0], atol=1e-6)  # a post's one sentence is the post: d out / d x = 1
    if method == "max":  # only each post's top sentence gets the gradient
        np.testing.assert_array_equal(g[:3], [[0, 0], [1, 0], [0, 1]])
    else:  # every sentence gets some, the surest the most
        assert (g[:3] > 0).all() and g[1, 0] > g[0, 0] > g[2, 0]


def test_noisy_or_is_the_probability_that_some_sentence_shows_it_and_stays_finite_at_the_extremes():
    agg = SentenceAggregator("noisy_or", in_features=1, n_labels=1)
    x = torch.tensor([[-200.0], [-200.0], [60.0], [-30.0], [-30.0], [0.0]], requires_grad=True)
    out = agg(x, torch.tensor([0, 0, 1, 1, 2, 3]))
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    vals = out.detach().squeeze(1).tolist()
    assert vals[0] < -80  # no sentence shows it: a very negative logit, not -inf
    assert vals[1] == pytest.approx(60.0, abs=1e-3)  # one sure sentence decides
    assert vals[2] == pytest.approx(-30.0, abs=1e-6)  # one sentence: its own logit
    assert vals[3] == pytest.approx(0.0, abs=1e-6)
    two = agg(torch.tensor([[-30.0], [-30.0]]), torch.tensor([0, 0]))  # p = 1 - (1 - p1)^2 ~ 2 p1
    assert float(two) == pytest.approx(-30.0 + math.log(2.0), abs=1e-4)


def test_attention_starts_as_the_mean_and_learns_per_symptom_weights():
    torch.manual_seed(0)
    agg = SentenceAggregator("attention", in_features=3, n_labels=2)
    x = torch.tensor(LOGITS, requires_grad=True)
    vectors = torch.randn(4, 3, requires_grad=True)
    out = agg(x, torch.tensor(ROWS), vectors)
    means = [[np.mean([r[j] for r in LOGITS[:3]]) for j in range(2)], LOGITS[3]]
    np.testing.assert_allclose(out.detach().numpy(), means, atol=1e-6)
    out[0, 0].backward()
    assert agg.score[2].weight.grad is not None and agg.score[2].weight.grad.abs().sum() > 0
    np.testing.assert_allclose(x.grad[:3, 0].numpy(), [1 / 3] * 3, atol=1e-6)
    with torch.no_grad():  # a score that prefers the second sentence for symptom 0 only
        agg.score[2].weight.zero_()
        agg.score[2].bias.zero_()
        agg.score[0].weight.copy_(torch.eye(3))
        agg.score[0].bias.zero_()
        agg.score[2].weight[0, 0] = 50.0
    v = torch.tensor([[-1.0, 0, 0], [1.0, 0, 0], [-1.0, 0, 0], [0.0, 0, 0]])
    with torch.no_grad():
        out = agg(torch.tensor(LOGITS), torch.tensor(ROWS), v)
    assert float(out[0, 0]) == pytest.approx(1.0, abs=1e-4)  # symptom 0: the second sentence's logit
    assert float(out[0, 1]) == pytest.approx(np.mean([-2.0, -3.0, 4.0]), abs=1e-5)  # symptom 1: still the mean


def test_an_unknown_aggregation_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="sentence_aggregation 'mean'.*max, logsumexp, noisy_or, attention"):
        SentenceAggregator("mean", 3, 2)


def test_sentence_pooling_is_the_mean_of_each_sentences_tokens():
    states = torch.arange(2 * 4 * 2, dtype=torch.float32).reshape(2, 4, 2)
    unit_ids = torch.tensor([[-1, 0, 0, 1], [-1, 1, 2, -1]])
    pooled = SentencePooling()(states, unit_ids, 4)
    want = [
        (states[0, 1] + states[0, 2]) / 2,
        (states[0, 3] + states[1, 1]) / 2,
        states[1, 2],
        torch.zeros(2),  # a unit without tokens
    ]
    torch.testing.assert_close(pooled, torch.stack(want))


def test_sentence_loss_is_the_weighted_mean_bce_of_the_known_cells():
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    weights = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    bce = lambda x, t: -(t * math.log(_sigmoid(x)) + (1 - t) * math.log(1 - _sigmoid(x)))  # noqa: E731
    want = (bce(2.0, 1) + 2 * bce(-1.0, 0) + bce(3.0, 0)) / 4
    loss = sentence_loss(logits, targets, weights)
    assert loss.item() == pytest.approx(want, rel=1e-6)
    loss.backward()
    assert logits.grad[1, 0] == 0  # an unknown cell teaches nothing
    zero = sentence_loss(logits, targets, torch.zeros_like(weights))
    assert zero.item() == 0.0 and zero.requires_grad


def test_balanced_positive_weight_is_known_negatives_over_positives_per_symptom():
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    weights = torch.tensor([[1.0, 1.0, 0.0], [1.0, 2.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    # symptom 0: 1 positive, 2 known negatives (the unknown fourth cell does not count); symptom 1: its only
    # positive is unknown -> 1; symptom 2: 1 positive, 2 known negatives (its first cell is unknown)
    pw = balanced_pos_weight(targets, weights)
    torch.testing.assert_close(pw, torch.tensor([2.0, 1.0, 2.0]))
    logits = torch.tensor([[0.3, -0.2, 0.1], [0.5, 0.0, -1.0], [-0.4, 0.2, 0.7], [0.0, 0.0, 0.0]])
    scaled = weights * (1 + (pw - 1) * targets)  # the evidence cells weigh pw times more
    assert sentence_loss(logits, targets, weights, pw).item() == pytest.approx(
        sentence_loss(logits, targets, scaled).item(), rel=1e-6
    )
    assert sentence_loss(logits, targets, weights, torch.ones(3)).item() == pytest.approx(
        sentence_loss(logits, targets, weights).item(), rel=1e-6
    )


# -- the assembled model -------------------------------------------------------------------------------------

TEXTS = [
    "We walked the dog to the park. I feel so tired all the time, every single day. "
    "The rain fell on the old roof of the house near the river while we cooked pasta.",
    "I cannot sleep.",
]


def _records(texts=TEXTS):
    return [{"post_id": f"p{i}", "text": t, "labels": [0] * 9, "evidence": []} for i, t in enumerate(texts)]


@pytest.mark.parametrize(
    "over", [{}, {"sentence_aggregation": "attention"}, {"finetune": "lora", "lora_r": 2}, {"head": "mlp"}]
)
def test_sentence_model_assembles_and_backpropagates_into_the_encoder(over):
    cfg = SENTENCES.replace(**over)
    model, tok = build_model(TINY, cfg)
    assert isinstance(model, SentenceClassifier) and model.evidence_head is None
    ex = build_examples(_records(), tok, cfg, 32)
    out = model(**ex.batch(torch.arange(2)))
    assert out["criteria"].shape == (2, 9) and out["sentences"].shape == (len(ex.units), 9)
    out["criteria"].sum().backward()
    trainable = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder.")]
    assert trainable and any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    if over.get("finetune") == "lora":
        assert all("lora_" in n for n, p in model.encoder.named_parameters() if p.requires_grad)


def test_windows_run_by_length_give_the_states_and_gradients_of_one_padded_call():
    cfg = SENTENCES.replace(sentence_context="alone", dropout=0.0)
    model, tok = build_model(TINY, cfg)
    model.eval()
    ex = build_examples(_records(), tok, cfg, 32)
    batch = ex.batch(torch.arange(len(ex)))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert len(set(mask.sum(1).tolist())) > 2 and len(ids) >= 4  # sentences of several lengths, several groups
    calls = []

    def run(rows, width):
        calls.append((len(rows), width))
        return model.encode(ids[rows, :width], mask[rows, :width])[0]

    grads = []
    for group in (len(ids), 2):
        model.zero_grad()
        states = by_length(run, mask, group=group)
        (states * mask.unsqueeze(-1)).pow(2).sum().backward()
        grads.append([p.grad.clone() for p in model.encoder.parameters() if p.grad is not None])
        if group == 2:
            grouped = states
        else:
            whole = states
    assert calls[0] == (len(ids), ids.shape[1]) and len(calls) == 1 + math.ceil(len(ids) / 2)
    assert max(w for _, w in calls[1:]) == ids.shape[1] and min(w for _, w in calls[1:]) < ids.shape[1]
    real = mask.bool()
    torch.testing.assert_close(grouped[real], whole[real], atol=1e-5, rtol=1e-5)
    assert (grouped[mask.sum(1).argmin(), ids.shape[1] - 1] == 0).all()  # past its group's longest: zeros
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("context", ["window", "alone"])
def test_frozen_layer_cache_gives_the_full_forward_of_the_sentence_model(context, monkeypatch):
    monkeypatch.setattr("workflow_lib.learning.models.model.LENGTH_GROUP", 2)  # several groups of windows
    cfg = SENTENCES.replace(freeze_layers=1, dropout=0.0, sentence_context=context)
    model, tok = build_model(TINY, cfg)
    model.eval()
    assert model.frozen_depth() == 1
    ex = build_examples(_records(), tok, cfg, 32)
    batch = ex.batch(torch.arange(2))
    with torch.no_grad():
        full = model(**batch)
        h = model.bottom_states(1, batch["input_ids"], batch["attention_mask"])
        part = model.forward_from(
            1, h, batch["attention_mask"], unit_ids=batch["unit_ids"], unit_rows=batch["unit_rows"]
        )
    torch.testing.assert_close(full["criteria"], part["criteria"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(full["sentences"], part["sentences"], atol=1e-5, rtol=1e-5)


# -- training with the sentence model ------------------------------------------------------------------------

CUE = "I feel exhausted."
FILLER = "We walked the dog to the park. The rain fell on the roof. My brother drove the car to the city."


def _cue_records(n, seed):
    """Posts of filler sentences; every second one has the cue sentence (FATIGUE) somewhere, labelled 1."""
    rng = np.random.default_rng(seed)
    j = SYMPTOMS.index("FATIGUE")
    out = []
    for i in range(n):
        parts = FILLER.split(". ")
        parts = [p.rstrip(".") + "." for p in parts] * 2
        rng.shuffle(parts)
        if i % 2 == 0:
            parts.insert(int(rng.integers(0, len(parts) + 1)), CUE)
        text = " ".join(parts)
        labels = [0] * 9
        labels[j] = int(i % 2 == 0)
        out.append({"post_id": f"c{seed}_{i}", "text": text, "labels": labels, "evidence": []})
    return out


@pytest.fixture(scope="module")
def cue_data():
    return _cue_records(48, 0), _cue_records(16, 1)


@pytest.fixture(scope="module")
def fp32_sentences(cue_data):
    tr, va = cue_data
    return train(TINY, SENTENCES.replace(epochs=3, precision="fp32"), tr, va, **SCORED)


@pytest.mark.parametrize(
    "over",
    [
        {"freeze_layers": 1},
        {"freeze_layers": 1, "sentence_context": "alone"},
        {"precision": "bf16"},
        {"group_by_length": False, "sentence_aggregation": "noisy_or"},
    ],
)
def test_sentence_model_trains_with_the_cache_bf16_and_either_batching(cue_data, fp32_sentences, over, caplog):
    tr, va = cue_data
    caplog.set_level("INFO", logger="workflow_lib.learning.training")
    r = train(TINY, SENTENCES.replace(epochs=3, **{"precision": "fp32", **over}), tr, va, **SCORED)
    losses = [h["train_loss"] for h in r.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    assert all(p.dtype == torch.float32 for p in r.model.parameters())
    assert np.isfinite(r.val_prediction.sentence_probs).all() and np.isfinite(r.val_probs).all()
    assert "sentences" in r.val_metrics and "sentences scored" in caplog.text
    if "freeze_layers" in over:
        assert "frozen bottom 1 layer(s) run once" in caplog.text
    if "precision" in over:
        assert "bf16 arithmetic" in caplog.text
        assert losses != [h["train_loss"] for h in fp32_sentences.history]  # autocast was in force


class Interrupt(Exception):
    pass


def test_an_interrupted_sentence_run_resumes_to_the_same_result(cue_data, fp32_sentences, tmp_path):
    tr, va = cue_data
    cfg = SENTENCES.replace(epochs=3, precision="fp32")
    state = tmp_path / "state"

    def stop_at_1(epoch, score):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(TINY, cfg, tr, va, state_dir=str(state), state_policy=policy(state), on_epoch=stop_at_1, **SCORED)
    resumed = train(TINY, cfg, tr, va, state_dir=str(state), state_policy=policy(state), **SCORED)
    assert resumed.resumed_from == 1
    assert without_timings(resumed.history) == without_timings(fp32_sentences.history)
    np.testing.assert_allclose(resumed.val_probs, fp32_sentences.val_probs, atol=1e-6)
    np.testing.assert_allclose(
        resumed.val_prediction.sentence_probs, fp32_sentences.val_prediction.sentence_probs, atol=1e-6
    )


def test_a_sentence_checkpoint_loads_back_to_the_same_predictions(cue_data, fp32_sentences, tmp_path):
    _, va = cue_data
    cfg = SENTENCES.replace(epochs=3, precision="fp32")
    save_checkpoint(
        tmp_path / "m", fp32_sentences.model, fp32_sentences.tokenizer, backbone_spec=TINY, train_cfg=cfg, meta={}
    )
    model, tok, info = load_checkpoint(tmp_path / "m")
    assert isinstance(model, SentenceClassifier) and info["head_config"]["criteria_from"] == "sentences"
    a = predict(fp32_sentences.model, fp32_sentences.tokenizer, va, cfg, max_length=32)
    b = predict(model, tok, va, info["train_cfg"], max_length=32)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)
    np.testing.assert_allclose(a.sentence_probs, b.sentence_probs, atol=1e-6)


# -- post mode is what it was --------------------------------------------------------------------------------

WORDS = ["we", "walked", "the", "dog", "to", "park", "and", "cooked", "pasta", "for", "dinner", "while", "rain", "fell"]
CUES = ("hopeless", "insomnia", "exhausted")
RUNS = {
    "windows_max": {},
    "evidence_frozen_attention": {
        "evidence_task": True,
        "evidence_head": "sentence_reranker",
        "freeze_layers": 1,
        "window_aggregation": "attention",
    },
}


def reference_records(n, seed):
    """Posts of 4-8 random sentences, cue word k in a random one with probability 0.4 (symptoms k and k + 3)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sentences = [
            " ".join(rng.choice(WORDS, int(rng.integers(5, 10)))).capitalize() + "."
            for _ in range(int(rng.integers(4, 9)))
        ]
        present = [k for k in range(len(CUES)) if rng.random() < 0.4]
        for k in present:
            at = int(rng.integers(0, len(sentences)))
            sentences[at] = sentences[at][:-1] + " " + CUES[k] + "."
        text = " ".join(sentences)
        labels, evidence = [0] * len(SYMPTOMS), []
        for k in present:
            s = text.index(CUES[k])
            for j in (k, k + 3):
                labels[j] = 1
                evidence.append({"symptom": SYMPTOMS[j], "start": s, "end": s + len(CUES[k])})
        out.append({"post_id": f"r{seed}_{i}", "text": text, "labels": labels, "evidence": evidence})
    return out


def reference_run(over):
    """Two epochs of CFG (+ ``over``) on 48 reference posts, predicted on 16 others."""
    cfg = CFG.replace(epochs=2, **over)
    r = train(TINY, cfg, reference_records(48, 0))
    return r.model, predict(r.model, r.tokenizer, reference_records(16, 1), cfg, max_length=32)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_post_mode_gives_the_outputs_it_gave_before_the_sentence_model(name):
    want = json.loads(REFERENCE.read_text(encoding="utf-8"))["runs"][name]
    model, pred = reference_run(RUNS[name])
    assert list(model.state_dict()) == want["state_keys"] and model_signature(model) == want["signature"]
    for k, v in model.state_dict().items():
        assert float(v.double().sum()) == pytest.approx(want["weight_sums"][k], rel=1e-5, abs=1e-5), k
    np.testing.assert_allclose(pred.probs, np.asarray(want["probs"], dtype=np.float32), rtol=0, atol=1e-6)
    spans = [[list(s) for s in row] for row in pred.spans] if pred.spans is not None else None
    assert spans == want["spans"]
    assert pred.sentence_probs is None and pred.evidence_scope == ("post" if want["spans"] is not None else None)

"""Evidence heads: shapes, gradients, masking, null spans, overfitting a toy batch, CRF details."""

from __future__ import annotations

import itertools

import pytest
import torch

from workflow_lib.learning.models.evidence_heads import EVIDENCE_HEADS, build_evidence_head
from workflow_lib.learning.spans import IGNORE

NAMES = ["start_end_linear", "start_end_mlp", "biaffine", "bio_crf", "sentence_reranker"]
H = 12
T = 10


def _batch():
    """Three examples of 10 positions; eligible tokens never start at index 0.

    ex0: eligible 1..7, sentences 1..3 | 4..7, gold span (4, 8) = sentence 1
    ex1: eligible 1..4, sentences 1..2 | 3..4, no evidence (null)
    ex2: eligible 2..8, sentences 2..4 | 5..8, gold span (2, 5) = sentence 0
    """
    mask = torch.zeros(3, T, dtype=torch.bool)
    mask[0, 1:8] = mask[1, 1:5] = mask[2, 2:9] = True
    sid = torch.full((3, T), -1, dtype=torch.long)
    sid[0, 1:4], sid[0, 4:8] = 0, 1
    sid[1, 1:3], sid[1, 3:5] = 0, 1
    sid[2, 2:5], sid[2, 5:9] = 0, 1
    tags = torch.full((3, T), IGNORE, dtype=torch.long)
    tags[mask] = 0
    tags[0, 4], tags[0, 5:8] = 1, 2
    tags[2, 2], tags[2, 3:5] = 1, 2
    gold = [[(4, 8)], [], [(2, 5)]]
    return mask, sid, tags, gold


def _states(tags, seed=0, signal=2.0):
    """Random features with a signal: dim 0 inside, dim 1 start, dim 2 end of the gold span."""
    g = torch.Generator().manual_seed(seed)
    x = 0.5 * torch.randn(tags.shape[0], tags.shape[1], H, generator=g)
    inside = (tags == 1) | (tags == 2)
    x[..., 0] += signal * inside
    x[..., 1] += signal * (tags == 1)
    nxt = torch.cat([tags[:, 1:], torch.zeros_like(tags[:, :1])], dim=1)
    x[..., 2] += signal * (inside & (nxt != 2))
    return x


def _head(name, **kw):
    torch.manual_seed(0)
    kw.setdefault("hidden", 16)
    kw.setdefault("dropout", 0.0)
    return build_evidence_head(name, H, **kw)


def _train(head, x, mask, sid, tags, steps, lr=0.05):
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    head.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = head.loss(head(x, mask, sid), tags, sid)
        loss.backward()
        opt.step()
    head.eval()
    return loss.item()


# -- registry ----------------------------------------------------------------------------------------


def test_registry_and_builder():
    assert sorted(EVIDENCE_HEADS) == sorted(NAMES)
    for name in NAMES:
        head = build_evidence_head(name, H, hidden=8, dropout=0.2, max_span_len=5, unused_setting=1)
        assert head.name == name and head.max_span_len == 5
    assert EVIDENCE_HEADS["sentence_reranker"].uses_sentence_ids
    assert not EVIDENCE_HEADS["bio_crf"].uses_sentence_ids
    with pytest.raises(ValueError, match="biaffine.*bio_crf"):
        build_evidence_head("pointer", H)


# -- shapes, ranges, gradients --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_shapes_scores_and_decode_format(name):
    mask, sid, tags, _ = _batch()
    head = _head(name).eval()
    out = head(_states(tags), mask, sid)
    assert out["mask"].shape == (3, T)
    loss = head.loss(out, tags, sid)
    assert loss.dim() == 0 and torch.isfinite(loss)
    scores = head.token_scores(out)
    assert scores.shape == (3, T) and scores.dtype.is_floating_point
    assert ((scores >= 0) & (scores <= 1)).all()
    assert (scores[~mask] == 0).all()
    for threshold in (0.0, 0.5, 1.0):
        decoded = head.decode(out, mask, sid, threshold=threshold)
        assert len(decoded) == 3
        for b, spans in enumerate(decoded):
            assert spans == sorted(spans)
            for (s, e), nxt in zip(spans, spans[1:] + [(T + 1, T + 1)]):
                assert 0 <= s < e <= nxt[0] and mask[b, s] and mask[b, e - 1]
    if name != "bio_crf":  # nothing passes a threshold of 1 (Viterbi ignores the threshold)
        assert head.decode(out, mask, sid, threshold=1.0) == [[], [], []]


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter_and_only_eligible_states(name):
    mask, sid, tags, _ = _batch()
    head = _head(name)
    x = _states(tags).requires_grad_(True)
    out = head(x, mask, sid)
    (head.loss(out, tags, sid) + head.token_scores(out).sum()).backward()
    for pname, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    assert x.grad[mask].abs().sum(dim=-1).gt(0).all()
    assert (x.grad[~mask] == 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_token_scores_are_differentiable(name):
    mask, sid, tags, _ = _batch()
    head = _head(name)
    x = _states(tags).requires_grad_(True)
    head.token_scores(head(x, mask, sid)).sum().backward()
    assert x.grad[mask].abs().sum() > 0


# -- masking ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_masked_positions_change_nothing(name):
    mask, sid, tags, _ = _batch()
    head = _head(name).eval()
    x = _states(tags)
    changed = x.clone()
    changed[0, 0] = 1e6
    changed[0, 8:] = float("nan")
    changed[1, 5:] = -3e4
    changed[2, :2] = float("inf")
    other_sid = sid.clone()
    other_sid[~mask] = 7  # sentence ids at non-eligible positions are ignored too
    with torch.no_grad():
        a, b = head(x, mask, sid), head(changed, mask, other_sid)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
        assert torch.equal(head.token_scores(a), head.token_scores(b))
        assert head.loss(a, tags, sid) == head.loss(b, tags, other_sid)
        for threshold in (0.3, 0.5):
            assert head.decode(a, mask, sid, threshold) == head.decode(b, mask, other_sid, threshold)
    # and inf/NaN there poison no gradient (a masked-out logit would still give NaN weight grads)
    head.train()
    out = head(changed, mask, other_sid)
    (head.loss(out, tags, other_sid) + head.token_scores(out).sum()).backward()
    for pname, p in head.named_parameters():
        assert torch.isfinite(p.grad).all(), pname


# -- learning ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_overfits_toy_batch_with_a_null_example(name):
    mask, sid, tags, gold = _batch()
    head = _head(name)
    x = _states(tags)
    with torch.no_grad():
        first = head.loss(head(x, mask, sid), tags, sid).item()
    last = _train(head, x, mask, sid, tags, steps=100)
    assert last < first / 4
    with torch.no_grad():
        out = head(x, mask, sid)
        assert head.decode(out, mask, sid) == gold  # ex1 (all O) decodes to the null span []
        scores = head.token_scores(out)
    inside = (tags == 1) | (tags == 2)
    assert scores[inside].min() > 0.5 and scores[mask & ~inside].max() < 0.5


@pytest.mark.parametrize("name", NAMES)
def test_all_null_batch_learns_to_predict_no_span(name):
    mask, sid, tags, _ = _batch()
    null_tags = torch.where(mask, 0, IGNORE)
    head = _head(name)
    x = _states(tags)  # the features still carry the old signal: the head must learn to ignore it
    _train(head, x, mask, sid, null_tags, steps=30)
    with torch.no_grad():
        out = head(x, mask, sid)
        assert head.decode(out, mask, sid) == [[], [], []]
        assert head.token_scores(out).max() < 0.5


# -- decoding rules on set logits ----------------------------------------------------------------------


def _logit(p):
    return torch.logit(torch.tensor(p)).item()


def test_start_end_decoding_rule():
    head = _head("start_end_linear", max_span_len=4)
    mask = torch.ones(1, T, dtype=torch.bool)
    mask[0, 0] = False
    lo, hi = _logit(0.1), _logit(0.9)
    start = torch.full((1, T), lo)
    end = torch.full((1, T), lo)
    out = {"start_logits": start, "end_logits": end, "inside_logits": torch.zeros(1, T), "mask": mask}
    assert head.decode(out, mask, None) == [[]]
    start[0, [1, 2, 5, 9]] = hi  # 2 lies inside (1, 4); 9 has no end after it
    end[0, [0, 3, 7]] = hi  # 0 is not eligible
    assert head.decode(out, mask, None) == [[(1, 4), (5, 8)]]
    end[0, 7] = lo
    end[0, 9] = hi  # 9 - 5 = 4 is not < max_span_len: start 5 is dropped, 9 pairs with itself
    assert head.decode(out, mask, None) == [[(1, 4), (9, 10)]]
    assert head.decode(out, mask, None, threshold=0.95) == [[]]


def test_biaffine_decoding_is_greedy_non_overlapping():
    head = _head("biaffine", max_span_len=5)
    mask = torch.ones(1, T, dtype=torch.bool)
    x = torch.zeros(1, T, H)
    with torch.no_grad():
        out = head(x, mask, None)
    logits = torch.full((1, T, T), _logit(0.1))
    logits[0, 2, 4] = _logit(0.9)  # (2, 5)
    logits[0, 3, 6] = _logit(0.8)  # overlaps (2, 5): dropped
    logits[0, 6, 7] = _logit(0.7)  # (6, 8)
    logits[0, 1, 8] = _logit(0.99)  # longer than max_span_len: invalid pair
    out["span_logits"] = logits.masked_fill(~out["pair_mask"], -1e4)
    assert head.decode(out, mask, None) == [[(2, 5), (6, 8)]]
    assert head.decode(out, mask, None, threshold=0.85) == [[(2, 5)]]
    scores = head.token_scores(out)[0]  # best valid pair covering each token
    assert torch.allclose(scores[2:5], torch.tensor(0.9)) and torch.allclose(scores[5], torch.tensor(0.8))
    assert torch.allclose(scores[0], torch.tensor(0.1))


def test_sentence_reranker_decoding_and_scores():
    mask, sid, tags, _ = _batch()
    sid = sid.clone()
    sid[0, 3] = -1  # an eligible whitespace token in no sentence
    head = _head("sentence_reranker")
    with torch.no_grad():
        out = head(torch.zeros(3, T, H), mask, sid)
    out["sentence_logits"] = torch.tensor(
        [[_logit(0.9), _logit(0.8)], [_logit(0.2), _logit(0.6)], [_logit(0.1), _logit(0.3)]]
    )
    assert head.decode(out, mask, sid) == [[(1, 3), (4, 8)], [(3, 5)], []]
    scores = head.token_scores(out)
    assert scores[0, 3] == 0 and torch.allclose(scores[0, 1], torch.tensor(0.9))
    assert torch.allclose(scores[1, 3:5], torch.tensor(0.6)) and (scores[~mask] == 0).all()


# -- CRF ---------------------------------------------------------------------------------------------


def _crf_batch():
    """Eligible tokens start at 1, 3 and 0 (non-contiguous: 0, 2, 5); ex3 has none."""
    mask = torch.zeros(4, 7, dtype=torch.bool)
    mask[0, 1:5] = True
    mask[1, 3:7] = True
    mask[2, [0, 2, 5]] = True
    tags = torch.full((4, 7), IGNORE, dtype=torch.long)
    tags[mask] = 0
    tags[0, 2], tags[0, 3] = 1, 2
    tags[1, 6] = 1
    tags[2, 2], tags[2, 5] = 1, 2
    return mask, tags


def test_crf_matches_torchcrf_on_each_eligible_subsequence():
    mask, tags = _crf_batch()
    head = _head("bio_crf").eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 7, H, generator=g)
    with torch.no_grad():
        for p in head.crf.parameters():
            p.normal_(0, 0.5)
        out = head(x, mask, None)
        loss = head.loss(out, tags, None)
        emissions = head.emit(x)
        expected_losses, expected_decode = [], []
        for b in range(4):
            pos = torch.nonzero(mask[b]).flatten()
            if not len(pos):
                expected_decode.append([])
                continue
            em, tg = emissions[b, pos].unsqueeze(0), tags[b, pos].unsqueeze(0)
            full = torch.ones_like(tg, dtype=torch.bool)
            expected_losses.append(-head.crf(em, tg, mask=full) / len(pos))
            path = head.crf.decode(em, mask=full)[0]
            expected_decode.append(path)
        assert torch.allclose(loss, torch.stack(expected_losses).mean(), atol=1e-5)
        decoded = head.decode(out, mask, None)
    # compare paths mapped to original positions
    from workflow_lib.learning.spans import tags_to_token_spans

    for b in range(4):
        pos = torch.nonzero(mask[b]).flatten().tolist()
        want = [(pos[s], pos[e - 1] + 1) for s, e in tags_to_token_spans(expected_decode[b])]
        assert decoded[b] == want
    assert decoded[3] == []


def test_crf_learns_spans_when_first_eligible_token_is_not_at_zero():
    mask, tags = _crf_batch()
    head = _head("bio_crf")
    x = torch.zeros(4, 7, H)
    x[..., 3:] = 0.3 * torch.randn(4, 7, H - 3, generator=torch.Generator().manual_seed(2))
    x[..., 0] += 2.0 * (tags == 1)
    x[..., 1] += 2.0 * (tags == 2)
    _train(head, x, mask, None, tags, steps=80)
    with torch.no_grad():
        decoded = head.decode(head(x, mask, None), mask, None)
    # ex2's span covers eligible positions 2 and 5 (3 and 4 are not eligible)
    assert decoded == [[(2, 4)], [(6, 7)], [(2, 6)], []]


def test_crf_token_scores_are_exact_marginals():
    mask, tags = _crf_batch()
    head = _head("bio_crf").eval()
    x = torch.randn(4, 7, H, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for p in head.crf.parameters():
            p.normal_(0, 0.7)
        out = head(x, mask, None)
        scores = head.token_scores(out)
        em = head.emit(x)
        crf = head.crf
        for b in range(3):
            pos = torch.nonzero(mask[b]).flatten().tolist()
            weights, inside = [], torch.zeros(len(pos))
            seqs = list(itertools.product(range(3), repeat=len(pos)))
            for seq in seqs:
                s = crf.start_transitions[seq[0]] + crf.end_transitions[seq[-1]]
                s = s + sum(em[b, p, t] for p, t in zip(pos, seq))
                s = s + sum(crf.transitions[a, c] for a, c in zip(seq, seq[1:]))
                weights.append(s)
            probs = torch.softmax(torch.stack(weights), dim=0)
            for w, seq in zip(probs, seqs):
                inside += w * torch.tensor([float(t > 0) for t in seq])
            assert torch.allclose(scores[b, pos], inside, atol=1e-5)
        assert (scores[3] == 0).all() and (scores[~mask] == 0).all()


def test_crf_rejects_ignored_tags_at_eligible_positions():
    mask, tags = _crf_batch()
    head = _head("bio_crf")
    bad = tags.clone()
    bad[0, 2] = IGNORE
    with pytest.raises(ValueError, match="-100"):
        head.loss(head(torch.zeros(4, 7, H), mask, None), bad, None)

"""Model inputs for both tasks and both input formats (workflow_lib/learning/examples.py)."""

import numpy as np
import pytest
import torch

from workflow_lib.config import Encoder, Objective, Training
from workflow_lib.learning.examples import IGNORE, build_examples, evaluate, objective_value, post_probabilities
from workflow_lib.learning.models.encoders import load_encoder
from workflow_lib.symptoms import DESCRIPTIONS, SYMPTOMS

TINY = Encoder.resolve(
    {
        "source": "tiny",
        "tiny": {
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "init_seed": 0,
        },
        "max_length": 64,
    }
)
TEXT = "I slept fine. I feel worthless every day. Nothing else to say."
START = TEXT.index("I feel worthless")
END = TEXT.index("day.") + 4


def record(pid="p1", text=TEXT, evidence=((SYMPTOMS[6], START, END),), labels=None):
    lab = [0] * 9
    for s, _, _ in evidence:
        lab[SYMPTOMS.index(s)] = 1
    return {
        "post_id": pid,
        "text": text,
        "labels": labels or lab,
        "evidence": [{"symptom": s, "start": a, "end": b} for s, a, b in evidence],
    }


@pytest.fixture(scope="module")
def tok():
    return load_encoder(TINY)[1]


def cfg(**over):
    return Training.resolve({"evidence_task": True, **over})


def test_multi_label_rows_tag_exactly_the_evidence_tokens(tok):
    ex = build_examples([record()], tok, cfg(), 64)
    assert len(ex) == 1 and ex.targets.shape == (1, 9) and ex.targets[0, 6] == 1
    tags, offsets, elig = ex.tags[0], ex.offsets[0], ex.eligible[0]
    covered = [t for t in range(len(offsets)) if tags[t] in (1, 2)]
    assert covered and tags[covered[0]] == 1 and all(tags[t] == 2 for t in covered[1:])
    assert offsets[covered[0]][0] == START and offsets[covered[-1]][1] == END
    assert tags[0] == IGNORE and not elig[0]  # [CLS]
    assert ex.gold_spans == [[(START, END)]] and bool(ex.complete[0])
    assert set(ex.sentence_ids[0][elig].tolist()) == {0, 1, 2}


def test_binary_pairs_are_post_major_with_descriptions_outside_the_spans(tok):
    recs = [record("a"), record("b", evidence=())]
    ex = build_examples(recs, tok, cfg(input_format="binary_pairs"), 64)
    assert len(ex) == 18 and ex.targets.shape == (18, 1)
    assert ex.targets[:, 0].tolist() == [float(i == 6) for i in range(9)] + [0.0] * 9
    assert ex.token_type_ids is not None
    # only the worthlessness pair of post a has the span; the description segment is never eligible
    assert [bool((ex.tags[i] == 1).any()) for i in range(18)] == [i == 6 for i in range(18)]
    decoded = tok.decode(ex.input_ids[3][ex.token_type_ids[3] == 1])
    assert DESCRIPTIONS[SYMPTOMS[3]].split()[0].lower() in decoded.lower()
    assert not bool(ex.eligible[3][ex.token_type_ids[3] == 1].any())
    probs = np.arange(18, dtype=np.float32)[:, None] / 18
    assert post_probabilities(ex, probs).shape == (2, 9)
    assert post_probabilities(ex, probs)[1, 0] == pytest.approx(9 / 18)


def test_incomplete_evidence_gets_no_target_in_training_and_no_score(tok):
    unaligned = record("u")
    unaligned["evidence"].append({"symptom": SYMPTOMS[0], "start": None, "end": None})
    unaligned["labels"][0] = 1
    ex = build_examples([record(), unaligned], tok, cfg(), 64)
    assert ex.complete.tolist() == [True, False]
    train_batch = ex.batch(torch.tensor([0, 1]), training=True)
    assert bool(train_batch["eligible"][0].any()) and not bool(train_batch["eligible"][1].any())
    assert bool(ex.batch(torch.tensor([1]))["eligible"].any())  # still predicted at inference
    m = evaluate(ex, [record(), unaligned], np.zeros((2, 9)), [[(START, END)], []])
    assert m["evidence"]["n"] == 1 and m["evidence"]["n_incomplete_excluded"] == 1
    assert m["evidence"]["exact_match"] == 1.0


def test_truncation_keeps_the_visible_part_of_a_span(tok):
    long_text = "word " * 40 + "I feel worthless every day."
    s = long_text.index("I feel")
    ex = build_examples([record(text=long_text, evidence=((SYMPTOMS[6], s, len(long_text)),))], tok, cfg(), 16)
    assert ex.input_ids.shape[1] == 16
    assert not bool((ex.tags[0] == 1).any())  # the evidence lies beyond max_length: no visible span


def test_objective_weighs_criteria_and_evidence():
    m = {"criteria": {"macro_f1": 0.6}, "evidence": {"token_f1": 0.2}}
    assert objective_value(
        m, "macro_f1", Objective.resolve({"criteria_weight": 1, "evidence_weight": 0, "evidence_metric": "token_f1"})
    ) == pytest.approx(0.6)
    assert objective_value(
        m, "macro_f1", Objective.resolve({"criteria_weight": 1, "evidence_weight": 3, "evidence_metric": "token_f1"})
    ) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="evidence_task"):
        objective_value(
            {"criteria": {"macro_f1": 0.6}},
            "macro_f1",
            Objective.resolve({"criteria_weight": 1, "evidence_weight": 1, "evidence_metric": "token_f1"}),
        )


def test_a_reused_fold_is_rescored_with_the_current_objective():
    from workflow_lib.search.hpo import fold_score

    stored = {
        "score": 0.6,
        "metrics": {"macro_f1": 0.6, "micro_f1": 0.7},
        "evidence_metrics": {"token_f1": 0.2, "char_f1": 0.3, "exact_match": 0.1},
    }
    criteria_only = Objective.resolve({"criteria_weight": 1, "evidence_weight": 0, "evidence_metric": "token_f1"})
    assert fold_score(stored, "macro_f1", criteria_only) == pytest.approx(0.6)
    assert fold_score(stored, "micro_f1", criteria_only) == pytest.approx(0.7)
    both = Objective.resolve({"criteria_weight": 1, "evidence_weight": 1, "evidence_metric": "char_f1"})
    assert fold_score(stored, "macro_f1", both) == pytest.approx(0.45)
    with pytest.raises(ValueError, match="evidence_task"):
        fold_score({"metrics": {"macro_f1": 0.6}}, "macro_f1", both)

"""The binary_pairs multitask model (one row per post and symptom, a sentence reranker for the evidence) learns
both tasks (the other multitask models: tests/unit/learning/test_training.py)."""

from __future__ import annotations

import pytest

from tests.helpers.training import assert_multitask_learns_both_tasks, toy_data


@pytest.mark.integration  # nine pair rows per post: about 50 s on 2 shared cores
def test_binary_pairs_sentence_reranker_learns_both_tasks():
    assert_multitask_learns_both_tasks(
        toy_data(),
        {
            "input_format": "binary_pairs",
            "evidence_task": True,
            "evidence_head": "sentence_reranker",
            "multitask": "coupled",
            "coupling": "concat",
            "coupling_pooling": "max",
        },
    )

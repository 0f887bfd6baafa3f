"""The augmentation tests' posts (tests/unit/learning/test_augment.py, tests/integration/test_augment_process.py):
hand-made records with overlapping and unaligned evidence, and the records of the fixture sample."""

from __future__ import annotations

from pathlib import Path

from workflow_lib.data.loader import load_folder
from workflow_lib.data.prepare import build_records

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "fixtures" / "redsm5_sample"
PCT = 0.3  # share of words changed per sentence in these tests (TextAttack's pct_words_to_swap)

HAND = [
    {
        "post_id": "h1",
        "labels": [1, 0, 0, 0, 0, 0, 0, 0, 0],
        "text": "Hi all.  I feel empty and hopeless every single day. Thanks for reading!",
        "evidence": [{"symptom": "DEPRESSED_MOOD", "sentence_id": "h1_2", "start": 9, "end": 51}],
    },
    {
        "post_id": "h2",
        "labels": [0, 0, 0, 1, 0, 1, 0, 0, 0],
        "text": "I lie awake until four every night.\nEven a shower drains all my energy lately… sigh",
        "evidence": [
            {"symptom": "SLEEP_ISSUES", "start": 0, "end": 35},
            {"symptom": "FATIGUE", "start": 36, "end": 79},
            {"symptom": "FATIGUE", "start": None, "end": None, "sentence_text": "not in the post"},
        ],
    },
    # one sentence with two symptoms (same span twice) and a pair span overlapping it
    {
        "post_id": "h3",
        "labels": [0, 0, 0, 0, 0, 0, 1, 1, 0],
        "text": "I hate myself for letting everyone down. I cannot focus on anything at work. ok",
        "evidence": [
            {"symptom": "WORTHLESSNESS", "start": 0, "end": 40},
            {"symptom": "COGNITIVE_ISSUES", "start": 0, "end": 76},
            {"symptom": "DEPRESSED_MOOD", "start": 0, "end": 40},
        ],
    },
]


def sample_records() -> list[dict]:
    """The prepared records of the fixture sample (evidence aligned at threshold 0.5)."""
    records, _ = build_records(load_folder(SAMPLE), 0.5)
    return records

"""The nine DSM-5 major-depressive-episode symptoms of ReDSM5, in DSM order.

The one place that names them: the data loader, the generator, the label
vectors, the reports and the binary_pairs descriptions all read from here.
"""

from __future__ import annotations

import json
from pathlib import Path

SYMPTOMS: tuple[str, ...] = (
    "DEPRESSED_MOOD",
    "ANHEDONIA",
    "APPETITE_CHANGE",
    "SLEEP_ISSUES",
    "PSYCHOMOTOR",
    "FATIGUE",
    "WORTHLESSNESS",
    "COGNITIVE_ISSUES",
    "SUICIDAL_THOUGHTS",
)

# Present in the full ReDSM5 release; not one of the nine criteria. Rows with it
# are accepted by the loader and left out of the nine-symptom label vector.
EXTRA_LABELS: tuple[str, ...] = ("SPECIAL_CASE",)

# The binary_pairs input pairs a post with each symptom's description. The descriptions are
# data (symptom_descriptions.json beside this file): edit them there; they enter the trial key
# of binary_pairs trials, so changed descriptions never reuse folds trained on the old ones.
DESCRIPTIONS: dict[str, str] = json.loads(
    (Path(__file__).resolve().parent / "symptom_descriptions.json").read_text(encoding="utf-8")
)
if sorted(DESCRIPTIONS) != sorted(SYMPTOMS):  # pragma: no cover - a broken install
    raise RuntimeError(f"symptom_descriptions.json must describe exactly {', '.join(SYMPTOMS)}")

INDEX: dict[str, int] = {name: i for i, name in enumerate(SYMPTOMS)}

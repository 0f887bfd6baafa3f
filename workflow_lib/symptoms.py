"""The nine DSM-5 major-depressive-episode symptoms of ReDSM5, in DSM order.

The one place that names them: the data loader, the generator, the label
vectors, the reports and the binary_pairs descriptions all read from here.
"""
from __future__ import annotations

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

DESCRIPTIONS: dict[str, str] = {
    "DEPRESSED_MOOD": "Depressed mood most of the day, nearly every day (feeling sad, empty, hopeless).",
    "ANHEDONIA": "Markedly diminished interest or pleasure in all, or almost all, activities.",
    "APPETITE_CHANGE": "Significant weight loss or gain, or a decrease or increase in appetite.",
    "SLEEP_ISSUES": "Insomnia or hypersomnia nearly every day.",
    "PSYCHOMOTOR": "Psychomotor agitation or retardation observable by others.",
    "FATIGUE": "Fatigue or loss of energy nearly every day.",
    "WORTHLESSNESS": "Feelings of worthlessness or excessive or inappropriate guilt.",
    "COGNITIVE_ISSUES": "Diminished ability to think or concentrate, or indecisiveness.",
    "SUICIDAL_THOUGHTS": "Recurrent thoughts of death, suicidal ideation, a plan or an attempt.",
}

INDEX: dict[str, int] = {name: i for i, name in enumerate(SYMPTOMS)}

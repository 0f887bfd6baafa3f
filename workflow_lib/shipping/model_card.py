"""The model card (README.md inside the final model folder), in the Hugging Face layout.

YAML front matter (language, license, tags, datasets, metrics and a ``model-index`` with the
test results) followed by Markdown sections: what the model predicts, intended and
out-of-scope use, training data, every metric with the split it was computed on, the weakest
symptoms, the decision thresholds, limitations, how to use it, and its lineage.

Everything comes from the evaluation report and the data card the pipeline wrote; the card
states nothing the reports do not hold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from workflow_lib.config import Encoder, Training
from workflow_lib.persistence.paths import Layout
from workflow_lib.symptoms import SYMPTOMS

CV_SPLIT = "cv heldout folds (train split)"

INTENDED_USE = (
    "A research tool for studying language: how Reddit users write about experiences that "
    "resemble the nine DSM-5 symptoms of a major depressive episode, for corpus analysis, "
    "annotation support and method comparison by researchers."
)
NOT_A_DEVICE = (
    "It is NOT a diagnostic device. Its outputs are not a diagnosis, a screening result or a risk score for any person."
)
OUT_OF_SCOPE = (
    "Not for decisions about individuals (clinical, employment, insurance, moderation or legal decisions).",
    "Not for crisis detection or suicide-risk triage: it does not detect emergencies, and a missed or "
    "a false SUICIDAL_THOUGHTS prediction says nothing about a person's safety. Anyone at risk needs a "
    "human, e.g. a local emergency number or crisis line.",
    "Not for diagnosing, screening or monitoring people, nor for any use without human review.",
    "Not for text outside its domain (see Limitations): other languages, clinical notes, other platforms.",
)


def _f(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    return f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _md(text: Any) -> str:
    """A table cell: pipes and newlines would break the Markdown table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(map(_md, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- parts
def dataset_name(data_card: Mapping) -> str:
    """A short name of the data source: the hub id, or what kind of local/embedded data it is."""
    src = data_card.get("source") or {}
    kind = src.get("kind")
    if kind == "hub":
        return str(src.get("id"))
    if kind == "embedded":
        return "redsm5-embedded-synthetic"
    return "redsm5-format-local"


def weakest_symptoms(per_symptom: Mapping[str, Mapping], n: int = 3) -> list[dict]:
    """The ``n`` symptoms with the lowest F1 among those with test positives (ties: smaller support
    first, then DSM order), each ``{"symptom", "f1", "support", "precision", "recall"}``."""
    scored = [
        (float(m["f1"]), int(m["support"]), SYMPTOMS.index(s), s)
        for s, m in per_symptom.items()
        if int(m["support"]) > 0
    ]
    out = []
    for f1, support, _, s in sorted(scored)[:n]:
        m = per_symptom[s]
        out.append(
            {
                "symptom": s,
                "f1": f1,
                "support": support,
                "precision": float(m["precision"]),
                "recall": float(m["recall"]),
            }
        )
    return out


def _model_index(report: Mapping, data_card: Mapping, name: str) -> list[dict]:
    m = report["metrics"]
    test, at05 = m["test"], m["test_at_0.5"]
    dataset = {
        "name": "ReDSM5"
        if (data_card.get("source") or {}).get("kind") == "hub"
        else f"ReDSM5-format data ({dataset_name(data_card)})",
        "type": dataset_name(data_card),
        "split": "test",
    }
    metrics = [
        {"type": "f1", "name": "macro F1 (test, thresholds tuned on validation)", "value": round(test["macro_f1"], 4)},
        {"type": "f1", "name": "micro F1 (test, thresholds tuned on validation)", "value": round(test["micro_f1"], 4)},
        {"type": "f1", "name": "macro F1 (test, threshold 0.5)", "value": round(at05["macro_f1"], 4)},
        {"type": "accuracy", "name": "subset accuracy (test, tuned thresholds)", "value": round(test["accuracy"], 4)},
    ]
    if test.get("macro_pr_auc") is not None:
        metrics.append(
            {"type": "average_precision", "name": "macro PR-AUC (test)", "value": round(test["macro_pr_auc"], 4)}
        )
    results = [
        {
            "task": {"type": "text-classification", "name": "DSM-5 symptom detection (multi-label, 9 symptoms)"},
            "dataset": dataset,
            "metrics": metrics,
        }
    ]
    ev = m.get("evidence")
    if ev:
        results.append(
            {
                "task": {"type": "token-classification", "name": "evidence span extraction"},
                "dataset": dataset,
                "metrics": [
                    {"type": k, "name": f"evidence {k} (test)", "value": round(float(ev[k]), 4)}
                    for k in ("token_f1", "char_f1", "exact_match", "null_span_accuracy")
                ],
            }
        )
    return [{"name": name, "results": results}]


def _front_matter(report: Mapping, data_card: Mapping, name: str) -> str:
    evidence = bool(report["task"]["evidence_task"])
    tags = [
        "text-classification",
        "multi-label-classification",
        "mental-health",
        "depression",
        "dsm-5",
        "redsm5",
        "reddit",
        "research-only",
        "not-for-diagnosis",
    ]
    if evidence:
        tags.insert(2, "evidence-extraction")
    front = {
        "language": ["en"],
        "license": "other",
        "license_name": "unknown",
        "license_details": "No license has been chosen for these weights; the license of the training data "
        "(ReDSM5 and its Reddit posts) also applies. Ask the data owners before any reuse.",
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "tags": tags,
        "datasets": [dataset_name(data_card)],
        "metrics": ["f1", "precision", "recall", "average_precision", "accuracy"],
        "model-index": _model_index(report, data_card, name),
    }
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000) + "---\n"


def _counts_table(data_card: Mapping) -> str:
    splits = (data_card.get("counts") or {}).get("splits") or {}
    names = [s for s in ("train", "validation", "test") if s in splits]
    rows = [
        ["posts", *[splits[s].get("posts") for s in names]],
        ["posts without any symptom", *[splits[s].get("no_symptom") for s in names]],
    ]
    for sym in SYMPTOMS:
        rows.append([f"posts with {sym}", *[(splits[s].get("per_symptom") or {}).get(sym) for s in names]])
    return _table(["", *names], rows)


def _lengths_table(data_card: Mapping) -> str | None:
    """Post lengths in words per split (the data card's ``lengths``); None for a card without them."""
    splits = (data_card.get("lengths") or {}).get("splits") or {}
    names = [s for s in ("train", "validation", "test") if s in splits]
    if not names:
        return None
    rows = []
    for name in names:
        w = splits[name].get("words") or {}
        rows.append(
            [
                name,
                splits[name].get("posts"),
                _f(w.get("mean"), 1),
                _f(w.get("p50"), 1),
                _f(w.get("p95"), 1),
                w.get("max", "n/a"),
            ]
        )
    return _table(["split", "posts", "words mean", "words p50", "words p95", "words max"], rows)


def _share(n: int, of: int, what: str) -> str:
    return f"{n} of {of} {what} ({_pct(n / of if of else 0.0)})"


def _window_text(report: Mapping, backbone_spec: Mapping | None) -> str:
    """The input window's policy and what it cut of the test posts (the report's ``input_coverage``)."""
    cov = report.get("input_coverage")
    if not cov:
        max_length = (backbone_spec or {}).get("max_length")
        return (
            f"truncation: each post is cut to the encoder's first {max_length} tokens; text past that window "
            "is not seen by the model (neither its symptoms nor its evidence)."
        )
    split, n = cov["split"], cov["n_posts"]
    posts = _share(cov["n_longer_than_window"], n, "posts")
    n_ev, beyond = cov["n_evidence_sentences"], cov["n_evidence_beyond_read"]
    evidence = (
        f"{_share(beyond, n_ev, 'evidence sentences')} start past what was read, so the model never sees them"
        if beyond
        else f"none of the {n_ev} evidence sentences starts past what was read"
    )
    if cov["policy"] == "truncate":
        return (
            f"{cov['policy_text']}, neither its symptoms nor its evidence. On the {split} split {posts} are "
            f"longer than the window, and {evidence}."
        )
    need, read = cov["windows_needed"], cov["windows_read"]
    capped = cov["n_posts_capped"]
    cap = (
        "no post was capped (every post was read to its end)"
        if not capped
        else f"{_share(capped, n, 'posts')} were capped at max_windows = {cov['max_windows']} (the rest of those posts "
        "is not read)"
    )
    return (
        f"{cov['policy_text']}. On the {split} split {posts} are longer than one window; a post is read in "
        f"{_f(read['mean'], 2)} windows on average (at most {read['max']}; windows needed: 95th percentile "
        f"{_f(need['p95'], 1)}, max {need['max']}); {cap}; {evidence}."
    )


# ---------------------------------------------------------------------------------------- card
def render_model_card(
    report: Mapping,
    data_card: Mapping,
    *,
    backbone_spec: Encoder | None = None,
    train_cfg: Training | None = None,
    model_dir: str | None = None,
    registered_model: str | None = None,
    model_alias: str | None = None,
    layout: Layout | None = None,
) -> str:
    """README.md for the final model folder.

    ``report`` is the evaluation report (its ``checkpoint`` entry may be missing: the card is
    written into the model folder before the folder's manifest exists); ``data_card`` the
    prepared data's data_card.json; ``backbone_spec`` / ``train_cfg`` the resolved encoder spec and
    training section the model was trained with (the card leaves out what is not given);
    ``registered_model`` / ``model_alias`` the MLflow registry name and
    alias (the MLflow lines are left out without both); ``layout`` the output tree the paths
    in the card name.
    """
    lin = report["lineage"]
    sel = report["selected"]
    task = report["task"]
    m = report["metrics"]
    test, at05 = m["test"], m["test_at_0.5"]
    evidence = bool(task["evidence_task"])
    fmt = task["input_format"]
    final_key = report["final_key"]
    name = f"redsm5-symptoms-{lin['backbone']}-{final_key}"
    layout = layout or Layout()
    uri = f"models:/{registered_model}@{model_alias}" if registered_model and model_alias else None
    model_dir = model_dir or layout.final_model_dir(final_key)
    spec = dict(backbone_spec or {})
    tcfg = dict(train_cfg or {})
    n_test = report["n_test_posts"]
    thr = report["thresholds"]
    out: list[str] = [_front_matter(report, data_card, name)]
    add = out.append

    add(f"# {name}\n")
    add(f"> **{NOT_A_DEVICE}** {INTENDED_USE}\n")

    # -- what it predicts
    add("## What the model predicts\n")
    what = (
        f"For one English Reddit post it gives, for each of the nine DSM-5 symptoms of a major depressive "
        f"episode ({', '.join(SYMPTOMS)}), a probability that the post describes the symptom, and a yes/no "
        f"decision at a per-symptom threshold tuned on the {thr['split']} split."
    )
    if evidence:
        scope = (
            "per symptom (post/symptom pairs)"
            if fmt == "binary_pairs"
            else "per post (one evidence head shared by all symptoms)"
        )
        what += f" With the evidence task on, it also marks the evidence: character spans of the post, {scope}."
    else:
        what += " This model has no evidence head: it does not mark evidence spans."
    add(what + "\n")
    arch = [["backbone", lin["backbone"]], ["encoder source", spec.get("source", "n/a")]]
    encoder = spec.get("hub_id") or spec.get("package") or spec.get("path")
    if encoder:
        arch.append(["encoder", f"{encoder}" + (f" @ {spec['revision']}" if spec.get("revision") else "")])
    cov = report.get("input_coverage") or {}
    arch += [
        ["max_length (tokens)", spec.get("max_length", cov.get("max_length"))],
        ["input format", fmt],
        ["evidence task", "yes" if evidence else "no"],
    ]
    policy = cov.get("policy", tcfg.get("long_posts"))
    if policy:
        arch.append(
            [
                "long posts",
                "truncate (the first max_length tokens only)"
                if policy == "truncate"
                else "windows (overlapping windows of max_length tokens over the whole post)",
            ]
        )
    if policy == "windows":
        settings = cov or {
            k: tcfg.get(j)
            for k, j in (
                ("window_overlap", "window_overlap"),
                ("max_windows", "max_windows"),
                ("aggregation", "window_aggregation"),
            )
        }
        overlap = settings.get("window_overlap")
        arch += [
            ["window overlap", "n/a" if overlap is None else f"{overlap:.0%} of a window's post tokens"],
            ["max windows per post", "all" if settings.get("max_windows") is None else settings["max_windows"]],
            ["window aggregation", settings.get("aggregation")],
        ]
    for k in ("head", "pooling", "loss", "finetune", "freeze_layers", "learning_rate", "batch_size"):
        if k in tcfg:
            arch.append([k, tcfg[k]])
    if evidence and "evidence_head" in tcfg:
        arch.append(["evidence head", tcfg["evidence_head"]])
    arch.append(["epochs (final training)", report["training"]["epochs"]])
    add(_table(["setting", "value"], arch) + "\n")

    # -- intended use
    add("## Intended use\n")
    add(f"{INTENDED_USE}\n")
    add(
        f"**{NOT_A_DEVICE}** The labels are annotators' readings of what a post says, not clinical assessments "
        "of its author.\n"
    )
    add("## Out-of-scope use\n")
    add("\n".join(f"- {line}" for line in OUT_OF_SCOPE) + "\n")

    # -- training data
    add("## Training data\n")
    src = data_card.get("source") or {}
    add(f"- Source: {data_card.get('origin') or src.get('kind', 'n/a')}")
    add(f"- Source fingerprint: `{json.dumps(src, sort_keys=True)}`")
    add(
        f"- data_key: `{data_card.get('data_key', lin['data_key'])}` (hash of the fingerprint and the preprocessing "
        "settings)"
    )
    if data_card.get("split_origin"):
        add(
            f"- Splits: {data_card['split_origin']}; folds for cross-validation are grouped by post, over the train "
            "split"
        )
    tr = report["training"]
    add(
        f"- The final model was trained on {' + '.join(tr['trained_on'])} ({tr['n_posts']} posts) for "
        f"{tr['epochs']} epoch(s); the test split ({n_test} posts) was read once, for the evaluation below.\n"
    )
    add(_counts_table(data_card) + "\n")
    lengths = _lengths_table(data_card)
    if lengths:
        add("Post lengths in words (whitespace-separated) per split:\n")
        add(lengths + "\n")

    # -- metrics
    add("## Evaluation\n")
    add("Every number names the split it was computed on. Test numbers come from one read of the test split.\n")
    rows = []
    cv = report.get("cv")
    if cv:
        rows.append(
            [
                f"CV {cv['metric']} (mean ± std over folds; objective: {cv.get('objective', cv['metric'])})",
                cv["split"],
                f"{_f(cv['mean'])} ± {_f(cv['std'])}",
                "best trial of the study, per-fold models",
            ]
        )
    rv = report.get("refit_validation")
    if rv:
        for key, label in (("at_tuned_thresholds", "tuned thresholds"), ("at_0.5", "threshold 0.5")):
            v = rv.get(key) or {}
            rows.append([f"macro F1 ({label})", rv["split"], _f(v.get("macro_f1")), rv.get("model", "refit model")])
            rows.append([f"micro F1 ({label})", rv["split"], _f(v.get("micro_f1")), rv.get("model", "refit model")])
    for label, mm in (("tuned thresholds", test), ("threshold 0.5", at05)):
        for k, name in (
            ("macro_f1", "macro F1"),
            ("micro_f1", "micro F1"),
            ("macro_precision", "macro precision"),
            ("macro_recall", "macro recall"),
            ("accuracy", "subset accuracy"),
        ):
            rows.append([f"{name} ({label})", report["split"], _f(mm[k]), "final model"])
    rows.append(["macro PR-AUC (threshold-free)", report["split"], _f(test.get("macro_pr_auc")), "final model"])
    ev = m.get("evidence")
    if ev:
        for k in ("token_f1", "char_f1", "exact_match", "null_span_accuracy"):
            rows.append(
                [
                    f"evidence {k}",
                    report["split"],
                    _f(ev[k]),
                    f"final model; {ev['n']} rows, {ev['n_null']} without gold span",
                ]
            )
    if rv and rv.get("evidence"):
        rows.append(
            ["evidence token_f1", rv["split"], _f(rv["evidence"].get("token_f1")), rv.get("model", "refit model")]
        )
    add(_table(["metric", "split", "value", "model"], rows) + "\n")

    per = test["per_symptom"]
    per05 = at05["per_symptom"]
    add(f"Per symptom ({report['split']} split, {n_test} posts; thresholds tuned on the {thr['split']} split):\n")
    add(
        _table(
            [
                "symptom",
                "support (test)",
                "threshold (tuned on validation)",
                "precision (test)",
                "recall (test)",
                "F1 (test)",
                "F1 at 0.5 (test)",
                "PR-AUC (test)",
            ],
            [
                [
                    s,
                    per[s]["support"],
                    _f(thr["values"][s], 2),
                    _f(per[s]["precision"], 3),
                    _f(per[s]["recall"], 3),
                    _f(per[s]["f1"], 3),
                    _f(per05[s]["f1"], 3),
                    _f(per[s]["pr_auc"], 3),
                ]
                for s in SYMPTOMS
            ],
        )
        + "\n"
    )

    weak = weakest_symptoms(per)
    add("### Weakest symptoms\n")
    if weak:
        add(
            f"Lowest F1 on the {report['split']} split at the tuned thresholds (few positives make these numbers "
            "noisy):\n"
        )
        add(
            "\n".join(
                f"- {w['symptom']}: F1 {_f(w['f1'], 3)} (precision {_f(w['precision'], 3)}, recall "
                f"{_f(w['recall'], 3)}), support {w['support']} test post(s)"
                for w in weak
            )
        )
        add("")
    empty = [s for s in SYMPTOMS if int(per[s]["support"]) == 0]
    if empty:
        add(f"No positive test post for {', '.join(empty)}: their test F1 is undefined (reported as 0).\n")

    if report.get("co_best"):
        add("### Co-best candidates\n")
        add(
            "Candidates tied with the selected one on the CV objective, their refit checkpoints (train split only) "
            "scored on the same test read:\n"
        )
        add(
            _table(
                ["backbone", "variant", "trial", "CV mean", "macro F1 (test, tuned)", "macro F1 (test, 0.5)"],
                [
                    [
                        c["backbone"],
                        c["variant"],
                        f"`{c['trial_key']}`",
                        _f(c["cv_mean"]),
                        _f(c["metrics"]["test"]["macro_f1"]),
                        _f(c["metrics"]["test_at_0.5"]["macro_f1"]),
                    ]
                    for c in report["co_best"]
                ],
            )
            + "\n"
        )

    # -- thresholds
    add("## Decision thresholds\n")
    add(
        f"A symptom is predicted when its probability is >= its threshold. The thresholds were "
        f"{thr['source']} ({thr['split']} split): the refit model never trained on those posts, the final model "
        "did (it trains on train + validation), so they are a choice made on held-out data, then kept fixed. "
        "They are stored in the model folder (`checkpoint.json`, `meta.thresholds`).\n"
    )
    add(_table(["symptom", "threshold"], [[s, _f(thr["values"][s], 2)] for s in SYMPTOMS]) + "\n")

    # -- limitations
    add("## Limitations\n")
    n_train = tr["n_posts"]
    add(f"- Input window: {_window_text(report, backbone_spec)}")
    add(
        "- Language and domain: English Reddit posts only (ReDSM5 comes from depression-related subreddits). "
        "Other languages, platforms, registers (clinical notes, chat, speech transcripts) and time periods are "
        "untested; expect worse and unknown behaviour there."
    )
    add(
        f"- Training set size: {n_train} posts (train + validation); rare symptoms have few examples (see the "
        "counts above), so their scores have wide uncertainty and the test split is small per symptom."
    )
    if src.get("kind") == "embedded":
        add(
            "- This model was trained on the pipeline's embedded synthetic ReDSM5-format data, not on real posts: "
            "its numbers say that the pipeline works, nothing about real text."
        )
    add(
        "- Labels are post-level readings by annotators; a post mentioning a symptom is not evidence that its "
        "author has it, and irony, quotes and negation are hard for the model."
    )
    if evidence:
        add(
            "- Evidence spans are sentence-level annotations aligned to the post; a span can be missing when the "
            "annotated sentence could not be aligned."
        )
    add("")

    # -- how to use
    add("## How to use\n")
    add(
        "Predict with the project's command-line tool (probabilities, decisions at the tuned thresholds"
        + (", evidence spans" if evidence else "")
        + "):\n"
    )
    add("```bash")
    add(f"redsm5-predict {model_dir} posts.csv -o predictions.jsonl")
    if uri:
        add(f"redsm5-predict {uri} posts.csv -o predictions.jsonl")
    add("```\n")
    add("`posts.csv` has the columns `post_id,text` (ReDSM5's posts.csv works as is). In Python:\n")
    add("```python")
    add("from workflow_lib.shipping.predict import Predictor")
    add("")
    add(f'predictor = Predictor.load("{model_dir}")' + (f'  # or "{uri}"' if uri else ""))
    add('rows = predictor.predict([{"post_id": "1", "text": "I cannot sleep and nothing is fun any more."}])')
    add('rows[0]["probabilities"], rows[0]["predicted"]')
    add("```\n")
    if uri:
        add(
            f"The MLflow model registry holds it as `{registered_model}`; the alias `{model_alias}` points at "
            f"the newest final model (`{uri}`).\n"
        )
    add(
        "The folder's `manifest.json` lists the sha256 of every file in it (this card included); "
        "`workflow_lib.learning.checkpoint.load_checkpoint` verifies them before loading.\n"
    )

    # -- lineage
    add("## Lineage\n")
    add(
        _table(
            ["key", "value"],
            [
                ["final_key", f"`{final_key}`"],
                ["data_key", f"`{lin['data_key']}`"],
                ["study_key", f"`{lin['study_key']}` (variant v{lin['variant']})"],
                ["trial_key", f"`{lin['trial_key']}`"],
                ["selection_key", f"`{lin['selection_key']}`"],
                ["selected params", f"`{json.dumps(sel.get('params'), sort_keys=True)}`"],
                ["code_version", f"`{lin['code_version']}`"],
            ],
        )
        + "\n"
    )
    # no creation time: the card is part of the model folder, whose manifest must be the same for the same model
    add(
        f"Reports: `{layout.evaluation_report(final_key)}` (+ `{Path(layout.evaluation_html(final_key)).name}`, "
        f"`{Path(layout.test_predictions(final_key)).name}`), `{layout.selection_report(lin['selection_key'])}`.\n"
    )
    return "\n".join(out).rstrip() + "\n"

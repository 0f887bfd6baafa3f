"""Prepare a data source into the files every later stage reads.

    out_dir/posts.jsonl     one record per post, sorted by post_id:
                            {"post_id", "text", "labels": [9 ints, SYMPTOMS order],
                             "evidence": [{"symptom", "sentence_id", "sentence_text", "start", "end",
                                           "match", "similarity"}, ...],   (status-1 rows of the nine symptoms)
                             "sentences": [[start, end], ...],
                             "sentence_labels": {SYMPTOM: [[sentence_index, code], ...], ...}}
    out_dir/splits.json     {"train": [...], "validation": [...], "test": [...]}
    out_dir/folds.json      {"n_folds": k, "seed": s, "folds": [{"fold", "train", "heldout"}, ...]}
    out_dir/data_card.json  written last; validated against schemas/data_card.schema.json; its
                            ``lengths`` give the post-length distribution (words, characters) of
                            all posts, each split and each fold's held-out posts; its ``sentences``
                            the sentence counts and sentence labels described below

A label is 1 when the post has at least one status-1 annotation row for that symptom.
SPECIAL_CASE rows are counted in the card and kept out of labels, evidence and sentence labels.

Sentences. ``sentences`` are the character spans of the post's sentences in order
(``text[start:end]`` is sentence ``i``), from align.split_sentences, the splitter alignment uses.
``sentence_labels`` is sparse: for each symptom with at least one annotated sentence, the pairs
``[sentence_index, code]`` sorted by index, where code is

    1  (SENTENCE_EVIDENCE)  a status-1 row of that symptom aligned to this sentence
    -1 (SENTENCE_REJECTED)  a status-0 row of that symptom aligned to this sentence (a clinician looked at
                            it for the symptom and rejected it: a hard negative), and no status-1 row
    0  (SENTENCE_UNANNOTATED, implied by absence) no row of that symptom aligned to this sentence

Status-0 rows are aligned exactly like status-1 rows (align.align, data.alignment_threshold); a located
span labels every sentence it shares a character with (align.covered_sentences: a nearest match may be
two adjacent sentences). Status 1 wins: a sentence with rows of both statuses for one symptom is 1.
An unaligned row (or one without sentence text) labels no sentence; an unaligned status-1 row still
makes the post label 1, so a positive post may have no sentence labelled 1 for that symptom (the card's
sentences.positive_pairs_without_evidence_sentence counts them). :func:`sentence_label_matrix` expands
the sparse form to a dense (n_sentences, 9) array of these codes.

Prepared data written before the sentences were kept lack both fields (and the card's ``sentences``);
the data key did not change, so :func:`load_prepared` refuses such a folder and asks to rerun
prepare_data.

The split follows data.split.protocol (stratified, or the ReDSM5 authors' holdout_80_20) unless
the source brings its own; the card's split_origin says which. The folds cover the train split
only (validation and test are never in a fold). The card's ``fixes`` list the known defects of
the source the loader repaired (loader.Fix), each with its file and line(s).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workflow_lib.config import ConfigError, Data, Split, validate
from workflow_lib.data.align import align, covered_sentences, split_sentences
from workflow_lib.data.loader import DataError, RawData, load_raw, source_fingerprint, truncation_policy
from workflow_lib.data.splits import HOLDOUT_TEST_SIZE, holdout_80_20, make_folds, split_posts
from workflow_lib.persistence.reports import atomic_write_text
from workflow_lib.provenance import code_version
from workflow_lib.symptoms import INDEX, SYMPTOMS

log = logging.getLogger(__name__)

FILES = ("posts.jsonl", "splits.json", "folds.json", "data_card.json")
SPLITS = ("train", "validation", "test")
WORD_THRESHOLDS = (512, 2000)  # the card counts posts over each (keys over_512_words, over_2000_words)
SENTENCE_EVIDENCE = 1  # sentence label codes (module docstring)
SENTENCE_REJECTED = -1
SENTENCE_UNANNOTATED = 0
STATUSES = ("status_1", "status_0")
RECORD_FIELDS = ("post_id", "text", "labels", "evidence", "sentences", "sentence_labels")


# ------------------------------------------------------------------------------------------------ writing


def _json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


# ------------------------------------------------------------------------------------------------ building


def _status(row: dict) -> str:
    return "status_1" if row["status"] == 1 else "status_0"


def _alignment_counts(threshold: float) -> dict:
    per_status = {st: {"aligned": 0, "exact": 0, "nearest": 0, "unaligned": 0, "no_sentence": 0} for st in STATUSES}
    return {"threshold": float(threshold), "per_status": per_status}


def _label_sentences(marks: dict[str, dict[int, int]], symptom: str, indices: list[int], status: str) -> None:
    """Mark the sentences ``indices`` for ``symptom``; status 1 wins over status 0."""
    cells = marks.setdefault(symptom, {})
    for i in indices:
        if status == "status_1":
            cells[i] = SENTENCE_EVIDENCE
        else:
            cells.setdefault(i, SENTENCE_REJECTED)


def _sparse_labels(marks: dict[str, dict[int, int]]) -> dict[str, list[list[int]]]:
    return {sym: [[i, marks[sym][i]] for i in sorted(marks[sym])] for sym in SYMPTOMS if marks.get(sym)}


def _build_record(post: dict, rows: list[dict], threshold: float, counts: dict, examples: dict) -> dict:
    text = post["text"]
    spans = split_sentences(text)
    labels = [0] * len(SYMPTOMS)
    evidence = []
    marks: dict[str, dict[int, int]] = {}
    for row in rows:
        symptom = row["DSM5_symptom"]
        if symptom not in INDEX:
            continue
        status = _status(row)
        tally = counts["per_status"][status]
        if status == "status_1":
            labels[INDEX[symptom]] = 1
        if not row["sentence_text"].strip():
            tally["no_sentence"] += 1
            continue
        hit = align(text, row["sentence_text"], threshold, spans)
        tally[hit["match"]] += 1
        if hit["match"] == "unaligned" and len(examples[status]) < 5:
            examples[status].append(f"{row['post_id']}/{row['sentence_id'] or '?'}")
        _label_sentences(marks, symptom, covered_sentences(spans, hit["start"], hit["end"]), status)
        if status == "status_1":
            evidence.append(
                {"symptom": symptom, "sentence_id": row["sentence_id"], "sentence_text": row["sentence_text"], **hit}
            )
    evidence.sort(key=lambda e: (e["start"] if e["start"] is not None else 1 << 60, e["symptom"], e["sentence_id"]))
    return {
        "post_id": post["post_id"],
        "text": text,
        "labels": labels,
        "evidence": evidence,
        "sentences": [[s, e] for s, e in spans],
        "sentence_labels": _sparse_labels(marks),
    }


def _warn_unaligned(counts: dict, examples: dict) -> None:
    for status in STATUSES:
        c = counts["per_status"][status]
        if not c["unaligned"]:
            continue
        consequence = (
            "their labels are kept, their evidence spans are null"
            if status == "status_1"
            else "they mark no sentence as a hard negative"
        )
        log.warning(
            "evidence alignment: %d of %d %s sentences could not be located in their post "
            "(similarity below %.2f; exact %d, nearest %d), e.g. %s; %s (lower data.alignment_threshold "
            "to accept looser matches)",
            c["unaligned"],
            c["exact"] + c["nearest"] + c["unaligned"],
            status.replace("_", "-"),
            counts["threshold"],
            c["exact"],
            c["nearest"],
            ", ".join(examples[status]),
            consequence,
        )


def build_records(raw: RawData, threshold: float) -> tuple[list[dict], dict]:
    """Post records (sorted by id; fields in the module docstring) and alignment counts: the card's
    ``alignment`` (exact, nearest, unaligned, no_sentence of the status-1 rows at the top level, as
    before; ``per_status`` for both statuses)."""
    by_post: dict[str, list[dict]] = {}
    for row in raw.annotations:
        by_post.setdefault(row["post_id"], []).append(row)
    counts = _alignment_counts(threshold)
    examples: dict[str, list[str]] = {st: [] for st in STATUSES}
    records = [
        _build_record(post, by_post.get(post["post_id"], []), threshold, counts, examples)
        for post in sorted(raw.posts, key=lambda p: p["post_id"])
    ]
    for c in counts["per_status"].values():
        c["aligned"] = c["exact"] + c["nearest"]
    _warn_unaligned(counts, examples)
    first = counts["per_status"]["status_1"]
    counts.update({k: first[k] for k in ("exact", "nearest", "unaligned", "no_sentence")})
    return records, counts


def sentence_texts(record: dict) -> list[str]:
    """The texts of a prepared post's sentences, in order."""
    return [record["text"][s:e] for s, e in record["sentences"]]


def sentence_label_matrix(record: dict) -> np.ndarray:
    """A prepared post's sentence labels as an int8 (n_sentences, 9) array (SYMPTOMS order) of the codes
    SENTENCE_EVIDENCE (1), SENTENCE_REJECTED (-1) and SENTENCE_UNANNOTATED (0)."""
    out = np.zeros((len(record["sentences"]), len(SYMPTOMS)), dtype=np.int8)
    for symptom, pairs in record["sentence_labels"].items():
        for i, code in pairs:
            out[i, INDEX[symptom]] = code
    return out


def sentence_stats(records: Iterable[dict]) -> dict:
    """The card's ``sentences``: sentences per post, labelled sentence cells by code, and status-1 (evidence)
    sentences per positive post-symptom pair (mean over all pairs and per symptom, 2 decimals)."""
    records = list(records)
    per_post = [len(r["sentences"]) for r in records]
    evidence = rejected = 0
    per_pair: dict[str, list[int]] = {s: [] for s in SYMPTOMS}
    for r in records:
        for pairs in r["sentence_labels"].values():
            evidence += sum(code == SENTENCE_EVIDENCE for _, code in pairs)
            rejected += sum(code == SENTENCE_REJECTED for _, code in pairs)
        for symptom, label in zip(SYMPTOMS, r["labels"]):
            if label:
                pairs = r["sentence_labels"].get(symptom, [])
                per_pair[symptom].append(sum(code == SENTENCE_EVIDENCE for _, code in pairs))
    mean = lambda v: round(float(np.mean(v)), 2) if v else None  # noqa: E731
    every = [n for v in per_pair.values() for n in v]
    return {
        "total": sum(per_post),
        "per_post": _distribution(per_post),
        "labelled": {"evidence": evidence, "rejected": rejected},
        "evidence_per_positive_pair": {"mean": mean(every), "per_symptom": {s: mean(v) for s, v in per_pair.items()}},
        "positive_pairs_without_evidence_sentence": sum(n == 0 for n in every),
    }


def _label_matrix(records_by_id: dict, ids: Iterable[str]) -> np.ndarray:
    ids = list(ids)
    if not ids:
        return np.zeros((0, len(SYMPTOMS)), dtype=np.int64)
    return np.array([records_by_id[i]["labels"] for i in ids], dtype=np.int64)


def check_given_splits(given: dict, known: Iterable[str], origin: str = "") -> dict:
    """Validate splits that came with the source: disjoint, known posts, all three present."""
    known = set(known)
    where = f"{origin}: " if origin else ""
    missing = [s for s in SPLITS if s not in given]
    if missing:
        raise DataError(
            f"{where}the source defines splits {', '.join(sorted(given))} but not "
            f"{', '.join(missing)}; provide train, validation and test"
        )
    owner: dict[str, str] = {}
    for split in SPLITS:
        for pid in given[split]:
            if pid in owner and owner[pid] != split:
                raise DataError(
                    f"{where}post {pid!r} is in split {owner[pid]!r} and in split {split!r}; the "
                    "splits must be disjoint - remove it from one of them"
                )
            if pid not in known:
                raise DataError(f"{where}split {split!r} lists post {pid!r}, which is not among the posts")
            owner[pid] = split
    unassigned = sorted(known - set(owner))
    if unassigned:
        raise DataError(
            f"{where}{len(unassigned)} post(s) are in no split (e.g. {', '.join(unassigned[:3])}); "
            "put every post in train, validation or test"
        )
    return {s: sorted(set(given[s])) for s in SPLITS}


def _symptom_counts(y: np.ndarray) -> dict:
    sums = y.sum(axis=0) if len(y) else np.zeros(len(SYMPTOMS), dtype=np.int64)
    return {s: int(sums[i]) for i, s in enumerate(SYMPTOMS)}


def _distribution(values: list[int]) -> dict | None:
    """mean, p50, p95 (numpy's linear interpolation; rounded to 0.1), min and max; None for no values."""
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float64)
    return {
        "mean": round(float(arr.mean()), 1),
        "p50": round(float(np.percentile(arr, 50)), 1),
        "p95": round(float(np.percentile(arr, 95)), 1),
        "min": int(arr.min()),
        "max": int(arr.max()),
    }


def length_stats(texts: Iterable[str]) -> dict:
    """Length distribution of some posts: words (whitespace-separated, str.split) and characters."""
    texts = list(texts)
    words = [len(t.split()) for t in texts]
    out = {"posts": len(texts), "words": _distribution(words), "chars": _distribution([len(t) for t in texts])}
    for limit in WORD_THRESHOLDS:
        out[f"over_{limit}_words"] = sum(w > limit for w in words)
    return out


def _lengths(by_id: dict, splits: dict, folds: list[dict]) -> dict:
    text = lambda ids: (by_id[i]["text"] for i in ids)  # noqa: E731
    return {
        "all": length_stats(text(sorted(by_id))),
        "splits": {name: length_stats(text(splits[name])) for name in SPLITS},
        "folds": [{"fold": f["fold"], "heldout": length_stats(text(f["heldout"]))} for f in folds],
    }


def _splits(raw: RawData, by_id: dict, split_cfg: Split) -> tuple[dict, str]:
    """The train/validation/test split and where it came from: the source's own, or data.split.protocol's."""
    if raw.given_splits is not None:
        if split_cfg.protocol != "stratified":
            log.warning(
                "data.split.protocol %s is not used: %s brings its own train/validation/test splits",
                split_cfg.protocol,
                raw.origin,
            )
        return check_given_splits(raw.given_splits, by_id, raw.origin), "source"
    if split_cfg.protocol == "holdout_80_20":
        ids = [p["post_id"] for p in raw.posts]  # the order of the posts file, as the authors split it
        splits = holdout_80_20(
            ids, _label_matrix(by_id, ids), validation_fraction=split_cfg.validation_fraction, seed=split_cfg.seed
        )
        return splits, "holdout_80_20"
    ids = sorted(by_id)
    splits = split_posts(
        ids,
        _label_matrix(by_id, ids),
        validation_fraction=split_cfg.validation_fraction,
        test_fraction=split_cfg.test_fraction,
        seed=split_cfg.seed,
    )
    return splits, "stratified"


def prepare(data_cfg: Data, out_dir, data_key: str) -> dict:
    """Load, align, split and fold the data the resolved ``data`` section configures; write the four files;
    return the data card."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = source_fingerprint(data_cfg)
    raw = load_raw(data_cfg, out)
    threshold = float(data_cfg.alignment_threshold)
    records, alignment = build_records(raw, threshold)
    by_id = {r["post_id"]: r for r in records}

    split_cfg = data_cfg.split
    seed = split_cfg.seed
    splits, split_origin = _splits(raw, by_id, split_cfg)
    n_folds = int(data_cfg.n_folds)
    folds = make_folds(splits["train"], _label_matrix(by_id, splits["train"]), n_folds=n_folds, seed=seed)
    train_pos = _label_matrix(by_id, splits["train"]).sum(axis=0)
    thin = [f"{s} ({int(train_pos[i])})" for i, s in enumerate(SYMPTOMS) if train_pos[i] < n_folds]
    if thin:
        log.warning(
            "data.n_folds = %d, but the train split has fewer positive posts than folds for %s; some "
            "folds hold out none of them and score F1 0 on that symptom - lower data.n_folds or add posts",
            n_folds,
            ", ".join(thin),
        )

    status_counts = {"status_1": 0, "status_0": 0}
    special = 0
    for row in raw.annotations:
        status_counts["status_1" if row["status"] == 1 else "status_0"] += 1
        special += row["DSM5_symptom"] not in INDEX
    per_split = {}
    for name in SPLITS:
        y = _label_matrix(by_id, splits[name])
        per_split[name] = {
            "posts": len(splits[name]),
            "no_symptom": int((y.sum(axis=1) == 0).sum()) if len(y) else 0,
            "per_symptom": _symptom_counts(y),
        }
    per_fold = []
    for f in folds:
        y = _label_matrix(by_id, f["heldout"])
        per_fold.append(
            {
                "fold": f["fold"],
                "train": len(f["train"]),
                "heldout": len(f["heldout"]),
                "heldout_per_symptom": _symptom_counts(y),
            }
        )
    y_all = _label_matrix(by_id, sorted(by_id))
    max_chars = data_cfg.max_post_chars  # None: no limit
    card = {
        "data_key": data_key,
        "source": fingerprint,
        "origin": raw.origin,
        "layout": raw.layout,
        "split_origin": split_origin,
        "symptoms": list(SYMPTOMS),
        "counts": {
            "posts": len(records),
            "no_symptom": int((y_all.sum(axis=1) == 0).sum()),
            "per_symptom": _symptom_counts(y_all),
            "annotation_rows": status_counts,
            "special_case_rows": special,
            "splits": per_split,
            "folds": per_fold,
        },
        "alignment": alignment,
        "sentences": sentence_stats(records),
        "lengths": _lengths(by_id, splits, folds),
        "settings": {
            "max_post_chars": max_chars,
            "n_folds": n_folds,
            "split": {
                "protocol": split_cfg.protocol,
                "seed": seed,
                "validation_fraction": split_cfg.validation_fraction,
                "test_fraction": HOLDOUT_TEST_SIZE if split_origin == "holdout_80_20" else split_cfg.test_fraction,
            },
        },
        "fixes": [fix.record() for fix in raw.fixes],
        "truncation_policy": truncation_policy(max_chars),
        "code_version": code_version(),
    }
    validate_card(card)

    card_path = out / "data_card.json"  # removed first: a stale card must never describe new files
    if card_path.exists():
        card_path.unlink()
    atomic_write_text(
        out / "posts.jsonl", "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    )
    atomic_write_text(out / "splits.json", _json(splits))
    atomic_write_text(out / "folds.json", _json({"n_folds": n_folds, "seed": seed, "folds": folds}))
    atomic_write_text(card_path, _json(card))
    log.info(
        "prepared %d posts into %s (splits %s; alignment %s)",
        len(records),
        out,
        {k: len(v) for k, v in splits.items()},
        alignment,
    )
    return card


def validate_card(card: dict) -> dict:
    try:
        return validate(card, "data_card", what="data card")
    except ConfigError as exc:
        raise DataError(str(exc)) from None


# ------------------------------------------------------------------------------------------------ reading


@dataclass
class Prepared:
    records: dict[str, dict]
    splits: dict[str, list[str]]
    folds: list[dict]
    card: dict

    def of(self, ids: Iterable[str]) -> list[dict]:
        """The post records of ``ids``, in that order."""
        return [self.records[i] for i in ids]

    def texts(self, ids: Iterable[str]) -> list[str]:
        return [self.records[i]["text"] for i in ids]

    def labels(self, ids: Iterable[str]) -> np.ndarray:
        ids = list(ids)
        if not ids:
            return np.zeros((0, len(SYMPTOMS)), dtype=np.float32)
        return np.asarray([self.records[i]["labels"] for i in ids], dtype=np.float32)

    def sentences(self, ids: Iterable[str]) -> list[list[str]]:
        """Per post of ``ids``, in that order, the texts of its sentences."""
        return [sentence_texts(self.records[i]) for i in ids]

    def sentence_labels(self, ids: Iterable[str]) -> list[np.ndarray]:
        """Per post of ``ids``, in that order, its (n_sentences, 9) sentence label codes
        (:func:`sentence_label_matrix`)."""
        return [sentence_label_matrix(self.records[i]) for i in ids]


def _older_version(d: Path, what: str) -> str:
    return (
        f"{what}: prepared by an older version of the code (before posts kept their sentences and "
        "sentence labels); rerun prepare_data: snakemake --profile profiles/local --forcerun prepare_data "
        f"(or delete {d} and run again)"
    )


def _check_record(rec: dict, d: Path) -> dict:
    missing = [k for k in RECORD_FIELDS if k not in rec]
    if missing:
        what = f"{d / 'posts.jsonl'}: post {rec.get('post_id')!r} has no {', '.join(map(repr, missing))}"
        raise DataError(_older_version(d, what))
    return rec


def load_prepared(data_dir) -> Prepared:
    """Read what :func:`prepare` wrote; raise DataError if a file is missing or inconsistent, or if an
    older version wrote it (no sentences: the data key stayed the same, so the folder must be redone)."""
    d = Path(data_dir)
    missing = [n for n in FILES if not (d / n).is_file()]
    if missing:
        raise DataError(
            f"{d}: prepared data incomplete, missing {', '.join(missing)}; run the prepare_data stage again"
        )
    card = json.loads((d / "data_card.json").read_text(encoding="utf-8"))
    if isinstance(card, dict) and "sentences" not in card:
        raise DataError(_older_version(d, f"{d / 'data_card.json'} has no 'sentences' section"))
    try:
        validate_card(card)
    except DataError as exc:
        raise DataError(
            f"{d / 'data_card.json'}: {exc}\nThe card does not match this code's schema (written by "
            "another version?); run the prepare_data stage again"
        ) from None
    records: dict[str, dict] = {}
    with open(d / "posts.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = _check_record(json.loads(line), d)
                records[rec["post_id"]] = rec
    splits = json.loads((d / "splits.json").read_text(encoding="utf-8"))
    folds = json.loads((d / "folds.json").read_text(encoding="utf-8"))["folds"]
    if len(records) != card["counts"]["posts"]:
        raise DataError(
            f"{d}: posts.jsonl has {len(records)} posts but the data card says "
            f"{card['counts']['posts']}; the folder is inconsistent - run the prepare_data stage again"
        )
    for name, ids in splits.items():
        unknown = [i for i in ids if i not in records]
        if unknown:
            raise DataError(
                f"{d}/splits.json: split {name!r} lists unknown post(s) {', '.join(unknown[:3])}; "
                "run the prepare_data stage again"
            )
    return Prepared(records=records, splits=splits, folds=folds, card=card)

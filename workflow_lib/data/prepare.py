"""Prepare a data source into the files every later stage reads.

    out_dir/posts.jsonl     one record per post, sorted by post_id:
                            {"post_id", "text", "labels": [9 ints, SYMPTOMS order],
                             "evidence": [{"symptom", "sentence_id", "sentence_text", "start", "end",
                                           "match", "similarity"}, ...]}   (status-1 rows of the nine symptoms)
    out_dir/splits.json     {"train": [...], "validation": [...], "test": [...]}
    out_dir/folds.json      {"n_folds": k, "seed": s, "folds": [{"fold", "train", "heldout"}, ...]}
    out_dir/data_card.json  written last; validated against schemas/data_card.schema.json; its
                            ``lengths`` give the post-length distribution (words, characters) of
                            all posts, each split and each fold's held-out posts

A label is 1 when the post has at least one status-1 annotation row for that symptom.
SPECIAL_CASE rows are counted in the card and kept out of labels and evidence.
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
from workflow_lib.data.align import align
from workflow_lib.data.loader import DataError, RawData, load_raw, source_fingerprint, truncation_policy
from workflow_lib.data.splits import HOLDOUT_TEST_SIZE, holdout_80_20, make_folds, split_posts
from workflow_lib.persistence.reports import atomic_write_text
from workflow_lib.provenance import code_version
from workflow_lib.symptoms import INDEX, SYMPTOMS

log = logging.getLogger(__name__)

FILES = ("posts.jsonl", "splits.json", "folds.json", "data_card.json")
SPLITS = ("train", "validation", "test")
WORD_THRESHOLDS = (512, 2000)  # the card counts posts over each (keys over_512_words, over_2000_words)


# ------------------------------------------------------------------------------------------------ writing


def _json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


# ------------------------------------------------------------------------------------------------ building


def build_records(raw: RawData, threshold: float) -> tuple[list[dict], dict]:
    """Post records (sorted by id) and alignment counts."""
    by_post: dict[str, list[dict]] = {}
    for row in raw.annotations:
        by_post.setdefault(row["post_id"], []).append(row)
    counts = {"threshold": float(threshold), "exact": 0, "nearest": 0, "unaligned": 0, "no_sentence": 0}
    unaligned_examples: list[str] = []
    records = []
    for post in sorted(raw.posts, key=lambda p: p["post_id"]):
        labels = [0] * len(SYMPTOMS)
        evidence = []
        for row in by_post.get(post["post_id"], []):
            if row["status"] != 1 or row["DSM5_symptom"] not in INDEX:
                continue
            labels[INDEX[row["DSM5_symptom"]]] = 1
            if not row["sentence_text"].strip():
                counts["no_sentence"] += 1
                continue
            hit = align(post["text"], row["sentence_text"], threshold)
            counts[hit["match"]] += 1
            if hit["match"] == "unaligned" and len(unaligned_examples) < 5:
                unaligned_examples.append(f"{row['post_id']}/{row['sentence_id'] or '?'}")
            evidence.append(
                {
                    "symptom": row["DSM5_symptom"],
                    "sentence_id": row["sentence_id"],
                    "sentence_text": row["sentence_text"],
                    **hit,
                }
            )
        evidence.sort(key=lambda e: (e["start"] if e["start"] is not None else 1 << 60, e["symptom"], e["sentence_id"]))
        records.append({"post_id": post["post_id"], "text": post["text"], "labels": labels, "evidence": evidence})
    if counts["unaligned"]:
        total = counts["exact"] + counts["nearest"] + counts["unaligned"]
        log.warning(
            "evidence alignment: %d of %d status-1 sentences could not be located in their post "
            "(similarity below %.2f; exact %d, nearest %d), e.g. %s; their labels are kept, their "
            "evidence spans are null (lower data.alignment_threshold to accept looser matches)",
            counts["unaligned"],
            total,
            threshold,
            counts["exact"],
            counts["nearest"],
            ", ".join(unaligned_examples),
        )
    return records, counts


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


def load_prepared(data_dir) -> Prepared:
    """Read what :func:`prepare` wrote; raise DataError if a file is missing or inconsistent."""
    d = Path(data_dir)
    missing = [n for n in FILES if not (d / n).is_file()]
    if missing:
        raise DataError(
            f"{d}: prepared data incomplete, missing {', '.join(missing)}; run the prepare_data stage again"
        )
    card = json.loads((d / "data_card.json").read_text(encoding="utf-8"))
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
                rec = json.loads(line)
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

"""Train/validation/test splits and k folds: grouped by post, stratified on the nine symptoms.

Iterative multilabel stratification (Sechidis, Tsoumakas, Vlahavas 2011): repeatedly
take the label with the fewest unassigned examples and hand each of its examples to
the part, among those not yet full, that still wants most of that label (ties: the
part that wants most examples overall, then a seeded random choice). Posts without any symptom are stratified as a
tenth pseudo-label, so they are spread like the rest. A final repair pass makes sure
that every label with at least as many positives as parts appears in every part.

Deterministic for a seed and independent of the input order (posts are sorted by id
first). Every post is one example, so a post is never in two parts.

``holdout_80_20`` is the other protocol (data.split.protocol): the ReDSM5 authors' test split,
``sklearn.model_selection.train_test_split(post ids in file order, test_size=0.2, random_state=42)``
without stratification, then a stratified validation split out of the remaining 80%.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from workflow_lib.data.loader import DataError

__all__ = ["split_posts", "holdout_80_20", "make_folds", "iterative_stratification"]


def _prepare(post_ids: Sequence[str], label_matrix) -> tuple[list[str], np.ndarray]:
    ids = [str(p) for p in post_ids]
    y = np.asarray(label_matrix, dtype=np.int64)
    if y.ndim != 2 or y.shape[0] != len(ids):
        raise DataError(f"label matrix of shape {tuple(y.shape)} does not match {len(ids)} post ids")
    if len(set(ids)) != len(ids):
        dupes = sorted({p for p in ids if ids.count(p) > 1})[:5]
        raise DataError(f"duplicate post ids in the posts to split: {', '.join(dupes)}")
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    ids = [ids[i] for i in order]
    y = (y[order] > 0).astype(np.int64)
    none = (y.sum(axis=1) == 0).astype(np.int64)[:, None]
    return ids, np.concatenate([y, none], axis=1)


def iterative_stratification(y: np.ndarray, proportions: Sequence[float], rng: random.Random) -> np.ndarray:
    """Part index (0..k-1) for each row of the 0/1 matrix ``y``; parts sized by ``proportions``."""
    n, n_labels = y.shape
    props = np.asarray(proportions, dtype=float)
    props = props / props.sum()
    want = props * n  # examples each part still wants
    want_label = np.outer(props, y.sum(axis=0)).astype(float)  # (k, n_labels)
    assign = np.full(n, -1, dtype=np.int64)
    unassigned = np.ones(n, dtype=bool)
    while unassigned.any():
        counts = y[unassigned].sum(axis=0)
        candidates = [j for j in range(n_labels) if counts[j] > 0]
        if not candidates:  # rows without any label (cannot happen with the "none" column, kept for safety)
            rows = list(np.flatnonzero(unassigned))
            rng.shuffle(rows)
            for i in rows:
                part = _pick(want, None, rng)
                assign[i] = part
                want[part] -= 1
                unassigned[i] = False
            break
        label = min(candidates, key=lambda j: (counts[j], j))
        rows = [int(i) for i in np.flatnonzero(unassigned & (y[:, label] == 1))]
        rng.shuffle(rows)
        for i in rows:
            part = _pick(want, want_label[:, label], rng)
            assign[i] = part
            unassigned[i] = False
            want[part] -= 1
            want_label[part] -= y[i]
    _repair(assign, y, proportions)
    return assign


def _pick(want: np.ndarray, want_label: np.ndarray | None, rng: random.Random) -> int:
    # parts that reached their size are skipped (keeps sizes within a post of the target)
    parts = [p for p in range(len(want)) if want[p] > 1e-9] or list(range(len(want)))
    if want_label is not None:
        best = max(want_label[p] for p in parts)
        parts = [p for p in parts if want_label[p] >= best - 1e-9]
    best = max(want[p] for p in parts)
    parts = [p for p in parts if want[p] >= best - 1e-9]
    return parts[0] if len(parts) == 1 else rng.choice(parts)


def _repair(assign: np.ndarray, y: np.ndarray, proportions: Sequence[float]) -> None:
    """Move or swap posts so every label with >= k positives appears in every one of the k parts.

    Hill climbing on the number of (label, part) gaps: a post that has a missing label
    is moved from a part holding several of that label to the part lacking it, or swapped
    there against a post without it, when that lowers the gap count. Moves keep every
    part within one post of its target size; swaps keep sizes. Best effort: tiny, dense
    label matrices can make full coverage impossible.
    """
    k = len(proportions)
    props = np.asarray(proportions, dtype=float) / float(np.sum(proportions))
    lo = np.floor(props * len(assign)) - 1
    hi = np.ceil(props * len(assign)) + 1
    wanted = y.sum(axis=0) >= k

    def gaps(row: np.ndarray) -> int:
        return int(np.sum(wanted & (row == 0)))

    for _ in range(4 * y.shape[1] * k):
        counts = np.stack([y[assign == p].sum(axis=0) for p in range(k)])  # (k, labels)
        sizes = np.bincount(assign, minlength=k)
        todo = [(lab, p) for lab in np.flatnonzero(wanted) for p in range(k) if counts[p, lab] == 0]
        if not todo:
            return
        improved = False
        for lab, target in todo:
            donors = [d for d in np.argsort(-counts[:, lab], kind="stable") if d != target and counts[d, lab] >= 2]
            for donor in donors:
                before = gaps(counts[donor]) + gaps(counts[target])
                best = None
                can_move = sizes[donor] - 1 >= lo[donor] and sizes[target] + 1 <= hi[target]
                for i in np.flatnonzero((assign == donor) & (y[:, lab] == 1)):
                    if can_move:
                        after = gaps(counts[donor] - y[i]) + gaps(counts[target] + y[i])
                        if after < before and (best is None or after < best[0]):
                            best = (after, i, None)
                    for j in np.flatnonzero((assign == target) & (y[:, lab] == 0)):
                        after = gaps(counts[donor] - y[i] + y[j]) + gaps(counts[target] - y[j] + y[i])
                        if after < before and (best is None or after < best[0]):
                            best = (after, i, j)
                if best is not None:
                    _, i, j = best
                    assign[i] = target
                    if j is not None:
                        assign[j] = donor
                    improved = True
                    break
            if improved:
                break
        if not improved:
            return


def split_posts(post_ids, label_matrix, *, validation_fraction: float, test_fraction: float, seed: int) -> dict:
    """``{"train": [...], "validation": [...], "test": [...]}``: disjoint, sorted, stratified, deterministic."""
    if not (0 < validation_fraction < 1 and 0 < test_fraction < 1 and validation_fraction + test_fraction < 1):
        raise DataError(
            f"data.split: validation_fraction {validation_fraction} and test_fraction {test_fraction} "
            "must be in (0, 1) and sum to less than 1"
        )
    ids, y = _prepare(post_ids, label_matrix)
    if len(ids) < 3:
        raise DataError(f"cannot split {len(ids)} post(s) into train, validation and test; need at least 3")
    rng = random.Random(f"split:{seed}")
    props = [1 - validation_fraction - test_fraction, validation_fraction, test_fraction]
    assign = iterative_stratification(y, props, rng)
    return {
        name: [ids[i] for i in np.flatnonzero(assign == p)] for p, name in enumerate(("train", "validation", "test"))
    }


HOLDOUT_TEST_SIZE = 0.2  # the ReDSM5 authors' train_test_split(test_size=0.2, random_state=42)
HOLDOUT_RANDOM_STATE = 42


def holdout_80_20(post_ids_in_file_order, label_matrix, *, validation_fraction: float, seed: int) -> dict:
    """The ReDSM5 authors' split: ``{"train", "validation", "test"}``, disjoint and sorted.

    test: ``train_test_split(post_ids_in_file_order, test_size=0.2, random_state=42)`` exactly as the authors
    call it (no stratification), so the ids must come in the order of the posts file; validation:
    ``validation_fraction`` of the other 80%, by iterative stratification seeded by ``seed``; train: the rest."""
    from sklearn.model_selection import train_test_split

    if not 0 < validation_fraction < 1:
        raise DataError(f"data.split: validation_fraction {validation_fraction} must be in (0, 1)")
    ids = [str(p) for p in post_ids_in_file_order]
    y = np.asarray(label_matrix, dtype=np.int64)
    _prepare(ids, y)  # the same checks as the other protocol: shape, duplicate ids
    if len(ids) < 5:
        raise DataError(f"cannot split {len(ids)} post(s) into train, validation and test; need at least 5")
    rest, test = train_test_split(ids, test_size=HOLDOUT_TEST_SIZE, random_state=HOLDOUT_RANDOM_STATE)
    row = {pid: i for i, pid in enumerate(ids)}
    rest_ids, rest_y = _prepare(rest, y[[row[pid] for pid in rest]])
    assign = iterative_stratification(
        rest_y, [1 - validation_fraction, validation_fraction], random.Random(f"holdout-validation:{seed}")
    )
    parts = {name: [rest_ids[i] for i in np.flatnonzero(assign == p)] for p, name in enumerate(("train", "validation"))}
    if not parts["train"] or not parts["validation"]:
        raise DataError(
            f"validation_fraction {validation_fraction} of the {len(rest)} posts left after the 20% test split "
            "leaves the train or the validation split empty; change data.split.validation_fraction or add posts"
        )
    return {**parts, "test": sorted(test)}


def make_folds(post_ids, label_matrix, *, n_folds: int, seed: int) -> list[dict]:
    """``[{"fold": k, "train": [...], "heldout": [...]}]``: each post held out exactly once, stratified."""
    if n_folds < 2:
        raise DataError(f"data.n_folds must be at least 2, got {n_folds}")
    ids, y = _prepare(post_ids, label_matrix)
    if len(ids) < n_folds:
        raise DataError(
            f"cannot make {n_folds} folds from {len(ids)} training post(s); lower data.n_folds or provide more posts"
        )
    rng = random.Random(f"folds:{seed}")
    assign = iterative_stratification(y, [1.0] * n_folds, rng)
    folds = []
    for k in range(n_folds):
        heldout = [ids[i] for i in np.flatnonzero(assign == k)]
        train = [ids[i] for i in np.flatnonzero(assign != k)]
        folds.append({"fold": k, "train": train, "heldout": heldout})
    return folds

"""Model inputs and evaluation for both tasks, both input formats and both long-post policies.

A prepared post record (data/prepare.py) becomes one input row (``multi_label``: the post,
nine criteria targets) or nine (``binary_pairs``: the post paired with each symptom's
description, one present/absent target; rows are post-major, symptoms in SYMPTOMS order).

Every row is read through one or more *windows* of the encoder's ``max_length`` tokens - the one
windowing code path for training, evaluation, benchmark and prediction:

* ``training.long_posts: truncate`` - one window per row, the post's first tokens (the rest is cut);
* ``training.long_posts: windows`` - overlapping windows over the whole post (consecutive windows
  share ``window_overlap`` tokens; with ``binary_pairs`` every window repeats the description),
  at most ``max_windows`` per row (null: all; else the post's first ``max_windows`` windows).

Criteria targets, metrics and thresholds are per row (so per post); the model folds a row's window
logits into one (models/model.py, ``training.window_aggregation``). With the evidence task each
*window* carries BIO tags over its post tokens (a gold span is a target in every window that
contains it), the post sentence of each token, and its token character offsets in the whole post;
each row keeps the gold character spans: for ``multi_label`` every aligned evidence sentence of the
post, for ``binary_pairs`` those of the row's symptom. Predicted token spans of all a row's windows
map back to character offsets in the post and are merged (union: spans that overlap or touch become
one), so a row with no span in any window answers "no span". A row without spans teaches the null
prediction - but only when its evidence is complete (spans.evidence_is_complete): a row with
unaligned evidence, or a positive label without any evidence row, has unknown spans, so it gets no
evidence target in training and is left out of the evidence metrics.

Texts are tokenised once, right-padded; a batch is a set of rows with all their windows, cut to the
longest window (dynamic padding). ``Examples.coverage()`` says what the window policy cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from workflow_lib.config import Objective, Training
from workflow_lib.data.align import split_sentences
from workflow_lib.learning.spans import (
    char_spans_to_tags,
    evidence_char_spans,
    evidence_is_complete,
    evidence_metrics,
    merge_spans,
    token_spans_to_char_spans,
)
from workflow_lib.learning.spans import sentence_ids as token_sentence_ids
from workflow_lib.symptoms import DESCRIPTIONS, SYMPTOMS

IGNORE = -100


@dataclass
class Examples:
    """Tokenised rows of one data set part, each read through one or more windows (module docstring).

    Tensors marked (W, ...) are per window, (n, ...) per row; ``row_starts`` (n + 1) gives each
    row's windows ``row_starts[i]:row_starts[i + 1]`` (a row's windows are consecutive)."""

    input_ids: torch.Tensor  # (W, L) right-padded
    lengths: torch.Tensor  # (W,)
    targets: torch.Tensor  # (n, n_out) float 0/1
    n_posts: int
    input_format: str
    token_type_ids: torch.Tensor | None = None  # (W, L) for text pairs
    tags: torch.Tensor | None = None  # (W, L) BIO 0/1/2, IGNORE outside the post
    sentence_ids: torch.Tensor | None = None  # (W, L) post sentence of each token, -1 elsewhere
    eligible: torch.Tensor | None = None  # (W, L) bool: post tokens a span may cover
    complete: torch.Tensor | None = None  # (n,) bool: the row's gold spans are all its evidence
    offsets: list[list[tuple[int, int]]] = field(default_factory=list)  # per window (evidence task)
    texts: list[str] = field(default_factory=list)  # post text of each row
    gold_spans: list[list[tuple[int, int]]] = field(default_factory=list)  # per row
    windowed: bool = False  # long_posts == "windows": the model aggregates windows
    row_starts: torch.Tensor | None = None  # (n + 1,); None: one window per row
    window_rows: torch.Tensor | None = None  # (W,) the row of each window
    _coverage: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    @property
    def n_windows(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def has_evidence(self) -> bool:
        return self.tags is not None

    def coverage(self, split: str | None = None) -> dict:
        """What the window policy read and cut (policy, windows per post, posts and evidence past the window),
        labelled with ``split`` when given (the reports' ``input_coverage``)."""
        return {**self._coverage, "split": split} if split is not None else dict(self._coverage)

    def row_lengths(self) -> torch.Tensor:
        """(n,) tokens a row's windows hold together (its cost); the window length with one window per row."""
        if self.row_starts is None:
            return self.lengths
        return torch.zeros(len(self), dtype=self.lengths.dtype).index_add_(0, self.window_rows, self.lengths)

    def window_counts(self, idx: torch.Tensor) -> torch.Tensor:
        if self.row_starts is None:
            return torch.ones(len(idx), dtype=torch.long)
        return self.row_starts[idx + 1] - self.row_starts[idx]

    def window_index(self, idx: torch.Tensor) -> torch.Tensor:
        """The windows of rows ``idx``, row by row (the rows themselves with one window per row)."""
        if self.row_starts is None:
            return idx
        counts = self.window_counts(idx)
        first = torch.repeat_interleave(self.row_starts[idx], counts)
        within = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        return first + within

    def row_batches(self, order: torch.Tensor, max_windows: int) -> list[torch.Tensor]:
        """``order`` cut into consecutive batches of rows holding at most ``max_windows`` windows each
        (at least one row); ``order.split(max_windows)`` with one window per row."""
        if self.row_starts is None:
            return list(order.split(int(max_windows)))
        out, start, held = [], 0, 0
        counts = self.window_counts(order).tolist()
        for i, c in enumerate(counts):
            if held and held + c > max_windows:
                out.append(order[start:i])
                start, held = i, 0
            held += c
        if start < len(counts):
            out.append(order[start:])
        return out

    def window_inputs(self, widx: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encoder inputs of windows ``widx``, cut to their longest window (dynamic padding)."""
        lengths = self.lengths[widx]
        width = int(lengths.max())
        out = {
            "input_ids": self.input_ids[widx, :width],
            "attention_mask": (torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)).long(),
        }
        if self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids[widx, :width]
        return out

    def batch(self, idx: torch.Tensor, training: bool = False) -> dict[str, torch.Tensor]:
        """Model inputs for the rows ``idx``: all their windows, cut to the longest (dynamic padding);
        with windows also ``window_rows`` (the batch row of each window, 0 .. len(idx) - 1).

        ``training``: rows with incomplete evidence get no eligible token, so the evidence
        loss skips them (their spans are unknown, not empty)."""
        widx = self.window_index(idx)
        out = self.window_inputs(widx)
        width = out["input_ids"].shape[1]
        if self.windowed:
            out["window_rows"] = torch.repeat_interleave(torch.arange(len(idx)), self.window_counts(idx))
        if self.eligible is not None:
            eligible = self.eligible[widx, :width]
            sids = self.sentence_ids[widx, :width]
            if training:
                row_of = self.window_rows[widx] if self.window_rows is not None else widx
                eligible = eligible & self.complete[row_of].unsqueeze(1)
                sids = torch.where(eligible, sids, torch.full_like(sids, -1))
            out["eligible"], out["sentence_ids"] = eligible, sids
        return out

    def evidence_targets(self, idx: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """BIO tags and sentence ids of the windows of rows ``idx`` (cut to ``width``)."""
        widx = self.window_index(idx)
        return self.tags[widx, :width], self.sentence_ids[widx, :width]

    def row_char_spans(self, window_spans: Mapping[int, Sequence[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
        """Decoded token spans per window -> merged character spans in each row's post (union over
        the row's windows; spans that overlap or touch become one)."""
        rows: list[list] = [[] for _ in range(len(self))]
        for w, token_spans in window_spans.items():
            row = int(self.window_rows[w]) if self.window_rows is not None else int(w)
            rows[row].extend(token_spans_to_char_spans(list(token_spans), self.offsets[w]))
        return [merge_spans(r) for r in rows]


def _rows(records: Sequence[Mapping], input_format: str):
    """(post text, second text or None, targets, record, symptom or None) per row."""
    for r in records:
        if input_format == "binary_pairs":
            for j, s in enumerate(SYMPTOMS):
                yield r["text"], DESCRIPTIONS[s], [float(r["labels"][j])], r, s
        else:
            yield r["text"], None, [float(v) for v in r["labels"]], r, None


def window_settings(train_cfg: Training, max_length: int) -> dict:
    """The long-post policy of ``train_cfg`` for an encoder window of ``max_length`` tokens."""
    windows = train_cfg.long_posts == "windows"
    return {
        "policy": train_cfg.long_posts,
        "max_length": int(max_length),
        "window_overlap": train_cfg.window_overlap if windows else None,
        "max_windows": train_cfg.max_windows if windows else 1,
        "aggregation": train_cfg.window_aggregation if windows else None,
    }


def _stride(tokenizer, ws: Mapping, pairs: bool) -> int:
    """Tokens consecutive windows share: window_overlap x the post tokens a window holds (beside the
    longest description with pairs); 0 under truncation."""
    if not ws["window_overlap"]:
        return 0
    room = ws["max_length"] - tokenizer.num_special_tokens_to_add(pair=pairs)
    if pairs:
        room -= max(len(tokenizer(d, add_special_tokens=False)["input_ids"]) for d in DESCRIPTIONS.values())
    if room < 2:
        raise ValueError(
            f"a window of {ws['max_length']} tokens leaves {room} for the post beside the symptom "
            f"description; raise the encoder's max_length or use input_format: multi_label"
        )
    return min(int(ws["window_overlap"] * room), room - 1)


def _policy_text(ws: Mapping, fmt: str) -> str:
    if ws["policy"] == "truncate":
        return (
            "truncation: each post"
            + ("/description pair" if fmt == "binary_pairs" else "")
            + f" is cut to its first {ws['max_length']} tokens (special tokens included); the rest is not read"
        )
    cap = (
        "every window"
        if ws["max_windows"] is None
        else f"at most {ws['max_windows']} windows per post (the post's first {ws['max_windows']}; the rest is not read)"
    )
    return (
        f"windows: overlapping windows of {ws['max_length']} tokens (consecutive ones sharing "
        f"{ws['window_overlap']:.0%} of their post tokens) cover "
        f"the whole post, {cap}; the criteria logits of a post's windows are aggregated by {ws['aggregation']}"
        + ("; every window repeats the symptom description" if fmt == "binary_pairs" else "")
    )


def _coverage(
    ws: Mapping, fmt: str, records: Sequence[Mapping], needed: list[int], used: list[int], read_to: list[int]
) -> dict:
    """Per post (binary_pairs: its first pair): windows needed and read, posts longer than one window,
    and evidence sentences (the post's aligned ones, each sentence once) that start past what its windows read."""
    step = len(SYMPTOMS) if fmt == "binary_pairs" else 1
    need = np.asarray(needed[::step], dtype=int)
    use = np.asarray(used[::step], dtype=int)
    reach = read_to[::step]
    n_ev = n_beyond = 0
    for r, end in zip(records, reach):
        starts = sorted({int(e["start"]) for e in r.get("evidence", ()) if e.get("start") is not None})
        n_ev += len(starts)
        n_beyond += sum(s >= end for s in starts)
    n = len(records)
    q = (lambda a, v: float(np.percentile(a, v))) if n else (lambda a, v: 0.0)
    longer = int((need > 1).sum())
    return {
        "policy": ws["policy"],
        "policy_text": _policy_text(ws, fmt),
        "max_length": ws["max_length"],
        "window_overlap": ws["window_overlap"],
        "max_windows": ws["max_windows"],
        "aggregation": ws["aggregation"],
        "n_posts": n,
        "n_longer_than_window": longer,
        "share_longer_than_window": longer / n if n else 0.0,
        "windows_needed": {
            "mean": float(need.mean()) if n else 0.0,
            "p50": q(need, 50),
            "p95": q(need, 95),
            "max": int(need.max()) if n else 0,
        },
        "windows_read": {
            "mean": float(use.mean()) if n else 0.0,
            "max": int(use.max()) if n else 0,
            "total": int(np.asarray(used).sum()),
        },
        "n_posts_capped": int((use < need).sum()),
        "n_evidence_sentences": n_ev,
        "n_evidence_beyond_read": n_beyond,
        "share_evidence_beyond_read": n_beyond / n_ev if n_ev else 0.0,
    }


def build_examples(records: Sequence[Mapping], tokenizer, train_cfg: Training, max_length: int) -> Examples:
    """Tokenise ``records`` for the input format, tasks and long-post policy of ``train_cfg`` (once per data set)."""
    fmt = train_cfg.input_format
    evidence = train_cfg.evidence_task
    ws = window_settings(train_cfg, max_length)
    rows = list(_rows(records, fmt))
    n_out = 1 if fmt == "binary_pairs" else len(SYMPTOMS)
    if not rows:
        ex = Examples(
            torch.zeros((0, 1), dtype=torch.long),
            torch.zeros(0, dtype=torch.long),
            torch.zeros((0, n_out)),
            0,
            fmt,
            windowed=ws["policy"] == "windows",
        )
        ex._coverage = _coverage(ws, fmt, [], [], [], [])
        return ex
    firsts = [r[0] for r in rows]
    seconds = [r[1] for r in rows] if fmt == "binary_pairs" else None
    stride = _stride(tokenizer, ws, seconds is not None)
    side = getattr(tokenizer, "padding_side", "right")
    tokenizer.padding_side = "right"
    try:  # every window of every row; truncation keeps each row's first (the plain truncated encoding)
        enc = tokenizer(
            firsts,
            seconds,
            truncation="only_first" if seconds else True,
            max_length=int(max_length),
            stride=stride,
            return_overflowing_tokens=True,
            padding="longest",
            return_tensors="pt",
            return_attention_mask=True,
            return_offsets_mapping=True,
        )
    finally:
        tokenizer.padding_side = side
    window_rows_all = enc["overflow_to_sample_mapping"].long()
    needed = torch.bincount(window_rows_all, minlength=len(rows))
    within = torch.arange(len(window_rows_all)) - torch.repeat_interleave(torch.cumsum(needed, 0) - needed, needed)
    cap = ws["max_windows"]
    keep = torch.arange(len(window_rows_all)) if cap is None else torch.nonzero(within < cap).flatten()
    window_rows = window_rows_all[keep]
    used = torch.bincount(window_rows, minlength=len(rows))
    offsets_all = enc["offset_mapping"][keep]
    input_ids = enc["input_ids"][keep]
    lengths = enc["attention_mask"][keep].sum(dim=1)
    width = int(lengths.max())
    input_ids = input_ids[:, :width].contiguous()
    ttype = enc.get("token_type_ids")
    ttype = ttype[keep][:, :width].contiguous() if ttype is not None else None
    if ttype is not None and not bool(ttype.any()):
        ttype = None  # single texts: all zeros, the encoder's default
    seq_ids = [enc.sequence_ids(int(w)) for w in keep.tolist()]
    post_token = [[s == 0 for s in seq[:width]] for seq in seq_ids]
    read_to = [0] * len(rows)
    for w, row in enumerate(window_rows.tolist()):
        ends = [int(e) for (s, e), ok in zip(offsets_all[w, :width].tolist(), post_token[w]) if ok]
        if ends:
            read_to[row] = max(read_to[row], max(ends))
    row_starts = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(used, 0)])
    windowed = ws["policy"] == "windows"
    ex = Examples(
        input_ids,
        lengths,
        torch.tensor([r[2] for r in rows], dtype=torch.float32),
        len(records),
        fmt,
        token_type_ids=ttype,
        texts=firsts,
        windowed=windowed,
        row_starts=row_starts if windowed else None,
        window_rows=window_rows if windowed else None,
    )
    ex._coverage = _coverage(ws, fmt, records, needed.tolist(), used.tolist(), read_to)
    if evidence:
        n_w = len(window_rows)
        tags = torch.full((n_w, width), IGNORE, dtype=torch.long)
        sids = torch.full((n_w, width), -1, dtype=torch.long)
        elig = torch.zeros((n_w, width), dtype=torch.bool)
        complete = torch.zeros(len(rows), dtype=torch.bool)
        sentences_of: dict[int, list[tuple[int, int]]] = {}
        gold_of: list[list[tuple[int, int]]] = []
        for i, (_text, _, _, record, symptom) in enumerate(rows):
            which = None if symptom is None else [symptom]
            gold_of.append([tuple(g) for g in evidence_char_spans(record, which)])
            complete[i] = evidence_is_complete(record, which)
        for w, row in enumerate(window_rows.tolist()):
            text, _, _, record, _ = rows[row]
            offsets = [tuple(map(int, o)) for o in offsets_all[w, :width].tolist()]
            ok = [post_token[w][t] and offsets[t][1] > offsets[t][0] for t in range(width)]
            sentences = sentences_of.setdefault(id(record), split_sentences(text))
            tags[w] = torch.tensor(char_spans_to_tags(offsets, gold_of[row], ok), dtype=torch.long)
            sids[w] = torch.tensor(token_sentence_ids(offsets, sentences, ok), dtype=torch.long)
            elig[w] = torch.tensor(ok, dtype=torch.bool)
            ex.offsets.append(offsets)
        ex.gold_spans = gold_of
        ex.tags, ex.sentence_ids, ex.eligible, ex.complete = tags, sids, elig, complete
    return ex


def post_probabilities(examples: Examples, probs: np.ndarray) -> np.ndarray:
    """Row probabilities -> (n_posts, 9): binary_pairs rows are folded back post by post."""
    if examples.input_format == "binary_pairs":
        return np.asarray(probs, dtype=np.float32).reshape(examples.n_posts, len(SYMPTOMS))
    return np.asarray(probs, dtype=np.float32)


def post_labels(records: Sequence[Mapping]) -> np.ndarray:
    if not records:
        return np.zeros((0, len(SYMPTOMS)), dtype=np.int64)
    return np.asarray([r["labels"] for r in records], dtype=np.int64)


def evaluate(
    examples: Examples,
    records: Sequence[Mapping],
    probs: np.ndarray,
    pred_spans: Sequence | None = None,
    thresholds: float | Sequence[float] = 0.5,
) -> dict:
    """Criteria metrics on posts (and evidence metrics on rows when spans were predicted)."""
    from workflow_lib.learning.metrics import multilabel_metrics

    out = {"criteria": multilabel_metrics(post_labels(records), post_probabilities(examples, probs), thresholds)}
    if pred_spans is not None and examples.has_evidence:
        keep = [i for i in range(len(examples)) if bool(examples.complete[i])]
        if not keep:  # no row with known spans: nothing to score
            return out
        out["evidence"] = evidence_metrics(
            [examples.texts[i] for i in keep], [examples.gold_spans[i] for i in keep], [pred_spans[i] for i in keep]
        )
        out["evidence"]["n_incomplete_excluded"] = len(examples) - len(keep)
    return out


def objective_value(metrics: Mapping, metric: str, objective: Objective) -> float:
    """The HPO objective: weighted mean of the criteria metric and the evidence metric."""
    wc, we = objective.criteria_weight, objective.evidence_weight
    value = wc * float(metrics["criteria"][metric])
    if we > 0:
        if "evidence" not in metrics:
            raise ValueError(
                "the objective weighs evidence but the model has no evidence predictions; "
                "set training.evidence_task: true"
            )
        value += we * float(metrics["evidence"][objective.evidence_metric])
    return value / (wc + we)

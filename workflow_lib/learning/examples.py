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

``training.criteria_from: sentences`` (multi_label only): every post sentence (the record's ``sentences``,
data/prepare.py; split_sentences for a bare text) is read in one *owner* window, the one holding it whole or
most of it (:func:`owner_windows`), where its tokens (mapped from its character span through the tokenizer's
offsets) are pooled into one unit (:class:`SentenceUnits`); a batch then carries ``unit_ids`` and
``unit_rows`` for the sentence model (models/model.py SentenceClassifier), and every unit its sentence-level
targets and weights (:func:`sentence_targets`, from the record's ``sentence_labels``). Sentences no kept
window reaches are not read; the coverage's ``sentences`` block counts them. With ``sentence_context: alone``
the same sentences are then encoded each on its own instead (:func:`_read_alone`): a post's windows become its
sentences' own ``[CLS] sentence [SEP]`` encodings. The sentence model's evidence and sentence metrics: :func:`sentence_evidence`, :func:`sentence_metrics`, :func:`evaluate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from workflow_lib.config import Objective, Training
from workflow_lib.data.align import split_sentences
from workflow_lib.data.prepare import SENTENCE_EVIDENCE, SENTENCE_REJECTED, sentence_label_matrix
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
    units: SentenceUnits | None = None  # criteria_from: sentences - the sentences the model reads
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
        with windows also ``window_rows`` (the batch row of each window, 0 .. len(idx) - 1); for the
        sentence model ``unit_ids`` and ``unit_rows`` instead (SentenceUnits.batch_inputs).

        ``training``: rows with incomplete evidence get no eligible token, so the evidence
        loss skips them (their spans are unknown, not empty)."""
        widx = self.window_index(idx)
        out = self.window_inputs(widx)
        width = out["input_ids"].shape[1]
        if self.units is not None:
            out.update(self.units.batch_inputs(idx, widx, width))
        elif self.windowed:
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


# -- sentences (criteria_from: sentences) ----------------------------------------------------------


def _expand(starts: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The consecutive items ``starts[i]:starts[i + 1]`` of every ``i`` in ``idx``, in that order."""
    counts = starts[idx + 1] - starts[idx]
    first = torch.repeat_interleave(starts[idx], counts)
    within = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    return first + within


@dataclass
class SentenceUnits:
    """The sentences the sentence model reads (``training.criteria_from: sentences``), row by row.

    A *unit* is a post sentence read in its owner window (the window holding it whole, or most of it:
    :func:`owner_windows`); a post without any read sentence (an empty text) gets one unit without tokens
    and sentence -1, so every post has a logit. Units of row i are ``starts[i]:starts[i + 1]``, in
    sentence order. Sentences no kept window reaches (past max_windows, or past truncation) are no unit:
    not read."""

    token_units: torch.Tensor  # (W, L) the unit each window token is pooled into, -1 elsewhere
    starts: torch.Tensor  # (n + 1,)
    sentence: torch.Tensor  # (U,) index of the unit's sentence in its post (-1: the empty post's unit)
    spans: list[tuple[int, int]]  # (U,) character span of the unit's sentence ((0, 0) for sentence -1)
    whole: torch.Tensor  # (U,) bool: the owner window reads the whole sentence
    targets: torch.Tensor  # (U, 9) float: sentence_targets of the unit's sentence
    weights: torch.Tensor  # (U, 9) float: 0 where the label is unknown
    sentences: list[list[tuple[int, int]]]  # per row: every sentence of the post (read or not)

    def __len__(self) -> int:
        return len(self.spans)

    def index(self, idx: torch.Tensor) -> torch.Tensor:
        """The units of rows ``idx``, row by row."""
        return _expand(self.starts, idx)

    def batch_inputs(self, idx: torch.Tensor, widx: torch.Tensor, width: int) -> dict[str, torch.Tensor]:
        """``unit_ids`` (windows ``widx`` x ``width``: the batch unit of each token, -1 elsewhere) and
        ``unit_rows`` (the batch row of each unit) for the rows ``idx``."""
        uidx = self.index(idx)
        local = torch.full((len(self),), -1, dtype=torch.long)
        local[uidx] = torch.arange(len(uidx))
        ids = self.token_units[widx, :width]
        counts = self.starts[idx + 1] - self.starts[idx]
        return {
            "unit_ids": torch.where(ids >= 0, local[ids.clamp(min=0)], ids),
            "unit_rows": torch.repeat_interleave(torch.arange(len(idx)), counts),
        }

    def targets_of(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sentence targets and weights of the units of rows ``idx`` (batch order)."""
        uidx = self.index(idx)
        return self.targets[uidx], self.weights[uidx]


def post_sentences(record: Mapping) -> list[tuple[int, int]]:
    """A post's sentences: the prepared record's ``sentences`` (data/prepare.py), else split_sentences of its
    text (bare texts); ValueError when a stored span does not fit the text."""
    text = record["text"]
    if record.get("sentences") is None:
        return split_sentences(text)
    spans = [(int(a), int(b)) for a, b in record["sentences"]]
    bad = next((k for k, (a, b) in enumerate(spans) if not 0 <= a < b <= len(text)), None)
    if bad is not None:
        raise ValueError(
            f"post {record.get('post_id')!r}: sentence {bad} spans characters {spans[bad]} of a {len(text)}-character "
            "text; the prepared sentences do not belong to this text - rerun prepare_data"
        )
    return spans


def sentence_codes(record: Mapping, n_sentences: int) -> np.ndarray:
    """(n_sentences, 9) int8 sentence label codes of a post (data/prepare.py: 1 evidence, -1 rejected, 0 not
    annotated); all 0 for a record without sentence labels (a bare text)."""
    if record.get("sentence_labels") is None or record.get("sentences") is None:
        return np.zeros((n_sentences, len(SYMPTOMS)), dtype=np.int8)
    return sentence_label_matrix(record)


def sentence_targets(
    labels: Sequence[int], codes: np.ndarray, hard_negative_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """The sentence-level training targets of one post: ``(targets, weights)``, float32 (n_sentences, 9).

    Per sentence i and symptom j, from the sentence's code c (``codes``, :func:`sentence_codes`) and the post
    label y_j (``labels``):

    * c = 1 (an aligned status-1 annotation: the sentence shows the symptom) -> target 1, weight 1;
    * c = -1 (an aligned status-0 annotation: a clinician considered the sentence for the symptom and
      rejected it, a hard negative) -> target 0, weight ``hard_negative_weight``;
    * c = 0 (not annotated) and y_j = 0 -> target 0, weight 1: the post does not show the symptom, so no
      sentence of it does;
    * c = 0 and y_j = 1 -> weight 0 (no sentence loss): the post shows the symptom, but whether this
      unannotated sentence does is unknown (annotators mark the evidence they saw, not every sentence, and
      some evidence could not be aligned to a sentence).

    A weight-0 cell is also left out of the sentence metrics; the loss is the weighted mean over the cells
    (models/sentences.py sentence_loss)."""
    codes = np.asarray(codes)
    positive = np.asarray(labels, dtype=bool)[None, :]
    targets = (codes == SENTENCE_EVIDENCE).astype(np.float32)
    weights = np.where(
        codes == SENTENCE_EVIDENCE,
        1.0,
        np.where(codes == SENTENCE_REJECTED, float(hard_negative_weight), np.where(positive, 0.0, 1.0)),
    ).astype(np.float32)
    return targets, weights


def owner_windows(token_sentences: Sequence[Sequence[int]]) -> dict[int, tuple[int, int]]:
    """Sentence -> ``(window, tokens)``: the window that reads each sentence, among a post's windows given as
    their tokens' sentence ids (``token_sentences[w][t]``, -1 for tokens of no post sentence).

    The owner holds the most of the sentence's tokens (the whole sentence when a window holds it whole); among
    windows holding as many, the one where the sentence sits farthest from the window's edges (the most
    context on its shorter side), then the earlier window. ``tokens``: how many of its tokens the owner holds.
    Sentences no window holds are absent (not read)."""
    best: dict[int, tuple] = {}
    for w, sids in enumerate(token_sentences):
        post = [t for t, k in enumerate(sids) if k >= 0]
        if not post:
            continue
        first, last = post[0], post[-1]
        where: dict[int, list[int]] = {}
        for t in post:
            where.setdefault(sids[t], []).append(t)
        for k, pos in where.items():
            key = (len(pos), min(pos[0] - first, last - pos[-1]), -w)
            if k not in best or key > best[k]:
                best[k] = key
    return {k: (-key[2], key[0]) for k, key in sorted(best.items())}


def _read_range(offsets: Sequence[tuple[int, int]], ok: Sequence[bool]) -> tuple[int, int]:
    """Characters ``(start, end)`` a window reads of its post (from its first to its last post token)."""
    read = [o for o, e in zip(offsets, ok) if e]
    return (read[0][0], read[-1][1]) if read else (0, 0)


def _build_units(
    rows: Sequence[tuple], row_starts: torch.Tensor, offsets_all: torch.Tensor, post_token: list, width: int, cfg
) -> SentenceUnits:
    """The SentenceUnits of every row (``rows`` as _rows gives them) over its kept windows
    (``row_starts``; ``offsets_all`` and ``post_token`` per kept window)."""
    token_units = torch.full((int(row_starts[-1]), width), -1, dtype=torch.long)
    starts, sentence, spans, whole, targets, weights, all_sentences = [0], [], [], [], [], [], []
    empty = np.zeros(len(SYMPTOMS), dtype=np.float32)
    for i, (_text, _, labels, record, _) in enumerate(rows):
        sents = post_sentences(record)
        all_sentences.append(sents)
        t, wt = sentence_targets(labels, sentence_codes(record, len(sents)), cfg.hard_negative_weight)
        windows = range(int(row_starts[i]), int(row_starts[i + 1]))
        offsets = [[tuple(map(int, o)) for o in offsets_all[w, :width].tolist()] for w in windows]
        ok = [[post_token[w][p] and o[p][1] > o[p][0] for p in range(width)] for w, o in zip(windows, offsets)]
        sids = [token_sentence_ids(o, sents, e) for o, e in zip(offsets, ok)]
        owners = owner_windows(sids)
        for k, (w, _n) in owners.items():
            token_units[windows[w], [p for p, s in enumerate(sids[w]) if s == k]] = len(spans)
            lo, hi = _read_range(offsets[w], ok[w])
            sentence.append(k)
            spans.append(sents[k])
            whole.append(lo <= sents[k][0] and sents[k][1] <= hi)
            targets.append(t[k])
            weights.append(wt[k])
        if not owners:  # no sentence of the post is read (an empty text): one unit without tokens
            sentence.append(-1)
            spans.append((0, 0))
            whole.append(False)
            targets.append(empty)
            weights.append(empty)
        starts.append(len(spans))
    return SentenceUnits(
        token_units=token_units,
        starts=torch.tensor(starts, dtype=torch.long),
        sentence=torch.tensor(sentence, dtype=torch.long),
        spans=spans,
        whole=torch.tensor(whole, dtype=torch.bool),
        targets=torch.tensor(np.asarray(targets, dtype=np.float32).reshape(-1, len(SYMPTOMS))),
        weights=torch.tensor(np.asarray(weights, dtype=np.float32).reshape(-1, len(SYMPTOMS))),
        sentences=all_sentences,
    )


def _encode_windows(tokenizer, firsts: list[str], seconds: list[str] | None, max_length: int, stride: int):
    """Every window of every text (pair), right-padded to the longest, with offsets and the window -> text map
    (``overflow_to_sample_mapping``); windows share ``stride`` tokens. Under truncation (stride 0) a text's
    first window is its plain truncated encoding."""
    side = getattr(tokenizer, "padding_side", "right")
    tokenizer.padding_side = "right"
    try:
        return tokenizer(
            firsts,
            seconds,
            truncation="only_first" if seconds else True,
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            padding="longest",
            return_tensors="pt",
            return_attention_mask=True,
            return_offsets_mapping=True,
        )
    finally:
        tokenizer.padding_side = side


def _read_alone(ex: Examples, tokenizer, max_length: int, stride: int) -> None:
    """``sentence_context: alone``: replace the post windows of ``ex`` by its sentences' own encodings.

    Every unit (a sentence the post windows reach, :func:`_build_units`) is tokenised on its own,
    ``[CLS] sentence [SEP]``; a sentence longer than ``max_length`` gets overlapping windows of its own
    (``stride`` tokens shared), all pooled into its unit. A post's windows are its units' windows in sentence
    order; an empty post's unit reads ``[CLS] [SEP]`` and pools nothing. Every unit is then read whole."""
    units = ex.units
    texts = [ex.texts[i][a:b] for i in range(len(ex)) for a, b in units.spans[units.starts[i] : units.starts[i + 1]]]
    enc = _encode_windows(tokenizer, texts, None, max_length, stride)
    window_units = enc["overflow_to_sample_mapping"].long()
    lengths = enc["attention_mask"].sum(dim=1)
    width = int(lengths.max())
    offsets = enc["offset_mapping"][:, :width]
    own = torch.tensor([[s == 0 for s in enc.sequence_ids(w)[:width]] for w in range(len(window_units))])
    own &= offsets[..., 1] > offsets[..., 0]
    real = units.sentence[window_units] >= 0
    unit_rows = torch.repeat_interleave(torch.arange(len(ex)), units.starts[1:] - units.starts[:-1])
    ex.window_rows = unit_rows[window_units]
    ex.row_starts = torch.cat(
        [torch.zeros(1, dtype=torch.long), torch.cumsum(torch.bincount(ex.window_rows, minlength=len(ex)), 0)]
    )
    ex.input_ids = enc["input_ids"][:, :width].contiguous()
    ex.lengths = lengths
    ex.token_type_ids = None
    units.token_units = torch.where(
        own & real.unsqueeze(1), window_units.unsqueeze(1), torch.full_like(own, -1, dtype=torch.long)
    )
    units.whole = units.sentence >= 0


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
    sentences = train_cfg.sentence_aggregation if train_cfg.criteria_from == "sentences" else None
    if sentences:  # the sentence model folds sentences, not windows
        aggregation = f"sentences: {sentences}"
    else:
        aggregation = train_cfg.window_aggregation if windows else None
    return {
        "policy": train_cfg.long_posts,
        "max_length": int(max_length),
        "window_overlap": train_cfg.window_overlap if windows else None,
        "max_windows": train_cfg.max_windows if windows else 1,
        "aggregation": aggregation,
        "sentence_aggregation": sentences,
        "sentence_context": train_cfg.sentence_context if sentences else None,
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
    where = (
        "encoded alone (the sentences the post's windows reach)"
        if ws.get("sentence_context") == "alone"
        else "scored in the window holding it whole (or most of it)"
    )
    sentences = (
        f"; every sentence read is {where} and a post's criteria logits aggregate its sentences' by "
        f"{ws['sentence_aggregation']}"
        if ws["sentence_aggregation"]
        else ""
    )
    if ws["policy"] == "truncate":
        return (
            "truncation: each post"
            + ("/description pair" if fmt == "binary_pairs" else "")
            + f" is cut to its first {ws['max_length']} tokens (special tokens included); the rest is not read"
            + sentences
        )
    cap = (
        "every window"
        if ws["max_windows"] is None
        else f"at most {ws['max_windows']} windows per post (the post's first {ws['max_windows']}; the rest is not read)"
    )
    aggregation = sentences or f"; the criteria logits of a post's windows are aggregated by {ws['aggregation']}"
    return (
        f"windows: overlapping windows of {ws['max_length']} tokens (consecutive ones sharing "
        f"{ws['window_overlap']:.0%} of their post tokens) cover "
        f"the whole post, {cap}{aggregation}"
        + ("; every window repeats the symptom description" if fmt == "binary_pairs" else "")
    )


def _sentence_coverage(units: SentenceUnits, records: Sequence[Mapping]) -> dict:
    """What the sentence model read of the posts' sentences: every sentence, those read (in a window holding
    them whole, or in part: cut by the window boundary with no window holding them whole), those not read
    (past max_windows or the truncation), and the same for the evidence sentences (coded 1 for any symptom)."""
    n_all = sum(len(s) for s in units.sentences)
    real = units.sentence >= 0
    read: set[tuple[int, int]] = set()
    for i in range(len(units.sentences)):
        a, b = int(units.starts[i]), int(units.starts[i + 1])
        read.update((i, int(k)) for k in units.sentence[a:b].tolist() if k >= 0)
    evidence = [
        (i, k)
        for i, (r, sents) in enumerate(zip(records, units.sentences))
        for k in np.flatnonzero((sentence_codes(r, len(sents)) == SENTENCE_EVIDENCE).any(axis=1)).tolist()
    ]
    not_read = n_all - len(read)
    ev_not_read = sum(e not in read for e in evidence)
    return {
        "n_sentences": n_all,
        "n_read": len(read),
        "n_read_in_part": int((real & ~units.whole).sum()),
        "n_not_read": not_read,
        "share_not_read": not_read / n_all if n_all else 0.0,
        "n_evidence_sentences": len(evidence),
        "n_evidence_not_read": ev_not_read,
        "share_evidence_not_read": ev_not_read / len(evidence) if evidence else 0.0,
    }


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
        if train_cfg.criteria_from == "sentences":
            ex.units = _build_units([], torch.zeros(1, dtype=torch.long), torch.zeros((0, 1, 2)), [], 1, train_cfg)
            ex._coverage["sentences"] = _sentence_coverage(ex.units, [])
        return ex
    firsts = [r[0] for r in rows]
    seconds = [r[1] for r in rows] if fmt == "binary_pairs" else None
    stride = _stride(tokenizer, ws, seconds is not None)
    enc = _encode_windows(tokenizer, firsts, seconds, int(max_length), stride)
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
    if train_cfg.criteria_from == "sentences":
        ex.units = _build_units(rows, row_starts, offsets_all, post_token, width, train_cfg)
        if train_cfg.sentence_context == "alone":
            _read_alone(ex, tokenizer, int(max_length), stride)
        ex._coverage["sentences"] = _sentence_coverage(ex.units, records)
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


def _per_symptom(thresholds: float | Sequence[float]) -> np.ndarray:
    return np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (len(SYMPTOMS),))


def sentence_evidence(
    examples: Examples,
    sentence_probs: np.ndarray,
    post_probs: np.ndarray,
    thresholds: float | Sequence[float] = 0.5,
    evidence_threshold: float = 0.5,
) -> list[dict[str, list[tuple[int, int, float]]]]:
    """The sentence model's evidence, per post: for each predicted symptom (post probability >= its threshold)
    the read sentences whose probability for it is >= ``evidence_threshold``, or its most probable sentence
    when none is, as ``(start, end, probability)`` character spans of the post in sentence order. A symptom
    that is not predicted has no entry (nor has any symptom of a post without a read sentence).
    ``sentence_probs`` (units, 9) and ``post_probs`` (posts, 9) come from the same prediction."""
    units, thr = examples.units, _per_symptom(thresholds)
    out = []
    for i in range(len(examples)):
        real = [u for u in range(int(units.starts[i]), int(units.starts[i + 1])) if int(units.sentence[u]) >= 0]
        found: dict[str, list[tuple[int, int, float]]] = {}
        for j, symptom in enumerate(SYMPTOMS):
            if not real or post_probs[i, j] < thr[j]:
                continue
            p = sentence_probs[real, j]
            chosen = np.flatnonzero(p >= evidence_threshold).tolist() or [int(np.argmax(p))]
            found[symptom] = [(*units.spans[real[k]], float(p[k])) for k in chosen]
        out.append(found)
    return out


def sentence_cells(
    examples: Examples, records: Sequence[Mapping], sentence_probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (sentence, symptom) cell of ``records``: gold (bool: an evidence sentence), score (the sentence's
    probability; -1 for a sentence the model did not read, below any threshold) and known (the label is known, :func:`sentence_targets`
    weight > 0; a rejected sentence counts like any negative), each (sentences, 9)."""
    units = examples.units
    gold, score, known = [], [], []
    for i, record in enumerate(records):
        n = len(units.sentences[i])
        t, w = sentence_targets(record["labels"], sentence_codes(record, n), 1.0)
        p = np.full((n, len(SYMPTOMS)), -1.0)
        for u in range(int(units.starts[i]), int(units.starts[i + 1])):
            if int(units.sentence[u]) >= 0:
                p[int(units.sentence[u])] = sentence_probs[u]
        gold.append(t > 0.5)
        score.append(p)
        known.append(w > 0)
    if not gold:
        empty = np.zeros((0, len(SYMPTOMS)))
        return empty.astype(bool), empty, empty.astype(bool)
    return np.concatenate(gold), np.concatenate(score), np.concatenate(known)


EVIDENCE_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))


def sentence_threshold_counts(
    examples: Examples, records: Sequence[Mapping], sentence_probs: np.ndarray, grid: Sequence[float] = EVIDENCE_GRID
) -> dict:
    """Sentence-level true positives, false positives and false negatives over all known cells
    (:func:`sentence_cells`) at every evidence threshold of ``grid``: ``{"grid", "tp", "fp", "fn"}``; counts of
    folds add up, so the out-of-fold choice of the evidence threshold pools them (pipeline/thresholds.py)."""
    gold, score, known = sentence_cells(examples, records, sentence_probs)
    g, s = gold[known], score[known]
    tp = [int((g & (s >= t)).sum()) for t in grid]
    fp = [int((~g & (s >= t)).sum()) for t in grid]
    return {"grid": [float(t) for t in grid], "tp": tp, "fp": fp, "fn": [int(g.sum()) - k for k in tp]}


def sentence_metrics(
    examples: Examples, records: Sequence[Mapping], sentence_probs: np.ndarray, evidence_threshold: float = 0.5
) -> dict:
    """Sentence-level precision, recall and F1 per symptom of "the sentence shows the symptom" (its probability
    >= ``evidence_threshold``) against the gold sentence labels, over the sentence cells whose label is known
    (:func:`sentence_cells`). A sentence the model did not read counts as predicted negative. ``macro_f1``: the
    mean over the symptoms with a gold positive sentence (None without any); ``micro_*``: over all known cells."""
    from sklearn.metrics import precision_recall_fscore_support

    units = examples.units
    gold, score, known = sentence_cells(examples, records, sentence_probs)
    pred = score >= evidence_threshold

    def prf(g, q) -> dict:
        if not len(g):
            return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        pr, rc, f1, _ = precision_recall_fscore_support(
            g, q, average="binary", pos_label=True, labels=[False, True], zero_division=0
        )
        return {"precision": float(pr), "recall": float(rc), "f1": float(f1)}

    per = {}
    for j, symptom in enumerate(SYMPTOMS):
        g, q = gold[known[:, j], j], pred[known[:, j], j]
        per[symptom] = {**prf(g, q), "support": int(g.sum()), "n": int(len(g))}
    micro = prf(gold[known], pred[known])
    with_support = [v["f1"] for v in per.values() if v["support"]]
    return {
        "threshold": float(evidence_threshold),
        "per_symptom": per,
        "macro_f1": float(np.mean(with_support)) if with_support else None,
        "micro_precision": micro["precision"],
        "micro_recall": micro["recall"],
        "micro_f1": micro["f1"],
        "n_cells": int(known.sum()),
        "n_sentences": int(len(gold)),
        "n_sentences_not_read": int(len(gold) - int((units.sentence >= 0).sum())),
    }


def _sentence_span_metrics(
    examples: Examples, records: Sequence[Mapping], evidence: Sequence[Mapping[str, Sequence]]
) -> dict | None:
    """evidence_metrics (spans.py) of the sentence model's evidence on (post, symptom) pairs whose evidence is
    known (evidence_is_complete of that symptom); a pair's prediction is the evidence of the symptom when it is
    predicted, else no span. None when no pair has known evidence."""
    texts, gold, pred, excluded = [], [], [], 0
    for record, found in zip(records, evidence):
        for symptom in SYMPTOMS:
            if not evidence_is_complete(record, [symptom]):
                excluded += 1
                continue
            texts.append(record["text"])
            gold.append(evidence_char_spans(record, [symptom]))
            pred.append([(a, b) for a, b, _ in found.get(symptom, ())])
    if not texts:
        return None
    return {**evidence_metrics(texts, gold, pred), "n_incomplete_excluded": excluded}


def evaluate(
    examples: Examples,
    records: Sequence[Mapping],
    probs: np.ndarray,
    pred_spans: Sequence | None = None,
    thresholds: float | Sequence[float] = 0.5,
    sentence_probs: np.ndarray | None = None,
    evidence_threshold: float = 0.5,
) -> dict:
    """Criteria metrics on posts (and evidence metrics on rows when spans were predicted).

    With the sentence model's ``sentence_probs`` (units, 9): ``evidence`` = the span metrics of its evidence
    (:func:`sentence_evidence` at ``thresholds`` and ``evidence_threshold``) on (post, symptom) pairs, and
    ``sentences`` = :func:`sentence_metrics` at ``evidence_threshold``."""
    from workflow_lib.learning.metrics import multilabel_metrics

    out = {"criteria": multilabel_metrics(post_labels(records), post_probabilities(examples, probs), thresholds)}
    if sentence_probs is not None and examples.units is not None:
        found = sentence_evidence(
            examples, sentence_probs, post_probabilities(examples, probs), thresholds, evidence_threshold
        )
        spans = _sentence_span_metrics(examples, records, found)
        if spans is not None:
            out["evidence"] = spans
        out["sentences"] = sentence_metrics(examples, records, sentence_probs, evidence_threshold)
        return out
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

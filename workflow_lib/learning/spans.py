"""Evidence spans: character spans <-> token BIO tags, sentence ids, and evidence metrics.

Pure Python (no model code). Conventions used throughout:

* A *character span* ``(s, e)`` is a half-open range of character offsets into the post text,
  ``text[s:e]``; a *token span* ``(a, b)`` is a half-open range of token positions of one
  encoded example (``b`` exclusive).
* ``offsets`` is the tokenizer's ``offset_mapping`` for one encoded example, one ``(s, e)`` per
  token position (special tokens and padding are ``(0, 0)``).
* ``eligible`` marks the token positions that belong to the post segment: False for special
  tokens, padding and, when the post is encoded as a text pair, the other segment.
* A token *overlaps* a character span ``(s, e)`` when ``ts < e and te > s`` for its offsets
  ``(ts, te)``; a zero-length token overlaps nothing.
* BIO tags: ``O = 0``, ``B = 1``, ``I = 2`` and ``IGNORE = -100`` for non-eligible positions
  (the ``ignore_index`` of the usual losses).

Records written by :mod:`workflow_lib.data.prepare` carry one evidence row per (symptom,
annotated sentence); :func:`evidence_char_spans` turns a record into gold character spans and
:func:`evidence_is_complete` tells whether those spans are all of the post's evidence (see there:
an empty span list is only a true "no evidence" example when the record is complete).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Sequence

from workflow_lib.symptoms import SYMPTOMS

__all__ = [
    "O",
    "B",
    "I",
    "IGNORE",
    "merge_spans",
    "char_spans_to_tags",
    "sentence_ids",
    "tags_to_token_spans",
    "token_spans_to_char_spans",
    "evidence_char_spans",
    "evidence_is_complete",
    "canonical_spans",
    "evidence_metrics",
]

O, B, I, IGNORE = 0, 1, 2, -100  # noqa: E741 - the BIO tags' own names

Span = tuple[int, int]
_WORD_RE = re.compile(r"\S+")


# ------------------------------------------------------------------------------------------------ helpers


def merge_spans(spans: Iterable[Sequence[int]], text: str | None = None) -> list[Span]:
    """Sort ``spans`` and merge those that overlap or touch (``s2 <= e1``); drop empty ones.

    With ``text`` given, spans separated only by whitespace are merged too (``"I am sad. I
    cry."`` as two sentence spans becomes one span). Returns a sorted list of disjoint,
    non-touching spans.
    """
    items = sorted((int(s), int(e)) for s, e in spans if e is not None and s is not None and e > s)
    out: list[list[int]] = []
    for s, e in items:
        if out and (s <= out[-1][1] or (text is not None and not text[out[-1][1] : s].strip())):
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _overlaps(ts: int, te: int, s: int, e: int) -> bool:
    return ts < e and te > s


# ------------------------------------------------------------------------------------------------ tokens


def char_spans_to_tags(
    offsets: Sequence[Sequence[int]], spans: Iterable[Sequence[int]], eligible: Sequence[bool]
) -> list[int]:
    """BIO tag per token position of one encoded example.

    ``-100`` where ``eligible`` is False; otherwise ``O`` (0) when the token overlaps no span in
    ``spans``, else ``B`` (1) or ``I`` (2). A covered token is ``I`` when the previous *eligible*
    token is covered by the same span (after merging overlapping/touching spans), ``B`` otherwise;
    so two spans separated by whitespace get two ``B``\\ s, while a token straddling two spans
    continues the first one. Spans cut by truncation keep their visible tokens; a span no
    visible token overlaps is dropped. ``None``/empty spans are ignored.
    """
    if len(offsets) != len(eligible):
        raise ValueError(f"offsets has {len(offsets)} positions but eligible has {len(eligible)}")
    merged = merge_spans(spans)
    starts = [s for s, _ in merged]
    tags: list[int] = []
    prev: set[int] = set()  # span indices covering the previous eligible token
    for (ts, te), ok in zip(offsets, eligible):
        if not ok:
            tags.append(IGNORE)
            continue
        ts, te = int(ts), int(te)
        cover: set[int] = set()
        if te > ts:
            k = bisect.bisect_left(starts, te) - 1  # last span starting before te
            while k >= 0 and merged[k][1] > ts:
                if _overlaps(ts, te, *merged[k]):
                    cover.add(k)
                k -= 1
        if not cover:
            tags.append(O)
        else:
            tags.append(I if cover & prev else B)
        prev = cover
    return tags


def sentence_ids(
    offsets: Sequence[Sequence[int]], sentences: Sequence[Sequence[int]], eligible: Sequence[bool]
) -> list[int]:
    """Index in ``sentences`` (from ``align.split_sentences``) of the sentence each token falls in.

    A token falls in the sentence it overlaps most (ties: the earlier sentence). ``-1`` for
    positions that are not eligible and for eligible tokens that overlap no sentence (zero-length
    or whitespace-only tokens).
    """
    if len(offsets) != len(eligible):
        raise ValueError(f"offsets has {len(offsets)} positions but eligible has {len(eligible)}")
    sents = [(int(s), int(e)) for s, e in sentences]
    ends = [e for _, e in sents]
    out: list[int] = []
    for (ts, te), ok in zip(offsets, eligible):
        ts, te = int(ts), int(te)
        best, best_len = -1, 0
        if ok and te > ts:
            k = bisect.bisect_right(ends, ts)  # first sentence ending after ts
            while k < len(sents) and sents[k][0] < te:
                inter = min(te, sents[k][1]) - max(ts, sents[k][0])
                if inter > best_len:
                    best, best_len = k, inter
                k += 1
        out.append(best)
    return out


def tags_to_token_spans(tags: Sequence[int]) -> list[Span]:
    """Token spans ``(start, end_exclusive)`` from BIO tags (a list or 1-D tensor/array).

    ``B`` opens a span; ``I`` continues the open span, or opens one after ``O`` (lenient, so a
    decoder's ``O I`` still yields a span); ``O`` closes it. Positions tagged ``-100`` (or any
    negative value) are transparent: they neither open nor close a span, and a span never starts
    or ends on one.
    """
    if hasattr(tags, "tolist"):
        tags = tags.tolist()
    spans: list[Span] = []
    start = last = None
    for pos, tag in enumerate(tags):
        tag = int(tag)
        if tag < 0:
            continue
        if tag == B or (tag == I and start is None):
            if start is not None:
                spans.append((start, last + 1))
            start = last = pos
        elif tag == I:
            last = pos
        else:  # O (or an unknown tag)
            if start is not None:
                spans.append((start, last + 1))
            start = last = None
    if start is not None:
        spans.append((start, last + 1))
    return spans


def token_spans_to_char_spans(token_spans: Iterable[Sequence[int]], offsets: Sequence[Sequence[int]]) -> list[Span]:
    """Character spans covered by token spans, merged where they overlap or touch.

    A token span ``(a, b)`` maps to ``(min start, max end)`` over its tokens ``a .. b-1`` with
    non-empty offsets (special tokens ``(0, 0)`` are skipped); a span with no such token is
    dropped. The result is sorted and disjoint.
    """
    out = []
    for a, b in token_spans:
        pieces = [(int(s), int(e)) for s, e in offsets[int(a) : int(b)] if int(e) > int(s)]
        if pieces:
            out.append((min(s for s, _ in pieces), max(e for _, e in pieces)))
    return merge_spans(out)


# ------------------------------------------------------------------------------------------------ records


def evidence_char_spans(record: dict, symptoms: Iterable[str] | None = None) -> list[Span]:
    """Gold character spans of a prepared post record (``posts.jsonl``), merged and sorted.

    Evidence rows whose ``start``/``end`` are None (unaligned) are skipped; rows repeat when one
    sentence is evidence for several symptoms, and overlapping spans are merged. With
    ``symptoms`` given, only rows of those symptoms count (per-symptom evidence).
    """
    wanted = None if symptoms is None else set(symptoms)
    return merge_spans(
        (e["start"], e["end"])
        for e in record.get("evidence", ())
        if e.get("start") is not None and e.get("end") is not None and (wanted is None or e.get("symptom") in wanted)
    )


def evidence_is_complete(record: dict, symptoms: Iterable[str] | None = None) -> bool:
    """True when the record's aligned spans are all of its annotated evidence.

    False when an evidence row (of ``symptoms``, if given) is unaligned (start None), or when a
    symptom labelled 1 has no aligned evidence row at all (unaligned, or its annotation row had
    an empty sentence - prepare.py counts those as ``no_sentence`` and writes no row). For an
    incomplete record an empty span list does *not* mean "no evidence": leave it out of null-span
    training and metrics, or accept that it teaches a false null.
    """
    wanted = set(SYMPTOMS) if symptoms is None else set(symptoms)
    rows = [e for e in record.get("evidence", ()) if e.get("symptom") in wanted]
    if any(e.get("start") is None or e.get("end") is None for e in rows):
        return False
    aligned = {e["symptom"] for e in rows}
    labels = record.get("labels") or [0] * len(SYMPTOMS)
    return all(not labels[i] or s in aligned for i, s in enumerate(SYMPTOMS) if s in wanted)


# ------------------------------------------------------------------------------------------------ metrics


def canonical_spans(text: str, spans: Iterable[Sequence[int]] | None) -> list[Span]:
    """The form every evidence metric compares: spans clipped to ``[0, len(text)]``, stripped of
    leading/trailing whitespace, empty ones dropped, then merged where they overlap, touch or are
    separated only by whitespace (:func:`merge_spans` with ``text``).

    So two adjacent predicted sentences equal one gold span covering both (prepare.py aligns
    some evidence to a *pair* of adjacent sentences), and a span that includes the space before
    a word (offsets of some tokenizers) equals one that does not.
    """
    n = len(text)
    out = []
    for s, e in spans or ():
        if s is None or e is None:
            continue
        s, e = max(0, int(s)), min(n, int(e))
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return merge_spans(out, text)


def _covered(spans: list[Span]) -> set[int]:
    return {i for s, e in spans for i in range(s, e)}


def _f1(gold: set, pred: set) -> float:
    if not gold and not pred:
        return 1.0
    if not gold or not pred:
        return 0.0
    return 2 * len(gold & pred) / (len(gold) + len(pred))


def evidence_metrics(
    texts: Sequence[str], gold: Sequence[Iterable[Sequence[int]]], pred: Sequence[Iterable[Sequence[int]]]
) -> dict:
    """Evidence-span metrics over examples ``(texts[k], gold[k], pred[k])`` of character spans.

    Every span list is first put in :func:`canonical_spans` form. Then, per example:

    * ``exact_match``: 1 if the canonical predicted span list equals the canonical gold list
      (so both empty counts as a match), else 0;
    * ``char_f1``: F1 between the sets of character positions covered by gold and by
      prediction, ``2|G & P| / (|G| + |P|)``; 1 when both are empty, 0 when only one is;
    * ``token_f1``: the same over whitespace-separated words (maximal runs of non-whitespace,
      identified by their position), a word being covered when any of its characters is;
    * ``null_span_accuracy``: 1 if "gold has no span" equals "prediction has no span".

    Returns the means over the examples of these four (NaN when there are no examples), ``n``
    (number of examples) and ``n_null`` (examples whose canonical gold list is empty).
    """
    if not (len(texts) == len(gold) == len(pred)):
        raise ValueError(f"texts, gold and pred differ in length ({len(texts)}, {len(gold)}, {len(pred)})")
    n = len(texts)
    sums = {"exact_match": 0.0, "token_f1": 0.0, "char_f1": 0.0, "null_span_accuracy": 0.0}
    n_null = 0
    for text, g, p in zip(texts, gold, pred):
        g, p = canonical_spans(text, g), canonical_spans(text, p)
        n_null += not g
        sums["exact_match"] += float(g == p)
        sums["null_span_accuracy"] += float((not g) == (not p))
        gc, pc = _covered(g), _covered(p)
        sums["char_f1"] += _f1(gc, pc)
        words = [(m.start(), m.end()) for m in _WORD_RE.finditer(text)]
        gw = {k for k, (s, e) in enumerate(words) if any(i in gc for i in range(s, e))}
        pw = {k for k, (s, e) in enumerate(words) if any(i in pc for i in range(s, e))}
        sums["token_f1"] += _f1(gw, pw)
    out = {k: (v / n if n else math.nan) for k, v in sums.items()}
    out.update(n=n, n_null=n_null)
    return out

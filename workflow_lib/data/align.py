"""Sentence splitting and evidence alignment (regex and difflib only; nothing downloaded).

ReDSM5 gives each evidence sentence as text, not as a character span, and in the
paraphrased public sample no annotation sentence occurs verbatim in its post. We
therefore locate evidence in three steps:

1. ``exact``    - the sentence is a substring of the post, either verbatim or after
                  normalising case, whitespace, quotes, dashes and ellipses;
2. ``nearest``  - otherwise the most similar post sentence (or pair of adjacent
                  sentences, since annotators sometimes merge two) if its similarity
                  is at least ``threshold``;
3. ``unaligned``- otherwise; start/end are None. Callers count and warn, never fail.

:func:`split_sentences` is the one sentence splitter of the project: the candidates of step 2, the
sentences a prepared post carries (data/prepare.py) and the embedded generator's sentence ids all
come from it. :func:`covered_sentences` maps a located span back to those sentences (an exact match
may cover part of one sentence or run over two; a nearest match is one sentence or two adjacent ones).

Similarity is in [0, 1]: the mean of difflib's ratio over the normalised
characters and the Dice overlap of the (crudely stemmed) content words. The
character ratio rewards shared phrasing; the word overlap keeps a short unrelated
sentence of similar length from winning over the paraphrased one. On the
paraphrased ReDSM5 sample (tests/fixtures/redsm5_sample) the threshold 0.5 aligns
12 of the 21 status-1 sentences, each to the post sentence(s) a reader would pick,
and leaves 9 unaligned; no wrong sentence scored above 0.5 there.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

__all__ = ["split_sentences", "align", "covered_sentences", "normalise", "similarity"]

_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "approx",
        "fig",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "a.m",
        "p.m",
    }
)
_SPLIT_RE = re.compile(r"(?:(?<=[.!?\u2026])|(?<=[.!?\u2026][\"'\u201d\u2019)\]]))\s+|\s*\n\s*")

_CHAR_MAP = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "`": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ",
}
_WORD_RE = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    [
        "i",
        "me",
        "my",
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "is",
        "was",
        "be",
        "been",
        "am",
        "are",
        "it",
        "its",
        "im",
        "ive",
        "that",
        "this",
        "so",
        "just",
        "with",
        "as",
        "by",
        "from",
    ]
)
_SUFFIXES = ("ing", "ed", "ly", "es", "s")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences of ``text``, whitespace trimmed.

    A sentence ends at ``.``, ``!``, ``?`` or an ellipsis (optionally followed by
    closing quotes or brackets) before whitespace, or at a line break. A period after
    a common abbreviation (Dr., e.g., etc.) or a single capital initial does not end a
    sentence. Spans cover all non-whitespace text in order, so a text without
    terminators is one sentence.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    n = len(text)
    for m in _SPLIT_RE.finditer(text):
        left = text[start : m.start()]
        if "\n" not in m.group(0) and _ends_with_abbreviation(left):
            continue
        _append_span(text, start, m.start(), spans)
        start = m.end()
    _append_span(text, start, n, spans)
    return spans


def _ends_with_abbreviation(chunk: str) -> bool:
    if not chunk.endswith("."):
        return False
    words = chunk[:-1].rsplit(None, 1)
    if not words:
        return False
    last = words[-1].lower().lstrip("(\"'")
    if last in _ABBREVIATIONS:
        return True
    return len(last) == 1 and last.isalpha() and words[-1][-1].isupper()  # "J. Smith"


def _append_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def _normalise_with_map(text: str) -> tuple[str, list[int]]:
    """Normalised text and, for each of its characters, the index of the source character."""
    out: list[str] = []
    index: list[int] = []
    prev_space = True  # drops leading whitespace
    for i, ch in enumerate(text):
        rep = _CHAR_MAP.get(ch, ch)
        if rep.isspace():
            if not prev_space:
                out.append(" ")
                index.append(i)
            prev_space = True
            continue
        prev_space = False
        for c in rep.lower():
            out.append(c)
            index.append(i)
    while out and out[-1] == " ":
        out.pop()
        index.pop()
    return "".join(out), index


def normalise(text: str) -> str:
    """Lower case; typographic quotes, dashes and ellipses to ASCII; whitespace collapsed."""
    return _normalise_with_map(text)[0]


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _content_words(norm: str) -> frozenset[str]:
    words = (_stem(w) for w in _WORD_RE.findall(norm.replace("'", "")))
    return frozenset(w for w in words if w not in _STOPWORDS)


def similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two texts: mean of character ratio and content-word Dice."""
    return _similarity_norm(normalise(a), normalise(b))


def _similarity_norm(na: str, nb: str) -> float:
    if not na or not nb:
        return 0.0
    chars = SequenceMatcher(None, na, nb, autojunk=False).ratio()
    wa, wb = _content_words(na), _content_words(nb)
    dice = 2 * len(wa & wb) / (len(wa) + len(wb)) if wa and wb else 0.0
    return (chars + dice) / 2


def align(post_text: str, sentence: str, threshold: float, spans: list[tuple[int, int]] | None = None) -> dict:
    """Locate ``sentence`` in ``post_text``.

    ``spans``: the sentences of ``post_text`` (``split_sentences(post_text)``, computed when not
    given; a caller aligning many rows to one post passes them once).

    Returns ``{"start", "end", "match", "similarity"}``: character offsets into
    ``post_text`` (``post_text[start:end]`` is the evidence) or None when unaligned;
    ``match`` is ``"exact"``, ``"nearest"`` or ``"unaligned"``; ``similarity`` is 1.0
    for exact matches and the best similarity found otherwise (rounded to 4 places).
    """
    sent = (sentence or "").strip()
    if not sent or not post_text:
        return {"start": None, "end": None, "match": "unaligned", "similarity": 0.0}
    pos = post_text.find(sent)
    if pos >= 0:
        return {"start": pos, "end": pos + len(sent), "match": "exact", "similarity": 1.0}
    norm_post, index = _normalise_with_map(post_text)
    norm_sent = normalise(sent)
    if norm_sent:
        npos = norm_post.find(norm_sent)
        if npos >= 0:
            start = index[npos]
            end = index[npos + len(norm_sent) - 1] + 1
            return {"start": start, "end": end, "match": "exact", "similarity": 1.0}
    if spans is None:
        spans = split_sentences(post_text)
    candidates = list(spans) + [(spans[i][0], spans[i + 1][1]) for i in range(len(spans) - 1)]
    best, best_span = 0.0, None
    for span in candidates:  # sentences first, in order: ties keep the earliest single sentence
        score = _similarity_norm(norm_sent, normalise(post_text[span[0] : span[1]]))
        if score > best + 1e-12:
            best, best_span = score, span
    best = round(best, 4)
    if best_span is not None and best >= threshold:
        return {"start": best_span[0], "end": best_span[1], "match": "nearest", "similarity": best}
    return {"start": None, "end": None, "match": "unaligned", "similarity": best}


def covered_sentences(spans: list[tuple[int, int]], start: int | None, end: int | None) -> list[int]:
    """Indices of the sentences (``spans``, in order, as :func:`split_sentences` gives them) that share
    at least one character with ``[start, end)``; ``[]`` for an unaligned span (None)."""
    if start is None or end is None:
        return []
    return [i for i, (s, e) in enumerate(spans) if s < end and start < e]

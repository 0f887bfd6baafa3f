"""The embedded data set: synthetic long-form Reddit-style posts in exactly ReDSM5's CSV format.

The real ReDSM5 cannot be downloaded from these machines, so the default pipeline
trains on posts generated here. Generator version 2 is shaped like the real set
(Bao, Perez, Parapar, CIKM 2025: 1,484 posts, 294.7 words on average, 2 to 6,990):

* **Symptom rates by quota.** Each symptom is present in exactly
  ``round(n_posts * real_count / 1484)`` posts (real counts: DEPRESSED_MOOD 328,
  WORTHLESSNESS 311, SUICIDAL_THOUGHTS 165, FATIGUE 124, ANHEDONIA 124,
  SLEEP_ISSUES 102, COGNITIVE_ISSUES 59, APPETITE_CHANGE 44, PSYCHOMOTOR 35), and
  ``round(n_posts * 392 / 1484)`` posts have none, for any ``n_posts`` (sets too
  small to give every symptomatic post a symptom have more symptom-free posts).
  Most symptomatic posts show one symptom; the extra occurrences go preferably to
  posts whose first symptom is related (mood + worthlessness, sleep + fatigue, ...).
* **Lengths by quantile.** Target word counts are stratified draws (one per
  ``1/n_posts`` quantile band, shuffled) from a lognormal with median
  ``LENGTH_MEDIAN`` and sigma ``LENGTH_SIGMA``, clipped to ``[MIN_WORDS, MAX_WORDS]``:
  about 295 words on average and 185 at the median for any size, a few posts of
  2-15 words, and a long tail (the longest of 1,484 posts has several thousand
  words). Lengths are drawn independently of the labels.
* **Evidence anywhere.** Each present symptom gets ``1 + Poisson(min(5, words / 300))``
  passages of 1-3 status-1 sentences (no wording twice in a post); a sentence may carry two
  symptoms (two rows, one sentence_id). Each passage, hard negative and
  SPECIAL_CASE sentence sits at a uniformly random position among the narrative
  sentences, so truncation to the first 128 or 512 tokens cuts some evidence off.
  Every labelled sentence occurs verbatim in its post and its ``sentence_id`` is
  ``<post_id>_<i>``, ``i`` its index in ``align.split_sentences(text)``.
* **Narratives, not templates.** Posts are first-person rambles in paragraphs
  (blank-line separated) about one topic, or more in long posts (work, school,
  family, relationships, friends, money, games, health, housing, pets, hobbies,
  commuting, food, sport, bad news, everyday feelings), with Reddit asides.
  Evidence comes from per-symptom paraphrase pools with synonym slots, many of them
  implicit ("my legs feel like lead by lunchtime"); word variants (``synonyms``)
  multiply the wordings, so most phrasings are rare. Openers and tails ("Honestly,",
  "tbh") are used at the same rates in evidence and narrative, and narrative clauses
  use symptom words in other senses (``vocab_noise``: "the fridge is empty"), so no
  single word or phrase marks a symptom.
* **Hard negatives** share the symptoms' vocabulary: negations, other people's
  symptoms, recovered past episodes, general remarks ("I read that insomnia ..."),
  and other word senses ("my phone battery is drained"); their number grows with
  the post's length. About half carry a status-0 row (considered and rejected), as
  in the real set. A few SPECIAL_CASE rows mark diagnosis/medication mentions.

Labels follow construction exactly (no random label noise). Output is
byte-identical for the same ``(n_posts, seed)``: one ``random.Random(seed)``, lists
only (no set or hash order). Bump ``GENERATOR_VERSION`` whenever output changes.

The module is code only: every sentence, clause, slot filler and explanation lives in
the JSON files of ``workflow_lib/data/phrases/`` (the fields of ``Phrases`` name each
table, its file and its shape). The generator draws from the lists by index, so
editing, adding or reordering an entry changes the output: bump ``GENERATOR_VERSION``.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
from dataclasses import dataclass, field, fields
from functools import cache
from importlib import resources
from pathlib import Path
from statistics import NormalDist

from workflow_lib.data.align import split_sentences
from workflow_lib.symptoms import SYMPTOMS

GENERATOR_VERSION = "2"

POSTS_HEADER = ("post_id", "text")
ANNOTATIONS_HEADER = ("post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status", "explanation")

# Posts per symptom in the real ReDSM5 (of REAL_POSTS); REAL_NONE posts have no symptom.
REAL_POSTS = 1484
REAL_COUNTS: dict[str, int] = {
    "DEPRESSED_MOOD": 328,
    "ANHEDONIA": 124,
    "APPETITE_CHANGE": 44,
    "SLEEP_ISSUES": 102,
    "PSYCHOMOTOR": 35,
    "FATIGUE": 124,
    "WORTHLESSNESS": 311,
    "COGNITIVE_ISSUES": 59,
    "SUICIDAL_THOUGHTS": 165,
}
REAL_NONE = 392
TARGET_RATES: dict[str, float] = {s: REAL_COUNTS[s] / REAL_POSTS for s in SYMPTOMS}
NO_SYMPTOM_RATE = REAL_NONE / REAL_POSTS

# Target words per post: lognormal(log(LENGTH_MEDIAN), LENGTH_SIGMA) clipped to [MIN_WORDS, MAX_WORDS].
LENGTH_MEDIAN = 178.0
LENGTH_SIGMA = 0.98
MIN_WORDS = 2
MAX_WORDS = 7000
SHORT_POST_WORDS = 16  # below this a post is one or two short sentences

HARD_NEGATIVES_BASE = 0.3  # expected hard-negative sentences per post ...
HARD_NEGATIVES_PER_WORD = 1 / 625  # ... plus this many per target word
STATUS0_RATE = 0.5  # hard negatives that also get a status-0 row
COMBO_RATE = 0.35  # pairs of present symptoms expressed by one sentence
WORDS_PER_EXTRA_PASSAGE = 300.0  # a present symptom gets 1 + Poisson(min(EXTRA_MAX, words / this)) passages
PASSAGES_EXTRA_MAX = 5.0
PASSAGE_GROWTH = (0.5, 0.25)  # a passage has 1 sentence, +1 with p 0.5, +1 more with p 0.25
SPECIAL_CASE_RATE = 0.03
CONTEXT_RATE = 0.05  # evidence fused with a clause of the post's topic
WORDS_PER_TOPIC = 1000.0  # a post has 1 + words // this topics (+1 with p 0.3), at most 5
COMPOUND_RATE = 0.55  # narrative sentences made of two clauses
VOCAB_NOISE_RATE = 0.12  # narrative clauses drawn from VOCAB_NOISE
SYNONYM_RATE = 0.5  # words of evidence and hard negatives replaced by a SYNONYMS variant
OPENER_RATE = 0.3  # sentences (evidence or narrative) that start with one of OPENERS
TAIL_RATE = 0.25  # sentences that end with one of TAILS

# Extra symptom occurrences (beyond one per symptomatic post) prefer posts whose first symptom is related.
AFFINITY: dict[tuple[str, str], float] = {
    ("DEPRESSED_MOOD", "WORTHLESSNESS"): 5.0,
    ("DEPRESSED_MOOD", "ANHEDONIA"): 4.0,
    ("DEPRESSED_MOOD", "SUICIDAL_THOUGHTS"): 4.0,
    ("WORTHLESSNESS", "SUICIDAL_THOUGHTS"): 4.0,
    ("SLEEP_ISSUES", "FATIGUE"): 5.0,
    ("FATIGUE", "COGNITIVE_ISSUES"): 3.0,
    ("DEPRESSED_MOOD", "SLEEP_ISSUES"): 2.0,
    ("ANHEDONIA", "FATIGUE"): 2.0,
    ("APPETITE_CHANGE", "DEPRESSED_MOOD"): 2.0,
    ("PSYCHOMOTOR", "SLEEP_ISSUES"): 2.0,
    ("DEPRESSED_MOOD", "FATIGUE"): 2.0,
    ("ANHEDONIA", "WORTHLESSNESS"): 2.0,
}

# Narrative topics and how often each one leads a post; narrative.json holds one clause pool per topic.
TOPIC_WEIGHTS: dict[str, float] = {
    "work": 3,
    "school": 2.5,
    "family": 2.5,
    "relationship": 2.5,
    "friends": 2,
    "money": 1.5,
    "games": 1.5,
    "health": 1,
    "housing": 1.5,
    "pets": 1,
    "hobbies": 1.5,
    "commute": 1,
    "food": 1,
    "sport": 1,
    "bad_news": 1.5,
    "weather": 0.5,
    "feelings": 2.5,
}
HARD_KINDS = ("negation", "other_person", "past", "general", "other_sense")
HARD_KIND_WEIGHTS = (0.15, 0.15, 0.1, 0.1, 0.5)
REQUIRED_SLOTS = ("name", "opener_time", "past", "who")  # slots the code reads by name

# ---------------------------------------------------------------------------------------------
# phrase tables (package data)

PHRASES_DIR = "phrases"  # workflow_lib/data/phrases/*.json
_SLOT_RE = re.compile(r"\{(\w+)\}")


class PhrasesError(ValueError):
    """A phrase file of workflow_lib/data/phrases/ is missing or malformed."""


def _table(file: str, shape: str, filled: bool = False):
    """A Phrases field: the JSON key of the same name in ``file``; ``filled``: its {slot}s are filled."""
    return field(metadata={"file": file, "shape": shape, "filled": filled})


@dataclass(frozen=True)
class Phrases:
    """Every phrase table of the generator. Shapes: ``strings`` a non-empty list of strings, ``pools`` a non-empty
    object of name -> strings, ``per_symptom`` an object of every symptom -> strings, ``per_kind`` an object of every
    hard-negative kind -> string, ``text`` one string, ``combos`` a list of {"symptoms": [two symptoms],
    "templates": strings}. Templates are first person, without final punctuation, unless said otherwise."""

    # slot fillers: a template names a slot as {name}; each occurrence draws independently, and a value may
    # hold slots itself
    slots: dict[str, list[str]] = _table("slots.json", "pools", filled=True)
    # narrative clauses by topic (the topics of TOPIC_WEIGHTS); _Post.narrative makes them sentences
    topics: dict[str, list[str]] = _table("narrative.json", "pools", filled=True)
    # narrative clauses using symptom words in other senses ("the fridge is empty"), spread over all posts
    vocab_noise: list[str] = _table("narrative.json", "strings", filled=True)
    connectors: list[str] = _table("narrative.json", "strings")  # join the two clauses of a compound sentence
    asides: list[str] = _table("narrative.json", "strings")  # Reddit asides, whole sentences
    short_neutral: list[str] = _table("narrative.json", "strings")  # symptom-free posts of a few words
    # openers and tails, used at the same rates (OPENER_RATE, TAIL_RATE) for evidence and narrative sentences,
    # so that none of them marks evidence
    openers: list[str] = _table("narrative.json", "strings")
    tails: list[str] = _table("narrative.json", "strings")
    # status-1 evidence cores, fused with openers, tails and topic clauses by _Post.evidence
    evidence: dict[str, list[str]] = _table("evidence.json", "per_symptom", filled=True)
    short_evidence: dict[str, list[str]] = _table("evidence.json", "per_symptom")  # whole sentences, short posts
    context_frames: list[str] = _table("evidence.json", "strings")  # {ctx}: a topic clause, {ev}: evidence core
    # one sentence, two symptoms (both rows share the sentence_id), used when both are present
    combos: list[tuple[tuple[str, str], list[str]]] = _table("evidence.json", "combos", filled=True)
    # hard negatives by kind (HARD_KINDS); never a label, about half get a status-0 row
    negations: dict[str, list[str]] = _table("hard_negatives.json", "per_symptom", filled=True)
    other_person: dict[str, list[str]] = _table("hard_negatives.json", "per_symptom", filled=True)  # "{who} ..."
    other_person_tails: list[str] = _table("hard_negatives.json", "strings")
    past: dict[str, list[str]] = _table("hard_negatives.json", "per_symptom", filled=True)  # "{past}, I ..., but"
    recovery: list[str] = _table("hard_negatives.json", "strings")  # "... but <recovery>"
    general: dict[str, list[str]] = _table("hard_negatives.json", "per_symptom", filled=True)  # not the writer
    other_sense: dict[str, list[str]] = _table("hard_negatives.json", "per_symptom", filled=True)
    special_case: list[str] = _table("hard_negatives.json", "strings", filled=True)  # diagnosis, medication
    explanations_positive: dict[str, list[str]] = _table("explanations.json", "per_symptom")
    explanations_negative: dict[str, str] = _table("explanations.json", "per_kind")
    explanation_special: str = _table("explanations.json", "text")
    # word and phrase variants applied to evidence and hard negatives (each occurrence with SYNONYM_RATE), so the
    # same meaning comes in many wordings: a bag of words has to see each of them
    synonyms: dict[str, list[str]] = _table("synonyms.json", "pools")


def _strings(value, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a non-empty list of strings")
    return value


def _pools(value, where: str, keys: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{where} must be a non-empty object of name -> list of strings")
    if keys is not None and sorted(value) != sorted(keys):
        missing, extra = [k for k in keys if k not in value], [k for k in value if k not in keys]
        raise ValueError(f"{where} must have exactly the keys {', '.join(keys)} (missing {missing}, unknown {extra})")
    return {k: _strings(v, f"{where}[{k!r}]") for k, v in value.items()}


def _per_kind(value, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or sorted(value) != sorted(HARD_KINDS):
        raise ValueError(f"{where} must be an object of exactly the hard-negative kinds {', '.join(HARD_KINDS)}")
    return {k: _text(v, f"{where}[{k!r}]") for k, v in value.items()}


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a non-empty string")
    return value


def _combos(value, where: str) -> list[tuple[tuple[str, str], list[str]]]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where} must be a non-empty list of {{'symptoms': [...], 'templates': [...]}}")
    out = []
    for i, combo in enumerate(value):
        pair = combo.get("symptoms") if isinstance(combo, dict) else None
        if not isinstance(pair, list) or len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= set(SYMPTOMS):
            raise ValueError(f"{where}[{i}]['symptoms'] must name two different symptoms of {', '.join(SYMPTOMS)}")
        out.append(((pair[0], pair[1]), _strings(combo.get("templates"), f"{where}[{i}]['templates']")))
    return out


_SHAPES = {
    "strings": _strings,
    "pools": _pools,
    "per_symptom": lambda value, where: _pools(value, where, SYMPTOMS),
    "per_kind": _per_kind,
    "text": _text,
    "combos": _combos,
}


def _read_json(path) -> dict:
    """The top-level object of one phrase file (``path``: a Path or an importlib.resources Traversable)."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PhrasesError(
            f"phrase file {path} is missing: it ships with workflow_lib (data/phrases/*.json); restore it from the "
            "repository or reinstall the package (pip install -e .)"
        ) from None
    except json.JSONDecodeError as exc:
        raise PhrasesError(
            f"phrase file {path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}; fix it"
        ) from None
    if not isinstance(content, dict):
        raise PhrasesError(f"phrase file {path} must hold a JSON object of table name -> table")
    return content


def _file_tables(path, specs: list) -> dict:
    """The checked tables of one phrase file; ``specs``: the Phrases fields it holds."""
    content = _read_json(path)
    names = [f.name for f in specs]
    if sorted(content) != sorted(names):
        missing, extra = [n for n in names if n not in content], [n for n in content if n not in names]
        raise PhrasesError(
            f"phrase file {path} must hold exactly the tables {', '.join(names)} (missing {missing}, unknown {extra})"
        )
    try:
        return {f.name: _SHAPES[f.metadata["shape"]](content[f.name], f.name) for f in specs}
    except ValueError as exc:
        raise PhrasesError(f"phrase file {path}: {exc}; fix the table (shapes: see Phrases in {__name__})") from None


def _strings_in(table) -> list[str]:
    """Every string of a table, whatever its shape."""
    if isinstance(table, str):
        return [table]
    items = table.values() if isinstance(table, dict) else table
    return [s for item in items for s in _strings_in(item)]


def _check_links(ph: Phrases, folder) -> None:
    """Cross-file checks: slots named by templates exist, topics match TOPIC_WEIGHTS, frames hold {ctx} and {ev}."""
    missing = [s for s in REQUIRED_SLOTS if s not in ph.slots]
    if missing:
        raise PhrasesError(f"phrase file {folder / 'slots.json'}: the code needs the slots {missing}; add them")
    for f in fields(Phrases):
        if not f.metadata["filled"]:
            continue
        for template in _strings_in(getattr(ph, f.name)):
            unknown = [s for s in _SLOT_RE.findall(template) if s not in ph.slots]
            if unknown:
                raise PhrasesError(
                    f"phrase file {folder / f.metadata['file']}: {f.name} template {template!r} names the unknown "
                    f"slot(s) {unknown}; add them to slots.json or fix the name"
                )
    if sorted(ph.topics) != sorted(TOPIC_WEIGHTS):
        raise PhrasesError(
            f"phrase file {folder / 'narrative.json'}: topics must be exactly the topics of TOPIC_WEIGHTS in "
            f"{__name__} ({', '.join(TOPIC_WEIGHTS)}), got {', '.join(ph.topics)}"
        )
    for frame in ph.context_frames:
        if "{ctx}" not in frame or "{ev}" not in frame:
            raise PhrasesError(
                f"phrase file {folder / 'evidence.json'}: context frame {frame!r} needs {{ctx}} and {{ev}}"
            )


def load_phrases(folder) -> Phrases:
    """Read and check every phrase file of ``folder`` (a Path or Traversable); raise PhrasesError naming the file."""
    by_file: dict[str, list] = {}
    for f in fields(Phrases):
        by_file.setdefault(f.metadata["file"], []).append(f)
    tables = {}
    for file, specs in by_file.items():
        tables.update(_file_tables(folder / file, specs))
    loaded = Phrases(**tables)
    _check_links(loaded, folder)
    return loaded


@cache
def phrases() -> Phrases:
    """The phrase tables shipped in workflow_lib/data/phrases/, loaded once."""
    return load_phrases(resources.files(__package__) / PHRASES_DIR)


@cache
def _synonym_re() -> re.Pattern:
    """Any synonyms key as a whole word or phrase, longest keys first."""
    keys = sorted(phrases().synonyms, key=len, reverse=True)
    return re.compile(r"(?<![\w'])(" + "|".join(re.escape(k) for k in keys) + r")(?![\w'])")


# ---------------------------------------------------------------------------------------------
# text helpers


def _fill(template: str, rng: random.Random) -> str:
    """Fill every {slot} (slot values may hold slots themselves, filled in turn)."""
    slots = phrases().slots

    def one(m: re.Match) -> str:
        value = rng.choice(slots[m.group(1)])
        return _SLOT_RE.sub(one, value) if "{" in value else value

    return _SLOT_RE.sub(one, template)


def _vary(text: str, rng: random.Random) -> str:
    """Replace each synonyms key in ``text`` with a random variant (with probability SYNONYM_RATE)."""
    synonyms = phrases().synonyms

    def one(m: re.Match) -> str:
        return rng.choice(synonyms[m.group(1)]) if rng.random() < SYNONYM_RATE else m.group(1)

    return _synonym_re().sub(one, text)


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _lower_first(text: str) -> str:
    """Lower-case the first letter unless the first word is 'I' (I, I'm, I've ...) or a capitalised name."""
    first = text.split(" ", 1)[0]
    if first == "I" or first.startswith("I'") or first in phrases().slots["name"] or first in ("TikTok", "IKEA"):
        return text
    return text[0].lower() + text[1:]


def _dress(clause: str, rng: random.Random) -> str:
    """The clause with an opener (OPENER_RATE) and a tail (TAIL_RATE)."""
    if rng.random() < OPENER_RATE:
        clause = rng.choice(phrases().openers) + _lower_first(clause)
    if rng.random() < TAIL_RATE:
        clause += rng.choice(phrases().tails)
    return clause


def _sentence(clause: str, end: str = ".") -> str:
    return _cap(clause) + end


def _pick(rng: random.Random, pool: list[str]) -> str:
    """A filled template drawn from ``pool``."""
    return _fill(rng.choice(pool), rng)


# ---------------------------------------------------------------------------------------------
# quotas


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def _assign_symptoms(n_posts: int, rng: random.Random) -> list[list[str]]:
    """Symptom lists for ``n_posts`` posts with quota counts (see the module docstring)."""
    counts = {s: min(n_posts, _round(n_posts * REAL_COUNTS[s] / REAL_POSTS)) for s in SYMPTOMS}
    n_none = _round(n_posts * REAL_NONE / REAL_POSTS)
    tokens = [s for s in SYMPTOMS for _ in range(counts[s])]
    n_sym = min(n_posts - n_none, len(tokens))
    rng.shuffle(tokens)
    posts: list[list[str]] = [[s] for s in tokens[:n_sym]]
    # The first n_sym tokens may repeat a symptom; the rest are extras for posts that lack it.
    by_first: dict[str, list[int]] = {s: [] for s in SYMPTOMS}
    for i, p in enumerate(posts):
        by_first[p[0]].append(i)
    for sym in tokens[n_sym:]:
        _place_extra(sym, posts, by_first, rng)
    posts += [[] for _ in range(n_posts - len(posts))]
    rng.shuffle(posts)
    return [[s for s in SYMPTOMS if s in p] for p in posts]


def _place_extra(sym: str, posts: list[list[str]], by_first: dict[str, list[int]], rng: random.Random) -> None:
    """Add ``sym`` to a post without it, preferably one whose first symptom is related (AFFINITY)."""
    groups = [s for s in SYMPTOMS if s != sym and by_first[s]]
    weights = [AFFINITY.get((s, sym), AFFINITY.get((sym, s), 1.0)) * len(by_first[s]) for s in groups]
    for _ in range(30 if groups else 0):
        group = by_first[rng.choices(groups, weights=weights, k=1)[0]]
        post = posts[group[rng.randrange(len(group))]]
        if sym not in post and len(post) < 4:
            post.append(sym)
            return
    for post in posts:  # fall back to the first post that lacks it (tiny or saturated sets)
        if sym not in post:
            post.append(sym)
            return


def _target_lengths(n_posts: int, rng: random.Random) -> list[int]:
    """Stratified lognormal word targets: one draw per 1/n quantile band, in shuffled order."""
    dist = NormalDist(math.log(LENGTH_MEDIAN), LENGTH_SIGMA)
    bands = list(range(n_posts))
    rng.shuffle(bands)
    out = []
    for b in bands:
        u = min(max((b + rng.random()) / n_posts, 1e-12), 1 - 1e-12)
        out.append(min(MAX_WORDS, max(MIN_WORDS, _round(math.exp(dist.inv_cdf(u))))))
    return out


# ---------------------------------------------------------------------------------------------
# sentences


def _weighted(rng: random.Random, items, weights):
    return rng.choices(items, weights=weights, k=1)[0]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:  # normal approximation keeps very long posts fast
        return max(0, _round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _hard_negative_text(kind: str, sym: str, rng: random.Random) -> str:
    """One hard-negative sentence of ``kind`` about ``sym`` (before synonym variation)."""
    ph = phrases()
    if kind == "negation":
        return _sentence(_pick(rng, ph.negations[sym]))
    if kind == "other_person":
        who = _pick(rng, ph.slots["who"])
        return _sentence(who + " " + _pick(rng, ph.other_person[sym]) + rng.choice(ph.other_person_tails))
    if kind == "past":
        when = _pick(rng, ph.slots["past"])
        return _sentence(when + ", I " + _pick(rng, ph.past[sym]) + ", " + rng.choice(ph.recovery))
    pool = ph.general if kind == "general" else ph.other_sense
    return _sentence(_pick(rng, pool[sym]))


class _Post:
    """State of one post while it is written: its topics and the sentences it already holds."""

    def __init__(self, rng: random.Random, n_topics: int):
        self.rng = rng
        self.ph = phrases()
        names = list(self.ph.topics)
        weights = [TOPIC_WEIGHTS[t] for t in names]
        self.topics: list[str] = []
        while len(self.topics) < n_topics:
            t = _weighted(rng, names, weights)
            if t not in self.topics:
                self.topics.append(t)
        self.used: set[str] = set()  # membership only, never iterated (output must not depend on hash order)
        self.labelled: list[str] = []

    def unique(self, make, labelled: bool = False) -> str:
        """A new sentence from ``make()``. No sentence repeats in a post, and a labelled sentence is no part of
        another sentence (nor the reverse, among labelled ones), so it occurs exactly once in the text."""
        for _ in range(60):
            text = make()
            if text in self.used or any(lab in text for lab in self.labelled):
                continue
            if labelled:
                if any(text in lab for lab in self.labelled):
                    continue
                self.labelled.append(text)
            self.used.add(text)
            return text
        raise RuntimeError("generator ran out of distinct sentences")  # pragma: no cover

    def topic(self) -> str:
        # the first topic dominates; the others come and go
        if len(self.topics) == 1 or self.rng.random() < 0.5:
            return self.topics[0]
        return self.rng.choice(self.topics[1:])

    def clause(self, topic: str | None = None) -> str:
        if self.rng.random() < VOCAB_NOISE_RATE:
            return _pick(self.rng, self.ph.vocab_noise)
        return _pick(self.rng, self.ph.topics[topic or self.topic()])

    def narrative(self, topic: str) -> str:
        rng = self.rng

        def make() -> str:
            r = rng.random()
            if r < COMPOUND_RATE:
                clause = self.clause(topic) + rng.choice(self.ph.connectors) + _lower_first(self.clause())
            elif r < COMPOUND_RATE + 0.15:
                clause = _pick(rng, self.ph.slots["opener_time"]) + " " + _lower_first(self.clause(topic))
            else:
                clause = self.clause(topic)
            return _sentence(_dress(clause, rng))

        return self.unique(make)

    def evidence(self, core_template: str) -> str:
        rng = self.rng

        def make() -> str:
            core = _vary(_fill(core_template, rng), rng)
            if rng.random() < CONTEXT_RATE:
                frame = rng.choice(self.ph.context_frames)
                text = frame.format(ctx=_lower_first(self.clause()), ev=_lower_first(core))
            else:
                text = _dress(core, rng)
            return _sentence(text, "..." if rng.random() < 0.05 else ".")

        return self.unique(make, labelled=True)

    def hard_negative(self, present: list[str]) -> tuple[str, str, str]:
        """(kind, symptom, sentence); negations and recovered-past claims only about absent symptoms."""
        rng = self.rng
        picked: list[tuple[str, str]] = []

        def make() -> str:
            kind = _weighted(rng, HARD_KINDS, HARD_KIND_WEIGHTS)
            sym = rng.choice([s for s in SYMPTOMS if kind not in ("negation", "past") or s not in present])
            picked.append((kind, sym))
            return _hard_negative_text(kind, sym, rng)

        sent = self.unique(lambda: _vary(make(), rng), labelled=True)
        return picked[-1][0], picked[-1][1], sent

    def positive(self, sym: str) -> tuple[str, int, str]:
        """A status-1 label of ``sym`` with its explanation."""
        return sym, 1, self.rng.choice(self.ph.explanations_positive[sym])


# ---------------------------------------------------------------------------------------------
# posts
#
# A block is a run of labelled sentences kept together: [(sentence, [(symptom, status, explanation), ...]), ...].


def _short_blocks(post: _Post, present: list[str]) -> list[list[tuple[str, list]]]:
    """Posts of a few words: one whole evidence sentence per present symptom."""
    rng, blocks = post.rng, []
    for sym in present:
        sent = post.unique(lambda sym=sym: rng.choice(post.ph.short_evidence[sym]), labelled=True)
        blocks.append([(sent, [post.positive(sym)])])
    return blocks


def _evidence_blocks(post: _Post, present: list[str], target: int) -> list[list[tuple[str, list]]]:
    """Two-symptom sentences (COMBO_RATE), then passages of 1-3 sentences per remaining symptom."""
    rng, blocks = post.rng, []
    remaining = list(present)
    for pair, templates in post.ph.combos:
        if pair[0] in remaining and pair[1] in remaining and rng.random() < COMBO_RATE:
            sent = post.evidence(rng.choice(templates))
            blocks.append([(sent, [post.positive(s) for s in pair])])
            remaining = [s for s in remaining if s not in pair]
    for sym in remaining:
        cores = list(post.ph.evidence[sym])
        # passages about the symptom: more of them in longer posts, each 1-3 sentences
        for _ in range(1 + _poisson(rng, min(PASSAGES_EXTRA_MAX, target / WORDS_PER_EXTRA_PASSAGE))):
            size = 1 + sum(rng.random() < r for r in PASSAGE_GROWTH)
            block = []
            for _ in range(min(size, len(cores))):
                core = cores.pop(rng.randrange(len(cores)))
                block.append((post.evidence(core), [post.positive(sym)]))
            if block:
                blocks.append(block)
    return blocks


def _hard_blocks(post: _Post, present: list[str], target: int, stats: dict) -> list[list[tuple[str, list]]]:
    """Hard negatives (about half with a status-0 row), then maybe a SPECIAL_CASE sentence."""
    rng, blocks = post.rng, []
    for _ in range(_poisson(rng, HARD_NEGATIVES_BASE + target * HARD_NEGATIVES_PER_WORD)):
        kind, sym, sent = post.hard_negative(present)
        stats["hard_negatives"][kind] += 1
        rows = [(sym, 0, post.ph.explanations_negative[kind])] if rng.random() < STATUS0_RATE else []
        blocks.append([(sent, rows)])
    if rng.random() < SPECIAL_CASE_RATE:
        sent = post.unique(lambda: _sentence(_pick(rng, post.ph.special_case)), labelled=True)
        blocks.append([(sent, [("SPECIAL_CASE", 1, post.ph.explanation_special)])])
    return blocks


def _narrative(post: _Post, words: int, target: int, short: bool, has_blocks: bool) -> list[str]:
    """Unlabelled sentences about the post's topics, added until the post reaches ``target`` words."""
    rng, out = post.rng, []
    if short:
        if not has_blocks:
            out.append(post.unique(lambda: rng.choice(post.ph.short_neutral)))
        return out
    if rng.random() < 0.3:
        out.append(post.unique(lambda: rng.choice(post.ph.asides)))
        words += len(out[-1].split())
    topic = post.topic()
    while words < target:
        if rng.random() < 0.25:
            topic = post.topic()
        sent = post.unique(lambda: rng.choice(post.ph.asides)) if rng.random() < 0.04 else post.narrative(topic)
        out.append(sent)
        words += len(sent.split())
    return out


def _paragraphs(sentences: list[str], rng: random.Random) -> list[list[int]]:
    """Indices of ``sentences`` grouped into paragraphs of 2-8 sentences (one paragraph if short)."""
    if len(sentences) <= 5:
        return [list(range(len(sentences)))]
    out, i = [], 0
    while i < len(sentences):
        k = rng.randint(2, 8)
        out.append(list(range(i, min(i + k, len(sentences)))))
        i += k
    return out


def _layout(order: list[tuple[str, list]], rng: random.Random) -> tuple[str, list[int]]:
    """The post text (sentences joined by spaces, paragraphs by blank lines) and each sentence's start offset."""
    parts, starts, pos = [], [], 0
    for para in _paragraphs([s for s, _ in order], rng):
        if parts:
            parts.append("\n\n")
            pos += 2
        for j, i in enumerate(para):
            if j:
                parts.append(" ")
                pos += 1
            starts.append(pos)
            parts.append(order[i][0])
            pos += len(order[i][0])
    return "".join(parts), starts


def _annotations(post_id: str, text: str, spans: list, order: list[tuple[str, list]], starts: list[int]) -> list:
    """Annotation rows (ANNOTATIONS_HEADER order); each labelled sentence must be exactly one sentence of ``text``."""
    index_of = {s: i for i, (s, _) in enumerate(spans)}
    rows = []
    for (sent, labels), start in zip(order, starts):
        if not labels:
            continue
        i = index_of.get(start)
        if i is None or spans[i] != (start, start + len(sent)) or text.count(sent) != 1:  # pragma: no cover
            raise RuntimeError(f"generator bug: sentence {sent!r} is not one sentence of post {post_id}")
        for sym, status, expl in labels:
            rows.append((post_id, f"{post_id}_{i}", sent, sym, status, expl))
    return rows


def _post(index: int, present: list[str], target: int, rng: random.Random, stats: dict) -> tuple[str, str, list]:
    """One post: (post_id, text, annotation rows as tuples in ANNOTATIONS_HEADER order)."""
    post_id = f"g_{index:04d}_{rng.randint(1, 999)}"
    post = _Post(rng, n_topics=min(5, 1 + int(target // WORDS_PER_TOPIC) + (rng.random() < 0.3)))
    short = target < SHORT_POST_WORDS
    if short:
        blocks = _short_blocks(post, present)
    else:
        blocks = _evidence_blocks(post, present, target) + _hard_blocks(post, present, target, stats)
    words = sum(len(s.split()) for block in blocks for s, _ in block)
    narrative = _narrative(post, words, target, short, has_blocks=bool(blocks))
    # each block goes to a uniformly random position among the narrative sentences
    units: list[list[tuple[str, list]]] = [[(s, [])] for s in narrative]
    for block in blocks:
        units.insert(rng.randint(0, len(units)), block)
    order = [item for unit in units for item in unit]
    text, starts = _layout(order, rng)
    spans = split_sentences(text)
    stats["sentences"] += len(spans)
    return post_id, text, _annotations(post_id, text, spans, order, starts)


# ---------------------------------------------------------------------------------------------
# the data set


def _new_stats(n_posts: int, seed: int) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "n_posts": n_posts,
        "seed": seed,
        "no_symptom": 0,
        "per_symptom": dict.fromkeys(SYMPTOMS, 0),
        "hard_negatives": dict.fromkeys(HARD_KINDS, 0),
        "annotation_rows": {"status_1": 0, "status_0": 0},
        "special_case_rows": 0,
        "sentences": 0,
    }


def _word_stats(posts: list[tuple[str, str]]) -> dict:
    """Mean, p50, p95, min and max of ``len(text.split())``."""
    words = sorted(len(t.split()) for _, t in posts)
    return {
        "mean": round(sum(words) / len(words), 1),
        "p50": words[len(words) // 2],
        "p95": words[min(len(words) - 1, int(0.95 * len(words)))],
        "min": words[0],
        "max": words[-1],
    }


def generate(out_dir, n_posts: int = 800, seed: int = 13) -> dict:
    """Write posts.csv, annotations.csv and README.md into ``out_dir``; return statistics.

    Same ``(n_posts, seed)`` -> byte-identical files. The statistics hold the realised
    per-symptom post counts, hard-negative kinds, row counts, sentences and the word-length
    distribution (mean, p50, p95, min, max of ``len(text.split())``).
    """
    if n_posts < 1:
        raise ValueError(f"n_posts must be positive, got {n_posts}")
    phrases()  # a missing or malformed phrase file fails here, before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    stats = _new_stats(n_posts, seed)
    present_lists = _assign_symptoms(n_posts, rng)
    targets = _target_lengths(n_posts, rng)
    posts, annotations = [], []
    for i, (present, target) in enumerate(zip(present_lists, targets), start=1):
        post_id, text, rows = _post(i, present, target, rng, stats)
        posts.append((post_id, text))
        annotations.extend(rows)
        for sym in present:
            stats["per_symptom"][sym] += 1
        stats["no_symptom"] += not present
    for row in annotations:
        stats["annotation_rows"]["status_1" if row[4] == 1 else "status_0"] += 1
        stats["special_case_rows"] += row[3] == "SPECIAL_CASE"
    stats["words"] = _word_stats(posts)
    _write_csv(out / "posts.csv", POSTS_HEADER, posts)
    _write_csv(out / "annotations.csv", ANNOTATIONS_HEADER, annotations)
    (out / "README.md").write_text(
        _README.format(n=n_posts, seed=seed, version=GENERATOR_VERSION), encoding="utf-8", newline="\n"
    )
    return stats


def _write_csv(path: Path, header, rows) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)


_README = """# Synthetic ReDSM5-format data (not real posts)

Generated by workflow_lib/data/synthetic.py (generator version {version}) with
n_posts={n}, seed={seed}. Every post is synthetic: first-person narratives built
from sentence templates with slot fillers, written to look like Reddit posts. No
real person wrote them.

posts.csv:        post_id, text
annotations.csv:  post_id, sentence_id, sentence_text, DSM5_symptom, status, explanation

Same format as ReDSM5 (Bao, Perez, Parapar, CIKM 2025), and shaped like it: the
share of posts per symptom follows the real set's counts, post lengths follow a
lognormal (about 300 words on average, a few posts of a handful of words, a long
tail into the thousands), and evidence sentences sit anywhere in a post. Status-1
sentences occur verbatim in their posts. Status-0 rows mark hard negatives that were
considered and rejected (negations, other people, recovered past episodes, general
remarks, other word senses). Use it to run and test the pipeline; results on it say
nothing about real data.
"""

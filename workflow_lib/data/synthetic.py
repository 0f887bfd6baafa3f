"""The embedded data set: synthetic long-form Reddit-style posts in exactly ReDSM5's CSV format.

The real ReDSM5 cannot be downloaded from these machines, so the default pipeline
trains on posts generated here. There are two generator versions (``GENERATOR_VERSIONS``;
the config key ``data.embedded.generator`` picks one, ``GENERATOR_VERSION`` "3" by default: the real set's
evidence density and evidence a bag of words does not find easy, below).
Generator version 2 is shaped like the real set
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

Version 2 is easy for a bag of words: about 3 status-1 sentences per positive
post-symptom pair, status-0 rows about a tenth of the rows, and phrase pools whose wording
a sentence-level TF-IDF model learns (CV macro-F1 about 0.8). **Version 3** keeps the
quotas, the lengths, the layout (evidence anywhere, paragraphs, asides), the narrative and
the file format, and changes the evidence and the hard negatives (tables of
``workflow_lib/data/phrases/v3/``, fields of ``PhrasesV3``):

* **The real evidence density.** Each present symptom gets one evidence sentence, and a
  second one with probability ``V3_SECOND_BASE + words * V3_SECOND_PER_WORD`` (next to the
  first or elsewhere): about 1.1 status-1 sentences per positive pair, as in ReDSM5.
  Posts with two or more symptoms sometimes show two of them in one sentence.
* **Implicit, composed evidence.** A core is explicit (the symptom's stock words,
  ``V3_EXPLICIT_RATE``), standalone (an implicit whole clause, ``V3_STANDALONE_RATE``) or a
  *situation* (neutral on its own: "my guitar has been sitting in its case since spring")
  + a joiner + a *reaction* that carries the symptom ("and I can't bring myself to care").
  Situations also appear in narrative sentences of any post (``V3_ANCHOR_RATE``), so they
  mark nothing; slots, synonyms, openers, tails and a fused narrative clause
  (``V3_CONTEXT_RATE``) make almost every sentence unique, so few test sentences occur
  verbatim in training.
* **Hard negatives that use the evidence's own words.** Negations ("I'm not sad, just
  tired of this weather") and figures of speech ("this traffic is killing me") by symptom;
  other people (a core turned to the third person: "my sister told me they can't bring
  themselves to care"), a resolved past, hypotheticals and quotes wrap a core in a frame.
  ``V3_STATUS0_RATE`` of them get a status-0 row: about a fifth of the annotation rows, as
  in ReDSM5 (427 of 2,058). Negations and resolved pasts are only about absent symptoms.
* **SPECIAL_CASE rows** at the real rate (92 of 1,484 posts).

Labels follow construction exactly (no random label noise). Output is
byte-identical for the same ``(n_posts, seed, version)``: one ``random.Random(seed)``, lists
only (no set or hash order). A version's output never changes: a change to the generator
or its tables is a new version (add it to ``GENERATOR_VERSIONS`` and the config schema's
``data.embedded.generator`` enum, pin its output in the tests).

The module is code only: every sentence, clause, slot filler and explanation lives in
the JSON files of ``workflow_lib/data/phrases/`` (the fields of ``Phrases`` name each
table, its file and its shape; version 3 adds ``phrases/v3/``, the fields of ``PhrasesV3``,
and reads the narrative tables of version 2). The generator draws from the lists by index,
so editing, adding or reordering an entry changes the output of every version that reads
the file: that needs a new version.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cache
from importlib import resources
from pathlib import Path
from statistics import NormalDist

from workflow_lib.data.align import split_sentences
from workflow_lib.symptoms import SYMPTOMS

GENERATOR_VERSION = "3"  # the default version (data.embedded.generator)
GENERATOR_VERSIONS = ("2", "3")  # every version generate() writes; the schema's data.embedded.generator enum

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
REAL_SPECIAL_CASE = 92  # SPECIAL_CASE rows (diagnosis, medication) of the real set
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

# Version 3 (module docstring). Evidence cores: explicit (the symptom's stock words), standalone (implicit, whole),
# else a situation + joiner + reaction (implicit).
V3_EXPLICIT_RATE = 0.2
V3_STANDALONE_RATE = 0.35
V3_SECOND_BASE = 0.06  # a present symptom gets a second evidence sentence with p V3_SECOND_BASE ...
V3_SECOND_PER_WORD = 1 / 6000  # ... + words * this, capped at V3_SECOND_MAX
V3_SECOND_MAX = 0.3
V3_SECOND_ADJACENT = 0.5  # the second sentence follows the first (else it sits elsewhere in the post)
V3_COMBO_RATE = 0.15  # posts with two or more symptoms that express two of them in one sentence
V3_HARD_BASE = 0.2  # expected hard-negative sentences per post ...
V3_HARD_PER_WORD = 1 / 800  # ... plus this many per target word
V3_STATUS0_RATE = 0.5  # hard negatives that also get a status-0 row
V3_SPECIAL_CASE_RATE = REAL_SPECIAL_CASE / REAL_POSTS
V3_CONTEXT_RATE = 0.3  # non-composed evidence cores, negations and figures fused with a narrative clause
V3_ANCHOR_RATE = 0.06  # narrative clauses that are a situation of a random symptom (neutral on their own)
V3_HARD_KINDS = ("negation", "other_person", "past", "hypothetical", "quote", "figure")
V3_HARD_KIND_WEIGHTS = (0.18, 0.22, 0.12, 0.13, 0.15, 0.2)
V3_FRAMED = ("other_person", "past", "hypothetical", "quote")  # kinds that wrap an evidence core in a frame
V3_WHOLE_CORES = ("other_person", "quote")  # framed kinds whose core may be a whole situation + reaction
V3_ABSENT_ONLY = ("negation", "past")  # kinds only about symptoms the post does not have

# ---------------------------------------------------------------------------------------------
# phrase tables (package data)

PHRASES_DIR = "phrases"  # workflow_lib/data/phrases/*.json
PHRASES_V3_DIR = "v3"  # workflow_lib/data/phrases/v3/*.json: the tables generator version 3 adds
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


@dataclass(frozen=True)
class PhrasesV3:
    """The phrase tables generator version 3 adds (workflow_lib/data/phrases/v3/*.json); it also uses the narrative,
    openers, tails, special cases and positive explanations of :class:`Phrases`, and fills templates from the slots
    of both (v3 slot names must not repeat v2's). Shapes as in :class:`Phrases`; ``per_kind_v3``: every kind of
    V3_HARD_KINDS -> string; ``frames``: every kind of V3_FRAMED -> strings. Cores are first-person clauses that
    start lower case (or with I or a name) and end without punctuation."""

    slots: dict[str, list[str]] = _table("slots.json", "pools", filled=True)  # added to the slots of Phrases
    # word and phrase variants (SYNONYM_RATE each), applied to evidence and hard negatives
    synonyms: dict[str, list[str]] = _table("synonyms.json", "pools")
    # implicit evidence = a situation (neutral on its own, also used in narrative) + a joiner + a reaction
    situations: dict[str, list[str]] = _table("evidence.json", "per_symptom", filled=True)
    reactions: dict[str, list[str]] = _table("evidence.json", "per_symptom", filled=True)
    joiners: list[str] = _table("evidence.json", "strings")
    standalone: dict[str, list[str]] = _table("evidence.json", "per_symptom", filled=True)  # implicit, whole
    explicit: dict[str, list[str]] = _table("evidence.json", "per_symptom", filled=True)  # the stock words
    short_evidence: dict[str, list[str]] = _table("evidence.json", "per_symptom", filled=True)  # posts of a few words
    combo_joiners: list[str] = _table("evidence.json", "strings")  # join two symptoms' cores in one sentence
    # hard negatives: negations and figures of speech by symptom; the other kinds wrap an evidence core in a frame
    negations: dict[str, list[str]] = _table("hard_negatives.json", "per_symptom", filled=True)
    figures: dict[str, list[str]] = _table("hard_negatives.json", "per_symptom", filled=True)
    # {core}: the core as is ({Core}: capitalised, for quotes); other_person cores are turned to the third person
    frames: dict[str, list[str]] = _table("hard_negatives.json", "frames", filled=True)
    explanations_negative: dict[str, str] = _table("explanations.json", "per_kind_v3")


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


def _per_kind(value, where: str, kinds: tuple[str, ...] = HARD_KINDS) -> dict[str, str]:
    if not isinstance(value, dict) or sorted(value) != sorted(kinds):
        raise ValueError(f"{where} must be an object of exactly the hard-negative kinds {', '.join(kinds)}")
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
    "per_kind_v3": lambda value, where: _per_kind(value, where, V3_HARD_KINDS),
    "frames": lambda value, where: _pools(value, where, V3_FRAMED),
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
    """The checked tables of one phrase file; ``specs``: the Phrases (or PhrasesV3) fields it holds."""
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


def _check_slots(ph, slots: dict, folder, placeholders: tuple[str, ...] = ()) -> None:
    """Every {slot} a filled table of ``ph`` names is one of ``slots`` (or of ``placeholders``, filled by the code)."""
    for f in fields(ph):
        if not f.metadata["filled"]:
            continue
        for template in _strings_in(getattr(ph, f.name)):
            unknown = [s for s in _SLOT_RE.findall(template) if s not in slots and s not in placeholders]
            if unknown:
                raise PhrasesError(
                    f"phrase file {folder / f.metadata['file']}: {f.name} template {template!r} names the unknown "
                    f"slot(s) {unknown}; add them to slots.json or fix the name"
                )


def _check_links(ph: Phrases, folder) -> None:
    """Cross-file checks: slots named by templates exist, topics match TOPIC_WEIGHTS, frames hold {ctx} and {ev}."""
    missing = [s for s in REQUIRED_SLOTS if s not in ph.slots]
    if missing:
        raise PhrasesError(f"phrase file {folder / 'slots.json'}: the code needs the slots {missing}; add them")
    _check_slots(ph, ph.slots, folder)
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


def _read_tables(cls, folder):
    """An instance of ``cls`` (Phrases or PhrasesV3) from the phrase files of ``folder``, each table checked."""
    by_file: dict[str, list] = {}
    for f in fields(cls):
        by_file.setdefault(f.metadata["file"], []).append(f)
    tables = {}
    for file, specs in by_file.items():
        tables.update(_file_tables(folder / file, specs))
    return cls(**tables)


def load_phrases(folder) -> Phrases:
    """Read and check every phrase file of ``folder`` (a Path or Traversable); raise PhrasesError naming the file."""
    loaded = _read_tables(Phrases, folder)
    _check_links(loaded, folder)
    return loaded


def _check_links_v3(ph: PhrasesV3, base: Phrases, folder) -> None:
    """Cross-file checks of version 3: its slot names are new, every slot it names exists in its slots or the base
    slots, every frame holds {core} or {Core}."""
    clash = [name for name in ph.slots if name in base.slots]
    if clash:
        raise PhrasesError(
            f"phrase file {folder / 'slots.json'}: the slots {clash} are already slots of "
            f"workflow_lib/data/phrases/slots.json; rename them (v3 adds slots, it does not replace them)"
        )
    _check_slots(ph, {**base.slots, **ph.slots}, folder, placeholders=("core", "Core"))
    for kind, frames in ph.frames.items():
        for frame in frames:
            if "{core}" not in frame and "{Core}" not in frame:
                raise PhrasesError(
                    f"phrase file {folder / 'hard_negatives.json'}: frames[{kind!r}] frame {frame!r} needs {{core}} "
                    "or {Core} (where the evidence core goes)"
                )


def load_phrases_v3(folder, base: Phrases) -> PhrasesV3:
    """Read and check the version-3 phrase files of ``folder`` against the ``base`` (version 2) tables they extend;
    raise PhrasesError naming the file."""
    loaded = _read_tables(PhrasesV3, folder)
    _check_links_v3(loaded, base, folder)
    return loaded


@cache
def phrases() -> Phrases:
    """The phrase tables shipped in workflow_lib/data/phrases/, loaded once."""
    return load_phrases(resources.files(__package__) / PHRASES_DIR)


@cache
def phrases_v3() -> PhrasesV3:
    """The version-3 phrase tables shipped in workflow_lib/data/phrases/v3/, loaded once."""
    return load_phrases_v3(resources.files(__package__) / PHRASES_DIR / PHRASES_V3_DIR, phrases())


@cache
def _synonym_re(keys: tuple[str, ...]) -> re.Pattern:
    """Any of the synonyms ``keys`` as a whole word or phrase, longest keys first."""
    ordered = sorted(keys, key=len, reverse=True)
    return re.compile(r"(?<![\w'])(" + "|".join(re.escape(k) for k in ordered) + r")(?![\w'])")


# ---------------------------------------------------------------------------------------------
# text helpers


def _fill(template: str, rng: random.Random, slots: dict[str, list[str]] | None = None) -> str:
    """Fill every {slot} from ``slots`` (default: the slots of Phrases; slot values may hold slots themselves,
    filled in turn)."""
    slots = phrases().slots if slots is None else slots

    def one(m: re.Match) -> str:
        value = rng.choice(slots[m.group(1)])
        return _SLOT_RE.sub(one, value) if "{" in value else value

    return _SLOT_RE.sub(one, template)


def _vary(text: str, rng: random.Random, synonyms: dict[str, list[str]] | None = None) -> str:
    """Replace each key of ``synonyms`` (default: the synonyms of Phrases) in ``text`` with a random variant (with
    probability SYNONYM_RATE)."""
    synonyms = phrases().synonyms if synonyms is None else synonyms

    def one(m: re.Match) -> str:
        return rng.choice(synonyms[m.group(1)]) if rng.random() < SYNONYM_RATE else m.group(1)

    return _synonym_re(tuple(synonyms)).sub(one, text)


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


_THIRD_PERSON = {
    "I'm": "they're",
    "I've": "they've",
    "I'd": "they'd",
    "I'll": "they'll",
    "I am": "they are",
    "I was": "they were",
    "I wasn't": "they weren't",
    "I": "they",
    "me": "them",
    "my": "their",
    "My": "Their",
    "myself": "themselves",
    "mine": "theirs",
    "we": "they",
    "we'd": "they'd",
    "we're": "they're",
    "we've": "they've",
    "We": "They",
    "us": "them",
    "our": "their",
}
_THIRD_PERSON_RE = _synonym_re(tuple(_THIRD_PERSON))


def _third_person(text: str) -> str:
    """A first-person clause told of someone else (singular they: "I can't ... my" -> "they can't ... their"; "we",
    "us", "our" likewise)."""
    return _THIRD_PERSON_RE.sub(lambda m: _THIRD_PERSON[m.group(1)], text)


@cache
def _v3_slots() -> dict[str, list[str]]:
    """The slots version 3 fills from: those of Phrases and those of PhrasesV3."""
    return {**phrases().slots, **phrases_v3().slots}


class _PostV3(_Post):
    """A post of generator version 3: the narrative of version 2 with situations mixed in (V3_ANCHOR_RATE), evidence
    built from cores, hard negatives that wrap cores in frames."""

    def __init__(self, rng: random.Random, n_topics: int):
        super().__init__(rng, n_topics)
        self.v3 = phrases_v3()
        self.slots = _v3_slots()

    def fill(self, template: str, core: str | None = None) -> str:
        slots = self.slots if core is None else {**self.slots, "core": [core], "Core": [_cap(core)]}
        return _fill(template, self.rng, slots)

    def vary(self, text: str) -> str:
        return _vary(text, self.rng, self.v3.synonyms)

    def clause(self, topic: str | None = None) -> str:
        if self.rng.random() < V3_ANCHOR_RATE:
            return self.fill(self.rng.choice(self.v3.situations[self.rng.choice(SYMPTOMS)]))
        return super().clause(topic)

    def core(self, sym: str, whole: bool = True) -> tuple[str, bool]:
        """(a first-person clause showing ``sym``, whether it is composed): explicit, standalone or (``whole``) a
        situation + joiner + reaction (composed), else a reaction alone."""
        rng, v3 = self.rng, self.v3
        r = rng.random()
        if r < V3_EXPLICIT_RATE:
            return self.fill(rng.choice(v3.explicit[sym])), False
        if r < V3_EXPLICIT_RATE + V3_STANDALONE_RATE:
            return self.fill(rng.choice(v3.standalone[sym])), False
        reaction = rng.choice(v3.reactions[sym])
        if whole:
            return self.fill(rng.choice(v3.situations[sym]) + rng.choice(v3.joiners) + reaction), True
        return self.fill(reaction), False

    def in_context(self, clause: str) -> str:
        """``clause`` fused with a narrative clause of the post (V3_CONTEXT_RATE; v2's context frames)."""
        if self.rng.random() < V3_CONTEXT_RATE:
            return self.rng.choice(self.ph.context_frames).format(ctx=_lower_first(self.clause()), ev=clause)
        return clause

    def evidence_v3(self, symptoms: list[str]) -> str:
        """One evidence sentence showing every symptom of ``symptoms`` (one core each)."""
        rng = self.rng

        def make() -> str:
            cores = [self.core(s) for s in symptoms]
            if len(cores) == 1:
                text = cores[0][0] if cores[0][1] else self.in_context(cores[0][0])
            else:
                text = rng.choice(self.v3.combo_joiners).join(c for c, _ in cores)
            return _sentence(_dress(self.vary(text), rng), "..." if rng.random() < 0.05 else ".")

        return self.unique(make, labelled=True)

    def hard_text(self, kind: str, sym: str) -> str:
        """A hard negative of ``kind`` using the words of ``sym`` (before variation and dressing)."""
        rng, v3 = self.rng, self.v3
        if kind == "negation":
            return self.in_context(self.fill(rng.choice(v3.negations[sym])))
        if kind == "figure":
            return self.in_context(self.fill(rng.choice(v3.figures[sym])))
        core, _ = self.core(sym, whole=kind in V3_WHOLE_CORES)
        if kind == "other_person":
            core = _third_person(core)
        return self.fill(rng.choice(v3.frames[kind]), core=core)

    def hard_negative(self, present: list[str]) -> tuple[str, str, str]:
        """(kind, symptom, sentence); V3_ABSENT_ONLY kinds only about absent symptoms."""
        rng = self.rng
        picked: list[tuple[str, str]] = []

        def make() -> str:
            kind = _weighted(rng, V3_HARD_KINDS, V3_HARD_KIND_WEIGHTS)
            sym = rng.choice([s for s in SYMPTOMS if kind not in V3_ABSENT_ONLY or s not in present])
            picked.append((kind, sym))
            return _sentence(_dress(self.vary(self.hard_text(kind, sym)), rng))

        sent = self.unique(make, labelled=True)
        return picked[-1][0], picked[-1][1], sent


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


def _short_blocks_v3(post: _PostV3, present: list[str]) -> list[list[tuple[str, list]]]:
    """Version 3, posts of a few words: one short evidence sentence per present symptom."""
    rng, blocks = post.rng, []
    for sym in present:
        sent = post.unique(lambda sym=sym: _sentence(post.fill(rng.choice(post.v3.short_evidence[sym]))), labelled=True)
        blocks.append([(sent, [post.positive(sym)])])
    return blocks


def _evidence_blocks_v3(post: _PostV3, present: list[str], target: int) -> list[list[tuple[str, list]]]:
    """Version 3: maybe one sentence for two symptoms (V3_COMBO_RATE), then one evidence sentence per remaining
    symptom, sometimes two (V3_SECOND_*), the second next to the first or elsewhere."""
    rng, blocks = post.rng, []
    remaining = list(present)
    if len(remaining) >= 2 and rng.random() < V3_COMBO_RATE:
        pair = sorted(rng.sample(remaining, 2), key=SYMPTOMS.index)
        blocks.append([(post.evidence_v3(pair), [post.positive(s) for s in pair])])
        remaining = [s for s in remaining if s not in pair]
    second = min(V3_SECOND_MAX, V3_SECOND_BASE + target * V3_SECOND_PER_WORD)
    for sym in remaining:
        block = [(post.evidence_v3([sym]), [post.positive(sym)])]
        if rng.random() < second:
            extra = (post.evidence_v3([sym]), [post.positive(sym)])
            if rng.random() < V3_SECOND_ADJACENT:
                block.append(extra)
            else:
                blocks.append([extra])
        blocks.append(block)
    return blocks


def _hard_blocks_v3(post: _PostV3, present: list[str], target: int, stats: dict) -> list[list[tuple[str, list]]]:
    """Version 3: hard negatives (V3_STATUS0_RATE with a status-0 row), then maybe a SPECIAL_CASE sentence."""
    rng, blocks = post.rng, []
    for _ in range(_poisson(rng, V3_HARD_BASE + target * V3_HARD_PER_WORD)):
        kind, sym, sent = post.hard_negative(present)
        stats["hard_negatives"][kind] += 1
        rows = [(sym, 0, post.v3.explanations_negative[kind])] if rng.random() < V3_STATUS0_RATE else []
        blocks.append([(sent, rows)])
    if rng.random() < V3_SPECIAL_CASE_RATE:
        sent = post.unique(lambda: _sentence(post.fill(rng.choice(post.ph.special_case))), labelled=True)
        blocks.append([(sent, [("SPECIAL_CASE", 1, post.ph.explanation_special)])])
    return blocks


@dataclass(frozen=True)
class _Version:
    """How one generator version writes a post: its post class and its block builders."""

    post: type[_Post]
    short_blocks: Callable[..., list]  # (post, present) -> blocks
    evidence_blocks: Callable[..., list]  # (post, present, target words) -> blocks
    hard_blocks: Callable[..., list]  # (post, present, target words, stats) -> blocks
    hard_kinds: tuple[str, ...]  # the kinds of hard negative the statistics count
    readme_kinds: str  # the hard negatives the README names


_VERSIONS = {
    "2": _Version(
        _Post,
        _short_blocks,
        _evidence_blocks,
        _hard_blocks,
        HARD_KINDS,
        "negations, other people, recovered past episodes, general\nremarks, other word senses",
    ),
    "3": _Version(
        _PostV3,
        _short_blocks_v3,
        _evidence_blocks_v3,
        _hard_blocks_v3,
        V3_HARD_KINDS,
        "negations, other people, recovered past episodes,\nhypotheticals, quotes, figures of speech",
    ),
}


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


def _post(
    index: int, present: list[str], target: int, rng: random.Random, stats: dict, version: _Version
) -> tuple[str, str, list]:
    """One post: (post_id, text, annotation rows as tuples in ANNOTATIONS_HEADER order)."""
    post_id = f"g_{index:04d}_{rng.randint(1, 999)}"
    post = version.post(rng, n_topics=min(5, 1 + int(target // WORDS_PER_TOPIC) + (rng.random() < 0.3)))
    short = target < SHORT_POST_WORDS
    if short:
        blocks = version.short_blocks(post, present)
    else:
        blocks = version.evidence_blocks(post, present, target) + version.hard_blocks(post, present, target, stats)
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


def _new_stats(n_posts: int, seed: int, version: str) -> dict:
    return {
        "generator_version": version,
        "n_posts": n_posts,
        "seed": seed,
        "no_symptom": 0,
        "per_symptom": dict.fromkeys(SYMPTOMS, 0),
        "hard_negatives": dict.fromkeys(_VERSIONS[version].hard_kinds, 0),
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


def generate(out_dir, n_posts: int = 800, seed: int = 13, version: str = GENERATOR_VERSION) -> dict:
    """Write posts.csv, annotations.csv and README.md into ``out_dir``; return statistics.

    ``version``: the generator version, one of GENERATOR_VERSIONS (module docstring). Same
    ``(n_posts, seed, version)`` -> byte-identical files. The statistics hold the version, the realised
    per-symptom post counts, hard-negative kinds, row counts, sentences and the word-length
    distribution (mean, p50, p95, min, max of ``len(text.split())``).
    """
    if n_posts < 1:
        raise ValueError(f"n_posts must be positive, got {n_posts}")
    if version not in _VERSIONS:
        raise ValueError(
            f"generator version {version!r} is unknown; choose one of {', '.join(map(repr, GENERATOR_VERSIONS))} "
            "(config key data.embedded.generator)"
        )
    phrases()  # a missing or malformed phrase file fails here, before anything is written
    if version == "3":
        phrases_v3()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    stats = _new_stats(n_posts, seed, version)
    present_lists = _assign_symptoms(n_posts, rng)
    targets = _target_lengths(n_posts, rng)
    posts, annotations = [], []
    for i, (present, target) in enumerate(zip(present_lists, targets), start=1):
        post_id, text, rows = _post(i, present, target, rng, stats, _VERSIONS[version])
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
        _README.format(n=n_posts, seed=seed, version=version, kinds=_VERSIONS[version].readme_kinds),
        encoding="utf-8",
        newline="\n",
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
considered and rejected ({kinds}). Use it to run and test the pipeline; results on it say
nothing about real data.
"""

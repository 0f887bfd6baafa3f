"""TextAttack augmentation of evidence sentences, offline and deterministic.

    new_records, log = augment_records(records, recipe="synonym_swap", prob=0.3, seed=13)

Only the aligned evidence spans of a post are rewritten (``start``/``end`` not None); every
character outside them is kept byte for byte, and the evidence offsets of the returned records
point at the rewritten sentences. A record is picked with probability ``prob`` by an RNG derived
from ``(seed, post_id)``, so the choice does not depend on record order; each span is then
augmented under a seed derived from ``(seed, recipe, post_id, start, end)``. The output is the
same in every process for the same inputs, whatever PYTHONHASHSEED: WordNet synonym candidates
(which TextAttack collects in a ``set``) are sorted, and the global ``random``/``numpy.random``
that TextAttack draws from are seeded per span and restored afterwards (callers' RNG streams are
left as they were).

Recipes (``RECIPES``), each a TextAttack ``Augmenter`` with TextAttack's default constraints
(no word modified twice; WordNet and character swaps leave NLTK stop words alone, here in any
case: TextAttack's own check is case-sensitive and turned "I" into "iodine"):

    synonym_swap    replace words by WordNet synonyms (WordSwapWordNet)
    synonym_insert  insert a WordNet synonym of a (non stop) word of the sentence (WordInsertionRandomSynonym)
    word_swap       swap a word with a neighbouring word (left or right, at random)
    char_perturb    swap / substitute / delete / insert a character in words (CharSwapAugmenter's four)
    deletion        delete words (WordDeletion)

``pct_words`` (default 0.1, TextAttack's ``pct_words_to_swap``) is the share of a sentence's words
changed (at least one). Recipes that need a download (embeddings, translation or NER models) are in
``UNAVAILABLE_RECIPES`` with the reason.

Offline data. NLTK corpora are read from ``NLTK_DATA_DIR``, the environment's own
``sys.prefix/nltk_data`` (a folder NLTK searches; this module also puts it first on
``nltk.data.path`` and ``NLTK_DATA`` when imported, ahead of a ``~/nltk_data``), so every checkout
used with the environment finds it. ``bash envs/install.sh`` fills it: ``corpora/stopwords/english``
(NLTK's English stop word list, copied from the committed envs/nltk_data; ``import textattack``
needs it) and ``corpora/wordnet`` (from Debian's wordnet-base and wordnet-sense-index packages plus
a generated ``lexnames``). Nothing is ever downloaded: ``nltk.download`` is disabled while
TextAttack is imported and built (TextAttack calls it from its first import and from
WordSwapWordNet). NLTK refuses data that another account owns or can write to (a group-writable
folder, as a umask of 002 makes); ``check_available()`` checks for that and for missing files and
raises ``AugmentationUnavailable`` naming the folder and the command that fixes it.

Import cost. ``import workflow_lib.learning.augment`` imports neither nltk nor TextAttack. TextAttack is
imported on the first augmentation; any TextAttack import (even ``textattack.transformations``)
runs ``textattack/__init__`` and so imports flair and transformers, 8-15 s on a shared 2-core
machine, plus about 2 s to load WordNet for the two WordNet recipes (see
``python -m devbench augment``). Importing TextAttack runs ``logging.config.dictConfig``,
which disables every logger that exists at that moment when flair was imported earlier; the
``disabled`` flags are restored after the import.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import logging
import os
import random
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from workflow_lib.config.keys import seed_from
from workflow_lib.config.schema import RECIPES, UNAVAILABLE_RECIPES

__all__ = [
    "RECIPES",
    "UNAVAILABLE_RECIPES",
    "MAX_PROB",
    "NLTK_DATA_DIR",
    "AugmentationUnavailable",
    "augment_records",
    "augment_sentence",
    "check_available",
]

log = logging.getLogger(__name__)

# Which recipes run offline and which are refused (with the reason) is part of validating a
# training config: workflow_lib.config.schema holds both tables; they are re-exported here.
WORDNET_RECIPES = frozenset({"synonym_swap", "synonym_insert"})
MAX_PROB = 0.5
DEFAULT_PCT_WORDS = 0.1

NLTK_DATA_DIR = Path(sys.prefix) / "nltk_data"  # this environment's NLTK data (bash envs/install.sh)
STOPWORDS_FILE = NLTK_DATA_DIR / "corpora" / "stopwords" / "english"
WORDNET_DIR = NLTK_DATA_DIR / "corpora" / "wordnet"
WORDNET_FILES = (
    "lexnames",
    "index.sense",
    "data.noun",
    "data.verb",
    "data.adj",
    "data.adv",
    "index.noun",
    "index.verb",
    "index.adj",
    "index.adv",
    "noun.exc",
    "verb.exc",
    "adj.exc",
    "adv.exc",
)
FIX_COMMAND = (
    "bash envs/install.sh   (as root; otherwise have an administrator run "
    "`apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index` "
    "and then run `bash envs/install.sh`)"
)


class AugmentationUnavailable(RuntimeError):
    """The offline NLTK data (or TextAttack) needed for augmentation is missing."""


# ------------------------------------------------------------------------------------------------ offline data


def _nltk_data_first() -> None:
    """Put NLTK_DATA_DIR first on NLTK_DATA and, once nltk is imported, on nltk.data.path."""
    where = str(NLTK_DATA_DIR)
    env = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    if not env or env[0] != where:
        os.environ["NLTK_DATA"] = os.pathsep.join([where] + [p for p in env if p != where])
    data = sys.modules.get("nltk.data")
    if data is not None and (not data.path or data.path[0] != where):
        data.path[:] = [where] + [p for p in data.path if p != where]


_nltk_data_first()


def check_available(recipe: str | None = None) -> None:
    """Raise AugmentationUnavailable unless ``recipe`` (default: every recipe) can run offline.

    Checks files only (TextAttack is not imported): the stop word list, and WordNet for the WordNet
    recipes, are there and private enough for NLTK to read (_check_private). An unknown or download-only ``recipe`` raises ValueError (see _check_recipe).
    """
    if recipe is not None:
        _check_recipe(recipe)
    if importlib.util.find_spec("textattack") is None:
        raise AugmentationUnavailable(
            "augmentation needs the textattack package, which is not installed; run: bash envs/install.sh"
        )
    if not STOPWORDS_FILE.is_file():
        raise AugmentationUnavailable(
            f"NLTK's English stop word list is missing: {STOPWORDS_FILE} (TextAttack reads it on import). "
            "It is this environment's NLTK data; run: bash envs/install.sh (it copies envs/nltk_data there)"
        )
    wordnet = recipe is None or recipe in WORDNET_RECIPES
    if wordnet:
        missing = [name for name in WORDNET_FILES if not (WORDNET_DIR / name).is_file()]
        if missing:
            what = "is missing" if len(missing) == len(WORDNET_FILES) else f"lacks {', '.join(missing)}"
            raise AugmentationUnavailable(
                f"WordNet for the augmentation recipes {', '.join(sorted(WORDNET_RECIPES))}: the folder "
                f"{WORDNET_DIR} {what}. It is made offline from Debian's wordnet-base and wordnet-sense-index "
                f"packages; run: {FIX_COMMAND}"
            )
    _check_private([STOPWORDS_FILE.parent] + ([WORDNET_DIR] if wordnet else []))


def _check_private(corpora: list[Path]) -> None:
    """Raise AugmentationUnavailable if NLTK would refuse the data (POSIX): the data folder, the folders
    down to each corpus or anything in a corpus owned by an account other than this one and root, or
    writable by group or others (NLTK's rule; it would fail with a LookupError "Refused, writable by
    other accounts")."""
    if os.name != "posix":
        return
    me = os.geteuid()
    paths = [NLTK_DATA_DIR]
    for corpus in corpora:
        paths += [q for q in reversed(corpus.parents) if NLTK_DATA_DIR in q.parents] + [corpus]
        paths += sorted(corpus.rglob("*"))
    for path in paths:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if path.is_symlink():
            raise AugmentationUnavailable(
                f"NLTK refuses its data in {NLTK_DATA_DIR}: {path} is a symbolic link; "
                f"run: bash envs/install.sh (it copies the files)"
            )
        if st.st_uid not in (me, 0):
            raise AugmentationUnavailable(
                f"NLTK refuses its data in {NLTK_DATA_DIR}: {path} is owned by uid {st.st_uid}, not by you "
                f"(uid {me}) or root. NLTK reads only data of its own account or root: run bash envs/install.sh "
                "as this account in an environment of your own (python3.11 -m venv .venv && . .venv/bin/activate)"
            )
        if st.st_mode & 0o022:
            raise AugmentationUnavailable(
                f"NLTK refuses its data in {NLTK_DATA_DIR}: {path} is writable by other accounts (mode "
                f"{st.st_mode & 0o7777:04o}; a umask of 002 makes such files). Make it private to its owner: "
                f"chmod -R go-w {NLTK_DATA_DIR}"
            )


def _check_recipe(recipe: str) -> None:
    if recipe in UNAVAILABLE_RECIPES:
        raise ValueError(
            f"augmentation recipe {recipe!r} is not available offline: {UNAVAILABLE_RECIPES[recipe]}. "
            f"Available recipes: {', '.join(RECIPES)}"
        )
    if recipe not in RECIPES:
        raise ValueError(
            f"unknown augmentation recipe {recipe!r}; available: {', '.join(RECIPES)} "
            f"(not available offline: {', '.join(UNAVAILABLE_RECIPES)})"
        )


# ------------------------------------------------------------------------------------------------ TextAttack


@contextlib.contextmanager
def _no_downloads() -> Iterator[None]:
    """nltk.download becomes a no-op (TextAttack calls it on first import and in WordSwapWordNet)."""
    import nltk

    def refuse(info_or_id=None, *args, **kwargs):
        log.debug("nltk.download(%r) skipped: augmentation is offline (data in %s)", info_or_id, NLTK_DATA_DIR)
        return False

    saved = nltk.download
    nltk.download = refuse
    try:
        yield
    finally:
        nltk.download = saved


@functools.lru_cache(maxsize=1)
def _textattack() -> Any:
    """Import the TextAttack pieces used here (once), offline and without disturbing logging."""
    _nltk_data_first()
    import nltk.data  # noqa: F401  (after NLTK_DATA is set, so that its path can be fixed below)

    _nltk_data_first()
    disabled = {
        name: lg.disabled for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)
    }
    try:
        with _no_downloads(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import textattack.augmentation
            import textattack.constraints.pre_transformation
            import textattack.transformations
    except LookupError as exc:  # an NLTK resource not found
        raise AugmentationUnavailable(
            f"importing textattack failed for want of NLTK data ({exc}); "
            f"NLTK data is read from {NLTK_DATA_DIR}; run: {FIX_COMMAND}"
        ) from exc
    finally:
        for name, flag in disabled.items():
            logging.getLogger(name).disabled = flag
    return textattack


@functools.lru_cache(maxsize=1)
def _wordnet() -> Any:
    """The WordNet reader over WORDNET_DIR, English only.

    Built directly (not via nltk.corpus.wordnet, which may find another copy elsewhere on the path)
    and without the OMW self-mapping that nltk >= 3.9 builds from index.sense on every load (about
    two thirds of the load time; only used by the multilingual functions).
    """
    check_available("synonym_swap")
    from nltk.corpus.reader.wordnet import WordNetCorpusReader
    from nltk.data import FileSystemPathPointer

    class EnglishWordNet(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            return None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        return EnglishWordNet(FileSystemPathPointer(str(WORDNET_DIR)), None)


@functools.lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return frozenset(STOPWORDS_FILE.read_text(encoding="utf-8").split())


def _synonyms(word: str, one_word) -> list[str]:
    """WordNet synonyms of ``word``, sorted (TextAttack returns them in set order, which depends on
    PYTHONHASHSEED); none for stop words ("I" would give "iodine", "ace") and no mere case variants."""
    if word.lower() in _stopwords():
        return []
    out = set()
    for syn in _wordnet().synsets(word):
        for name in syn.lemma_names():
            if name.lower() != word.lower() and one_word(name):
                out.add(name)
    return sorted(out)


@functools.cache
def _augmenter(recipe: str, pct_words: float) -> Any:
    _textattack()
    from textattack.augmentation import Augmenter
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.shared.utils import is_one_word
    from textattack.transformations import (
        CompositeTransformation,
        Transformation,
        WordDeletion,
        WordInsertionRandomSynonym,
        WordSwapNeighboringCharacterSwap,
        WordSwapRandomCharacterDeletion,
        WordSwapRandomCharacterInsertion,
        WordSwapRandomCharacterSubstitution,
        WordSwapWordNet,
    )
    from textattack.transformations.word_insertions.word_insertion_random_synonym import check_if_one_word
    from textattack.transformations.word_swaps import WordSwap

    class SortedWordSwapWordNet(WordSwapWordNet):
        """WordSwapWordNet with sorted candidates, our WordNet reader and no nltk.download("omw-1.4")."""

        def __init__(self):
            WordSwap.__init__(self)
            self.language = "eng"

        def _get_replacement_words(self, word, random=False):
            return _synonyms(word, lambda w: "_" not in w and is_one_word(w))

    class SortedWordInsertionRandomSynonym(WordInsertionRandomSynonym):
        """WordInsertionRandomSynonym with sorted candidates and our WordNet reader."""

        def _get_synonyms(self, word):
            return _synonyms(word, check_if_one_word)

    class StopwordModificationAnyCase(StopwordModification):
        """TextAttack's stop word constraint, also for capitalised stop words ("I", "The")."""

        def _get_modifiable_indices(self, current_text):
            return {i for i, word in enumerate(current_text.words) if word.lower() not in self.stopwords}

    class WordSwapNeighbour(Transformation):
        """Swap a word with its left or right neighbour (chosen at random)."""

        def _get_transformations(self, current_text, indices_to_modify):
            words = current_text.words
            out = []
            for idx in sorted(indices_to_modify):
                neighbours = [j for j in (idx - 1, idx + 1) if 0 <= j < len(words) and words[j] != words[idx]]
                if neighbours:
                    j = random.choice(neighbours)
                    out.append(current_text.replace_word_at_index(idx, words[j]).replace_word_at_index(j, words[idx]))
            return out

        @property
        def deterministic(self):
            return False

    if recipe in WORDNET_RECIPES:
        _wordnet()
    with _no_downloads():
        if recipe == "synonym_swap":
            transformation = SortedWordSwapWordNet()
        elif recipe == "synonym_insert":
            transformation = SortedWordInsertionRandomSynonym()
        elif recipe == "word_swap":
            transformation = WordSwapNeighbour()
        elif recipe == "char_perturb":
            transformation = CompositeTransformation(
                [
                    WordSwapNeighboringCharacterSwap(),
                    WordSwapRandomCharacterSubstitution(),
                    WordSwapRandomCharacterDeletion(),
                    WordSwapRandomCharacterInsertion(),
                ]
            )
        elif recipe == "deletion":
            transformation = WordDeletion()
        else:  # pragma: no cover - _check_recipe ran first
            raise ValueError(recipe)
    constraints = [RepeatModification(), StopwordModificationAnyCase()]
    return Augmenter(
        transformation=transformation,
        constraints=constraints,
        pct_words_to_swap=pct_words,
        transformations_per_example=1,
    )


# ------------------------------------------------------------------------------------------------ seeding


def _derive_seed(*parts: Any) -> int:
    return seed_from(*(str(p) for p in parts))


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed the global random and numpy.random (which TextAttack uses); restore them afterwards."""
    import numpy as np

    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _check_args(recipe: str, prob: float, pct_words: float) -> None:
    _check_recipe(recipe)
    if not isinstance(prob, (int, float)) or isinstance(prob, bool) or not 0.0 <= prob <= MAX_PROB:
        raise ValueError(f"augmentation probability must be a number in [0, {MAX_PROB}], got {prob!r}")
    if not isinstance(pct_words, (int, float)) or isinstance(pct_words, bool) or not 0.0 < pct_words <= 1.0:
        raise ValueError(f"pct_words must be a number in (0, 1], got {pct_words!r}")


# ------------------------------------------------------------------------------------------------ public API


def augment_sentence(
    sentence: str, *, recipe: str, seed: int, key: Any = "", pct_words: float = DEFAULT_PCT_WORDS
) -> str:
    """One augmented version of ``sentence`` (the sentence itself when the recipe finds nothing to do).

    Deterministic for ``(sentence, recipe, seed, key, pct_words)``. Leading and trailing whitespace of
    ``sentence`` is kept as it is; an augmentation that would leave no text returns ``sentence``.
    """
    _check_args(recipe, 0.0, pct_words)
    check_available(recipe)
    return _augment(sentence, recipe, seed, key, pct_words)


def _augment(sentence: str, recipe: str, seed: int, key: Any, pct_words: float) -> str:
    core = sentence.strip()
    if not any(ch.isalnum() for ch in core):
        return sentence
    augmenter = _augmenter(recipe, float(pct_words))
    with _seeded(_derive_seed(seed, recipe, float(pct_words), key)), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = augmenter.augment(core)
    new = results[0].strip() if results else ""
    if not new:
        return sentence
    lead = sentence[: len(sentence) - len(sentence.lstrip())]
    trail = sentence[len(sentence.rstrip()) :]
    return lead + new + trail


def _pieces(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """Cut ``text`` at every span boundary: [(start, end, inside_some_span)], covering the text."""
    spans = list(spans)
    cuts = sorted({0, len(text)} | {s for s, _ in spans} | {e for _, e in spans})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        inside = any(s <= a and b <= e for s, e in spans)
        out.append((a, b, inside))
    return out


def _moved(x: int, pieces: list[tuple[int, int, bool]], chunks: list[str], new_pos: dict[int, int]) -> int:
    """Where character offset ``x`` of the original text lies in the augmented one: a piece boundary maps exactly,
    an offset in an unchanged piece shifts with it, one inside an augmented piece keeps its distance from the
    piece's start (at most the new piece's length)."""
    if x in new_pos:
        return new_pos[x]
    for (a, b, _inside), chunk in zip(pieces, chunks):
        if a < x < b:
            return new_pos[a] + min(x - a, len(chunk))
    raise ValueError(f"offset {x} lies outside the text")


def augment_records(
    records: Iterable[dict], *, recipe: str, prob: float, seed: int, pct_words: float = DEFAULT_PCT_WORDS
) -> tuple[list[dict], list[dict]]:
    """Augment the aligned evidence sentences of a random share ``prob`` of ``records``.

    ``records``: dicts {"post_id", "text", "labels", "evidence": [{"symptom", "start", "end", ...}]}
    (character offsets into ``text``; None when unaligned). Returns ``(new_records, log)``:
    ``new_records`` has one record per input record, in input order (copies: the input is never
    mutated); in a picked record each aligned evidence span is replaced by its augmented version,
    everything outside the spans is unchanged byte for byte, and each aligned evidence's start/end
    point at its new text (other evidence fields, e.g. ``sentence_text``, are kept; the prepared ``sentences``
    offsets move with the text). Spans that
    overlap without being equal are cut at every boundary and each piece augmented on its own, so
    every evidence keeps exact offsets. ``log`` has {"post_id", "symptom", "original", "augmented"}
    for every evidence whose text changed. Picks depend on ``(seed, post_id)`` only, augmentations
    on ``(seed, recipe, pct_words, post_id, span)``: the result does not depend on record order,
    process or PYTHONHASHSEED.
    """
    _check_args(recipe, prob, pct_words)
    records = list(records)
    if prob > 0:
        check_available(recipe)
    new_records: list[dict] = []
    changes: list[dict] = []
    for rec in records:
        new = copy.deepcopy(rec)
        new_records.append(new)
        if prob <= 0 or random.Random(_derive_seed(seed, "pick", rec["post_id"])).random() >= prob:
            continue
        text = rec["text"]
        aligned = [ev for ev in new.get("evidence") or [] if ev.get("start") is not None and ev.get("end") is not None]
        if not aligned:
            continue
        for ev in aligned:
            s, e = ev["start"], ev["end"]
            if not (isinstance(s, int) and isinstance(e, int) and 0 <= s <= e <= len(text)):
                raise ValueError(
                    f"post {rec['post_id']!r}: evidence {ev.get('symptom')!r} has offsets "
                    f"({s!r}, {e!r}) outside its text of {len(text)} characters"
                )
        pieces = _pieces(text, [(ev["start"], ev["end"]) for ev in aligned])
        out, new_pos = [], {}
        pos = 0
        for a, b, inside in pieces:
            chunk = text[a:b]
            if inside:
                chunk = _augment(chunk, recipe, seed, f"{rec['post_id']}\x1f{a}:{b}", pct_words)
            new_pos[a] = pos
            out.append(chunk)
            pos += len(chunk)
        new_pos[len(text)] = pos
        new_text = "".join(out)
        if new_text == text:
            continue
        new["text"] = new_text
        if new.get("sentences") is not None:  # the prepared sentences (the sentence model reads them) move too
            new["sentences"] = [[_moved(x, pieces, out, new_pos) for x in span] for span in rec["sentences"]]
        for ev in aligned:
            original = text[ev["start"] : ev["end"]]
            ev["start"], ev["end"] = new_pos[ev["start"]], new_pos[ev["end"]]
            augmented = new_text[ev["start"] : ev["end"]]
            if augmented != original:
                changes.append(
                    {
                        "post_id": rec["post_id"],
                        "symptom": ev.get("symptom"),
                        "original": original,
                        "augmented": augmented,
                    }
                )
    return new_records, changes

"""Read a data source (embedded, local folder, Hugging Face Hub) into one in-memory shape.

Sources (``data.source`` in the config):

``embedded``
    ``synthetic.generate`` writes ReDSM5-format CSVs into ``work_dir/source/``; they
    are then read by exactly the same code as a local CSV folder.
``local``
    ``data.local_path`` is a folder in one of two layouts:

    1. **ReDSM5 CSV** - ``posts.csv`` (post_id, text) and ``annotations.csv``
       (post_id, sentence_id, sentence_text, DSM5_symptom, status[, explanation]);
       any single ``*posts*.csv`` / ``*annotations*.csv`` pair (searched recursively)
       is accepted too, e.g. the release's ``redsm5_posts.csv`` and
       ``redsm5_annotations.csv`` (CRLF rows, line breaks inside quoted fields).
       Extra columns are ignored.
    2. **Split folder** read with ``datasets.load_dataset(folder)`` - files named
       after their split (``train.*``, ``validation.*``/``valid.*``/``dev.*``,
       ``test.*``; CSV, JSON/JSONL or Parquet), one row per post with columns

       - ``post_id`` (string or integer) and ``text`` (string), and either
       - the nine symptom names (``DEPRESSED_MOOD`` ... ``SUICIDAL_THOUGHTS``) as
         0/1 columns, optionally with ``evidence``: a list (or JSON string) of
         ``{"symptom": NAME, "sentence_text": str[, "sentence_id": str]}`` for
         symptoms marked 1; or
       - ``annotations``: a list (or JSON string) of ReDSM5 annotation objects
         ``{"sentence_text", "DSM5_symptom", "status"[, "sentence_id", "explanation"]}``.

       With train, validation and test present those splits are used as given (they
       must be disjoint); with only ``train`` the pipeline makes its own splits.
``hub``
    ``huggingface_hub.snapshot_download(repo_type="dataset")`` into the HF cache
    (cache first, then online with ``data.hub.timeout_s``); the snapshot is then
    read as a local folder (irlab-udc/redsm5 holds the two release CSVs; its hub
    config's "splits" ``annotations`` and ``posts`` are those files, so it is read
    as a ReDSM5 CSV folder, never with ``datasets.load_dataset``).

A folder written by datasets' ``save_to_disk`` is refused with how to export it to CSV.

Posts of any length are read (the csv module's field-size limit is lifted, see :func:`read_csv`);
``data.max_post_chars`` (default null: no limit) rejects longer posts when set.

Every problem with the input is a :class:`DataError` naming the file, the 1-based
line (header = line 1) or split row, the column, and the fix. Split files are checked
before datasets reads them (empty, UTF-8, CSV/JSON syntax, header), and CSV split files
are read as strings (no type guessing: ``007`` stays ``007``, ``NA`` stays text).

Exceptions that warn instead: evidence that cannot be aligned keeps its label (counted in the
data card), and the known defects of a ReDSM5 annotations file are repaired, each with a warning
naming the file and line and an entry in the data card's ``fixes`` (:class:`Fix`):

- a symptom name of KNOWN_MISSPELLINGS (the release's ``LEEP_ISSUES``) is read as the right
  name; any other unknown name is still an error;
- rows of one post, sentence and symptom that contradict each other (status 1 and 0): status 1
  wins and the status-0 rows are dropped (any status-1 row makes the post positive, the ReDSM5
  authors' counting rule);
- rows that repeat one another (post, sentence, symptom and status) are used once; when their
  explanations differ, the distinct explanations are all kept, joined by a blank line.

``data.strict: true`` refuses these instead, naming the first defect's file, line and fix.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow_lib.config.keys import digest, file_sha256
from workflow_lib.data.synthetic import generate
from workflow_lib.symptoms import EXTRA_LABELS, SYMPTOMS

if TYPE_CHECKING:
    from workflow_lib.config.sections import Data, Section

log = logging.getLogger(__name__)

ALLOWED_LABELS: tuple[str, ...] = SYMPTOMS + EXTRA_LABELS
POSTS_REQUIRED = ("post_id", "text")
ANNOTATIONS_REQUIRED = ("post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status")
ANNOTATIONS_OPTIONAL = ("explanation",)
SPLIT_NAMES = ("train", "validation", "test")
DATA_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".arrow", ".txt")
# Symptom names misspelled in the ReDSM5 release (redsm5_annotations.csv), read as the right name with a
# warning and a data card entry. A table, not a guess: any other unknown name stops the load.
KNOWN_MISSPELLINGS = {"LEEP_ISSUES": "SLEEP_ISSUES"}
# Joins the distinct explanations of annotation rows that repeat one another (post, sentence, symptom, status).
EXPLANATION_SEPARATOR = "\n\n"

# Python's csv module refuses fields over 131,072 characters by default; a post can be longer.
# The largest value csv.field_size_limit accepts on every platform (a C long; 32 bits on Windows).
CSV_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


def truncation_policy(max_post_chars: int | None) -> str:
    """The data card's sentence on what happens to long posts, for this setting of data.max_post_chars."""
    if max_post_chars is None:
        loading = (
            "Posts of any length are accepted (data.max_post_chars: null, no limit); no characters are "
            "cut when the data are loaded."
        )
    else:
        loading = (
            f"Posts longer than data.max_post_chars ({max_post_chars}) characters are rejected when the "
            "data are loaded (an error names the post and its length); no characters are cut here."
        )
    return (
        f"{loading} How the encoder covers a post longer than its max_length tokens (truncation, or windows "
        "over the whole post) is training.long_posts, reported per trial in the fold metrics and the "
        "evaluation report."
    )


_ALIASES = {"text": ("body", "selftext", "post", "content", "post_text"), "post_id": ("id", "postid")}
_FIX_LOCAL = (
    "to use a local copy instead, set data.source: local and data.local_path: <folder with posts.csv "
    "and annotations.csv> in the config"
)


class DataError(ValueError):
    """A problem with the input data that the user fixes in the data or the config."""


@dataclass
class RawData:
    posts: list[dict]  # {"post_id", "text"}
    annotations: list[dict]  # {"post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status", "explanation"}
    given_splits: dict[str, list[str]] | None = None
    origin: str = ""
    layout: str = ""  # "redsm5_csv" | "split_folder"
    files: list[str] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)  # known defects of the source repaired while reading


# =============================================================================================
# fingerprints


def source_fingerprint(data_cfg: Data) -> dict:
    """A cheap description of the data source (the resolved ``data`` section) that changes whenever its
    content can change."""
    source = data_cfg.source
    if source == "embedded":
        emb = data_cfg.embedded
        return {
            "kind": "embedded",
            "generator_version": emb["generator"],
            "n_posts": int(emb["n_posts"]),
            "seed": int(emb["seed"]),
        }
    if source == "local":
        folder = _local_folder(data_cfg)
        return {"kind": "local", "path": str(folder), "sha256": folder_sha256(folder)}
    if source == "hub":
        hub = data_cfg.hub
        resolved, _ = _resolve_hub(hub)
        return {"kind": "hub", "id": hub["id"], "revision_requested": hub["revision"], "resolved_revision": resolved}
    raise DataError(f"data.source: unknown source {source!r}; choose one of 'embedded', 'local', 'hub'")


def data_files(folder: Path) -> list[Path]:
    """The files of ``folder`` that carry data (by suffix), sorted by relative path; hidden ones skipped."""
    folder = Path(folder)
    out = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in DATA_SUFFIXES:
            out.append(path)
    return sorted(out, key=lambda p: p.relative_to(folder).as_posix())


def folder_sha256(folder: Path) -> str:
    """sha256 over (relative path, file sha256) of the folder's data files, in sorted order."""
    folder = Path(folder)
    entries = [[p.relative_to(folder).as_posix(), file_sha256(p)] for p in data_files(folder)]
    if not entries:
        raise DataError(
            f"{folder}: no data files found (looked for {', '.join(DATA_SUFFIXES)}); "
            "expected posts.csv and annotations.csv, or train/validation/test files"
        )
    return digest(entries, length=64)


def _local_folder(data_cfg: Data) -> Path:
    raw = data_cfg.local_path
    if not raw:
        raise DataError(
            "data.local_path is not set; set it to a folder with posts.csv and annotations.csv "
            "(ReDSM5 format) or with train/validation/test files"
        )
    folder = Path(raw).expanduser().resolve()
    if not folder.exists():
        raise DataError(
            f"data.local_path: {folder} does not exist; point it at a folder with posts.csv and "
            "annotations.csv (ReDSM5 format) or with train/validation/test files"
        )
    if not folder.is_dir():
        raise DataError(
            f"data.local_path: {folder} is a file, not a folder; point it at the folder that "
            "holds posts.csv and annotations.csv"
        )
    return folder


# =============================================================================================
# hub

_TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{8,}")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _hub_offline() -> bool:
    # Read at call time (huggingface_hub reads its constants once at import).
    return _env_true("HF_HUB_OFFLINE") or _env_true("HF_DATASETS_OFFLINE")


def _hf_cache_dir() -> str:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _scrub(text: str) -> str:
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return _TOKEN_RE.sub("hf_***", first)[:300]


def _hub_error(repo_id, revision, exc: BaseException | None, what: str) -> DataError:
    rev = revision if revision is not None else "main (default)"
    name = type(exc).__name__ if exc is not None else ""
    detail = f" ({name}: {_scrub(exc)})" if exc is not None else ""
    hint = ""
    if name in ("GatedRepoError",) or "401" in detail or "403" in detail:
        hint = (
            " The data set is gated or private: accept its terms on the hub page and log in "
            "(huggingface-cli login, or set HF_TOKEN) on this machine."
        )
    elif name in ("RepositoryNotFoundError",):
        hint = " Check data.hub.id (and that you are logged in if the data set is private)."
    elif name in ("RevisionNotFoundError",):
        hint = " Check data.hub.revision: a branch, tag or full commit sha of the data set."
    return DataError(
        f"hub data set {repo_id!r} at revision {rev!r}: {what}{detail}.{hint} "
        f"Download it on a machine with access (huggingface-cli download {repo_id} --repo-type "
        f"dataset --local-dir <folder>), or {_FIX_LOCAL}."
    )


def _resolve_hub(hub: Section) -> tuple[str, str | None]:
    """(resolved commit sha, cached snapshot folder or None) of data.hub. Cache first, then one online call."""
    repo_id, revision, timeout = hub["id"], hub["revision"], float(hub["timeout_s"])
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(
            repo_id, repo_type="dataset", revision=revision, cache_dir=_hf_cache_dir(), local_files_only=True
        )
        return Path(path).name, path
    except Exception:
        pass
    if _hub_offline():
        raise _hub_error(
            repo_id,
            revision,
            None,
            "not in the local Hugging Face cache and HF_HUB_OFFLINE/HF_DATASETS_OFFLINE forbids going online",
        )
    try:
        from huggingface_hub import HfApi

        info = HfApi().dataset_info(repo_id, revision=revision, timeout=timeout)
    except Exception as exc:
        raise _hub_error(
            repo_id, revision, exc, f"could not resolve the revision online (timeout {timeout:g} s)"
        ) from None
    if not getattr(info, "sha", None):
        raise _hub_error(repo_id, revision, None, "the hub returned no commit sha for this revision")
    return info.sha, None


def _hub_snapshot(hub: Section) -> tuple[Path, str]:
    repo_id, revision, timeout = hub["id"], hub["revision"], float(hub["timeout_s"])
    resolved, cached = _resolve_hub(hub)
    if cached:
        return Path(cached), resolved
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(
            repo_id, repo_type="dataset", revision=resolved, cache_dir=_hf_cache_dir(), etag_timeout=timeout
        )
    except Exception as exc:
        raise _hub_error(repo_id, revision, exc, f"download of commit {resolved} failed") from None
    return Path(path), resolved


# =============================================================================================
# loading


def load_raw(data_cfg: Data, work_dir) -> RawData:
    """Load the source the resolved ``data`` section configures; raise DataError on any input problem."""
    source = data_cfg.source
    max_chars = data_cfg.max_post_chars  # None: no limit
    strict = data_cfg.strict
    if source == "embedded":
        emb = data_cfg.embedded
        folder = Path(work_dir) / "source"
        generate(folder, n_posts=emb["n_posts"], seed=emb["seed"], version=emb["generator"])
        raw = load_folder(folder, max_post_chars=max_chars, strict=strict)
        raw.origin = (
            f"embedded synthetic data (generator {emb['generator']}, n_posts={emb['n_posts']}, "
            f"seed={emb['seed']}), CSVs in source/ beside the prepared files"
        )
        return raw
    if source == "local":
        return load_folder(_local_folder(data_cfg), max_post_chars=max_chars, strict=strict)
    if source == "hub":
        hub = data_cfg.hub
        folder, resolved = _hub_snapshot(hub)
        raw = load_folder(folder, max_post_chars=max_chars, strict=strict)
        raw.origin = f"hub data set {hub['id']}@{resolved} ({folder})"
        return raw
    raise DataError(f"data.source: unknown source {source!r}; choose one of 'embedded', 'local', 'hub'")


def load_folder(folder, *, max_post_chars: int | None = None, strict: bool = False) -> RawData:
    """Read a folder in either supported layout (see the module docstring).

    ``max_post_chars``: a post longer than this many characters is a DataError; None accepts any length.
    ``strict``: a known defect of a ReDSM5 annotations file (see :class:`Fix`) is a DataError instead of
    being repaired with a warning."""
    folder = Path(folder)
    posts_csv, ann_csv = _find_redsm5_csvs(folder)
    if posts_csv is not None:
        return _load_redsm5_csv(posts_csv, ann_csv, max_post_chars, root=folder, strict=strict)
    _refuse_save_to_disk(folder)
    return _load_split_folder(folder, max_post_chars)


def _refuse_save_to_disk(folder: Path) -> None:
    """A folder written by datasets' ``save_to_disk`` (Arrow files with state.json, or dataset_dict.json) is
    not a layout this loader reads: say so, and how to export it."""
    found = [p.relative_to(folder) for name in ("dataset_dict.json", "state.json") for p in folder.rglob(name)]
    markers = [
        p.as_posix()
        for p in sorted(found, key=lambda p: (len(p.parts), p.as_posix()))
        if not any(part.startswith(".") for part in p.parts)
    ]
    if not markers:
        return
    dict_file = next((folder / m for m in markers if m.endswith("dataset_dict.json")), None)
    splits = _save_to_disk_splits(dict_file) if dict_file else []
    what = f"a DatasetDict with split(s) {', '.join(splits) or '?'}" if dict_file else "a Dataset"
    if {"posts", "annotations"} <= set(splits):
        export = "ds['posts'].to_csv('<dir>/posts.csv'); ds['annotations'].to_csv('<dir>/annotations.csv')"
    elif dict_file:
        export = "for name, split in ds.items(): split.to_csv(f'<dir>/{name}.csv')  (train, validation, test)"
    else:
        export = "ds.to_csv('<dir>/train.csv')  (one row per post: post_id, text and the labels)"
    raise DataError(
        f"{folder}: a folder written by datasets' save_to_disk ({what}; found {', '.join(markers[:3])}), which "
        "this loader does not read. Give data.local_path the folder with the CSV files instead (the ReDSM5 "
        "release as distributed: redsm5_posts.csv and redsm5_annotations.csv), or export it to CSV: "
        f"ds = datasets.load_from_disk('{folder}'); {export}; then set data.local_path: <dir>"
    )


def _save_to_disk_splits(path: Path) -> list[str]:
    try:
        splits = json.loads(path.read_text(encoding="utf-8")).get("splits", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [str(s) for s in splits] if isinstance(splits, list) else []


def _find_redsm5_csvs(folder: Path) -> tuple[Path | None, Path | None]:
    if (folder / "posts.csv").is_file() and (folder / "annotations.csv").is_file():
        return folder / "posts.csv", folder / "annotations.csv"
    files = [p for p in data_files(folder) if p.suffix.lower() == ".csv"]
    posts = [p for p in files if "posts" in p.name.lower()]
    anns = [p for p in files if "annotations" in p.name.lower()]
    if not posts and not anns:
        return None, None
    rel = lambda ps: ", ".join(p.relative_to(folder).as_posix() for p in ps) or "none"  # noqa: E731
    if len(posts) == 1 and not anns:
        raise DataError(
            f"{folder}: found {rel(posts)} but no annotations CSV; add annotations.csv with the header "
            f"{','.join(ANNOTATIONS_REQUIRED + ANNOTATIONS_OPTIONAL)} (a header alone if no post has an "
            "annotation)"
        )
    if len(posts) != 1 or len(anns) != 1:
        raise DataError(
            f"{folder}: expected exactly one posts CSV and one annotations CSV; found posts: "
            f"{rel(posts)}; annotations: {rel(anns)}. Keep one of each (posts.csv and "
            "annotations.csv) in the folder"
        )
    return posts[0], anns[0]


# ---------------------------------------------------------------------------------- CSV layer


def decode_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        expected = (
            "a header line (line 1) and one row per record"
            if path.suffix.lower() == ".csv"
            else "one JSON object per record"
        )
        raise DataError(
            f"{path}: the file is empty; expected {expected}. Re-export the file or point "
            "data.local_path at the right folder"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"{path}: line {line}, byte column {col}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); "
            "re-save the file as UTF-8 (e.g. iconv -f cp1252 -t utf-8 in > out)"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def lift_csv_field_limit() -> None:
    """Let the csv module read fields of any length (process-wide; its default stops at 131,072 characters)."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


def read_csv(path, required: Iterable[str], optional: Iterable[str] = ()) -> tuple[list[str], list[tuple[int, dict]]]:
    """Strictly parsed CSV rows as ``(line_number, {column: value})``; header checked.

    Fields of any length up to CSV_FIELD_LIMIT characters are read (see lift_csv_field_limit)."""
    path = Path(path)
    required, optional = tuple(required), tuple(optional)
    text = decode_text(path)
    lift_csv_field_limit()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, dict]] = []
    end_prev = 0
    try:
        for row in reader:
            start, end_prev = end_prev + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if header is None:
                header = [h.strip() for h in row]
                _check_header(path, header, required, optional)
                continue
            if len(row) != len(header):
                where = f"line {start}" if start == end_prev else f"lines {start}-{end_prev}"
                raise DataError(
                    f"{path}: {where}: expected {len(header)} fields ({', '.join(header)}), found {len(row)}. "
                    "A field that contains a comma, a double quote or a line break must be enclosed in double "
                    'quotes, with quotes inside it doubled ("")'
                )
            rows.append((start, dict(zip(header, row))))
    except csv.Error as exc:
        start = end_prev + 1
        msg = str(exc)
        if "unexpected end of data" in msg:
            raise DataError(
                f"{path}: line {start}: a quoted field opened in the record starting at line {start} "
                f"is never closed (the file ends at line {reader.line_num}); add the closing double "
                'quote, and double any quote inside the field ("")'
            ) from None
        if "field larger than field limit" in msg:
            raise DataError(
                f"{path}: record starting at line {start}: a field runs past "
                f"{csv.field_size_limit():,} characters, the most Python's csv module reads in one "
                "field. Shorten or remove that value (a post or an annotation); if none is that long, "
                "a double quote opened in this record is never closed - close it"
            ) from None
        if "expected after" in msg:
            raise DataError(
                f"{path}: line {reader.line_num} (record starting at line {start}): malformed CSV "
                f"({msg}): a quoted field is followed by more text before the next comma. Enclose the "
                'whole field in double quotes and double every quote inside it ("")'
            ) from None
        raise DataError(
            f"{path}: line {reader.line_num} (record starting at line {start}): malformed CSV "
            f"({msg}); re-export the file as comma-separated CSV (RFC 4180)"
        ) from None
    if header is None:
        raise DataError(f"{path}: the file has no header line; line 1 must be: {','.join(required)}")
    return header, rows


def _check_header(path: Path, header: list[str], required, optional) -> None:
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(
            f"{path}: line 1 (header): duplicate column(s) {', '.join(dupes)}; give every column a distinct name"
        )
    missing = [c for c in required if c not in header]
    if missing:
        hints = []
        for col in missing:
            close = difflib.get_close_matches(col, [h for h in header if h not in required], n=1, cutoff=0.5)
            ci = [h for h in header if h.lower() == col.lower()]
            alias = [h for h in header if h.lower() in _ALIASES.get(col, ())]
            guess = (ci or close or alias or [None])[0]
            if guess:
                hints.append(f"rename column {guess!r} to {col!r}")
        fix = "; ".join(hints) if hints else f"add the column(s) {', '.join(missing)}"
        sep = next((c for c in (";", "\t", "|") if len(header) == 1 and c in header[0]), None)
        if sep:
            fix = (
                f"the file looks separated by {sep!r}, not by commas; save it as comma-separated CSV "
                f"(header line: {','.join(required)})"
            )
        raise DataError(
            f"{path}: line 1 (header): missing required column(s) {', '.join(missing)}; found columns "
            f"{', '.join(header) or '(none)'}; required: {', '.join(required)}"
            f"{' (optional: ' + ', '.join(optional) + ')' if optional else ''}. Fix: {fix}"
        )


def _load_redsm5_csv(
    posts_csv: Path, ann_csv: Path, max_post_chars: int | None, *, root: Path, strict: bool = False
) -> RawData:
    _, post_rows = read_csv(posts_csv, POSTS_REQUIRED)
    if not post_rows:
        raise DataError(f"{posts_csv}: has a header but no posts (line 2 onwards is empty); add one row per post")
    posts: list[dict] = []
    seen: dict[str, str] = {}
    for line, row in post_rows:
        where = f"{posts_csv}: line {line}"
        add_post(posts, seen, row.get("post_id", ""), row.get("text", ""), where, max_post_chars)
    _, ann_rows = read_csv(ann_csv, ANNOTATIONS_REQUIRED, ANNOTATIONS_OPTIONAL)
    file = ann_csv.relative_to(root).as_posix()
    fixes: list[Fix] = []
    groups: dict[tuple, list[tuple[int, dict]]] = {}
    for line, row in ann_rows:
        where = f"{ann_csv}: line {line}"
        row, fix = _known_misspelling(row, line, file)
        ann = _annotation(row, where, seen, posts_csv.name)
        if fix is not None:
            fixes.append(fix)
        key = (ann["post_id"], ann["sentence_id"], ann["sentence_text"].strip(), ann["DSM5_symptom"])
        groups.setdefault(key, []).append((line, ann))
    kept: list[tuple[int, dict]] = []
    for rows in groups.values():
        row, group_fixes = _resolve_group(rows, file)
        kept.append(row)
        fixes.extend(group_fixes)
    fixes.sort(key=lambda f: (f.line, f.kind))
    if strict and fixes:
        raise _strict_error(ann_csv, fixes[0], len(fixes))
    _warn_fixes(ann_csv, fixes)
    return RawData(
        posts=posts,
        annotations=[ann for _, ann in sorted(kept, key=lambda item: item[0])],
        given_splits=None,
        origin=str(posts_csv.parent),
        layout="redsm5_csv",
        files=[str(posts_csv), str(ann_csv)],
        fixes=fixes,
    )


# ---------------------------------------------------------------------------------- known defects


@dataclass(frozen=True)
class Fix:
    """One known defect of a ReDSM5 annotations file and what the loader did about it (the data card lists them).

    ``line``: the CSV line (where the record starts) of the defect; ``lines``: those of every row concerned."""

    kind: str  # misspelled_symptom | contradicting_status | repeated_row
    file: str  # relative to the data folder
    line: int
    lines: tuple[int, ...]
    post_id: str
    sentence_id: str
    symptom: str
    problem: str
    action: str

    @property
    def column(self) -> str:
        return {"misspelled_symptom": "DSM5_symptom", "contradicting_status": "status"}.get(self.kind, "explanation")

    def record(self) -> dict:
        """The data card's entry."""
        return {**asdict(self), "lines": list(self.lines)}


def _lines(lines: Iterable[int]) -> str:
    lines = list(lines)
    return f"line {lines[0]}" if len(lines) == 1 else "lines " + ", ".join(map(str, lines))


def _known_misspelling(row: dict, line: int, file: str) -> tuple[dict, Fix | None]:
    """``row`` with a symptom of KNOWN_MISSPELLINGS corrected, and the fix; other names are left as they are."""
    symptom = str(row.get("DSM5_symptom", "") or "").strip()
    if symptom not in KNOWN_MISSPELLINGS:
        return row, None
    right = KNOWN_MISSPELLINGS[symptom]
    fix = Fix(
        kind="misspelled_symptom",
        file=file,
        line=line,
        lines=(line,),
        post_id=str(row.get("post_id", "") or "").strip(),
        sentence_id=str(row.get("sentence_id", "") or "").strip(),
        symptom=right,
        problem=f"unknown symptom {symptom!r}, a known misspelling of {right} in the ReDSM5 release",
        action=f"read as {right}",
    )
    return {**row, "DSM5_symptom": right}, fix


def _resolve_group(rows: list[tuple[int, dict]], file: str) -> tuple[tuple[int, dict], list[Fix]]:
    """One annotation (with its line) for the rows of one post, sentence and symptom, and the fixes that took.

    Rows that disagree on the status: status 1 wins and the status-0 rows are dropped (any status-1 row makes
    the post positive, the ReDSM5 authors' counting rule). Rows kept together (same status) are used once, with
    the distinct explanations of all of them joined by EXPLANATION_SEPARATOR."""
    if len(rows) == 1:
        return rows[0], []
    first = rows[0][1]
    ids = {"file": file, "post_id": first["post_id"], "sentence_id": first["sentence_id"]}
    ids["symptom"] = first["DSM5_symptom"]
    what = f"post {first['post_id']!r}, sentence {first['sentence_id'] or first['sentence_text']!r}, {ids['symptom']}"
    fixes = []
    keep = rows
    if len({ann["status"] for _, ann in rows}) > 1:
        keep = [row for row in rows if row[1]["status"] == 1]
        fixes.append(_contradiction(rows, keep, what, ids))
    if len(keep) > 1:
        fixes.append(_repeat(keep, what, ids))
        explanations = dict.fromkeys(ann["explanation"] for _, ann in keep if ann["explanation"].strip())
        keep = [(keep[0][0], {**keep[0][1], "explanation": EXPLANATION_SEPARATOR.join(explanations)})]
    return keep[0], fixes


def _contradiction(rows: list[tuple[int, dict]], keep: list[tuple[int, dict]], what: str, ids: dict) -> Fix:
    (first_line, first), dropped = rows[0], [line for line, ann in rows if ann["status"] == 0]
    line, status = next((line, ann["status"]) for line, ann in rows if ann["status"] != first["status"])
    return Fix(
        kind="contradicting_status",
        line=line,
        lines=tuple(line for line, _ in rows),
        problem=f"{what} has status {status} at line {line} but {first['status']} at line {first_line}: the rows "
        "contradict each other",
        action=f"status 1 kept ({_lines(line for line, _ in keep)}), the status-0 row(s) at {_lines(dropped)} "
        "dropped: any status-1 row makes the post positive (the ReDSM5 authors' counting rule)",
        **ids,
    )


def _repeat(keep: list[tuple[int, dict]], what: str, ids: dict) -> Fix:
    (first_line, first), repeats = keep[0], keep[1:]
    other = [line for line, ann in repeats if ann["explanation"] != first["explanation"]]
    same = [line for line, ann in repeats if ann["explanation"] == first["explanation"]]
    how = []
    if other:
        how.append(f"{_lines(other)} with another explanation")
    if same:
        how.append(f"{_lines(same)} the same row again")
    n_explanations = len({ann["explanation"] for _, ann in keep if ann["explanation"].strip()})
    action = f"used once (line {first_line})"
    if n_explanations > 1:
        action += f", its {n_explanations} distinct explanations all kept (joined by a blank line)"
    return Fix(
        kind="repeated_row",
        line=repeats[0][0],
        lines=tuple(line for line, _ in keep),
        problem=f"{what} with status {first['status']} at line {first_line} is repeated at "
        f"{_lines(line for line, _ in repeats)} ({'; '.join(how)})",
        action=action,
        **ids,
    )


def _warn_fixes(path: Path, fixes: list[Fix]) -> None:
    """One warning per repaired misspelling or contradiction, one for all repeated rows (they can be many)."""
    tail = "listed in the data card's fixes; data.strict: true refuses the file instead"
    for fix in fixes:
        if fix.kind != "repeated_row":
            log.warning(
                "%s: line %d, column %r: %s; %s (%s)", path, fix.line, fix.column, fix.problem, fix.action, tail
            )
    repeats = [f for f in fixes if f.kind == "repeated_row"]
    if repeats:
        lines = sorted(line for f in repeats for line in f.lines[1:])
        more = f" and {len(lines) - 10} more" if len(lines) > 10 else ""
        log.warning(
            "%s: %d duplicate annotation row(s) (post_id, sentence_id, sentence_text, DSM5_symptom and status equal "
            "to an earlier row) at line(s) %s%s; each is used once, and when the repeats differ in their "
            "explanation all the distinct explanations are kept, joined by a blank line (%s)",
            path,
            len(lines),
            ", ".join(map(str, lines[:10])),
            more,
            tail,
        )


def _strict_error(path: Path, fix: Fix, n_fixes: int) -> DataError:
    others = f" ({n_fixes - 1} more known defect(s) after it)" if n_fixes > 1 else ""
    return DataError(
        f"{path}: line {fix.line}, column {fix.column!r}: {fix.problem}{others}. data.strict is true, so known "
        f"defects of the data are refused instead of repaired. Fix: correct the file, or set data.strict: false "
        f"and the loader repairs it ({fix.action}) with a warning and an entry in the data card's fixes"
    )


def add_post(posts: list, seen: dict, post_id: Any, text: Any, where: str, max_post_chars: int | None) -> None:
    """Append one checked post; ``max_post_chars`` None accepts any length."""
    pid = "" if post_id is None else str(post_id).strip()
    if not pid:
        raise DataError(f"{where}, column 'post_id': empty post_id; give every post a unique id")
    if pid in seen:
        raise DataError(
            f"{where}, column 'post_id': duplicate post_id {pid!r} (first at {seen[pid]}); each post "
            "must appear once - remove the duplicate row or give it another id"
        )
    if text is None or not isinstance(text, str) or not text.strip():
        raise DataError(
            f"{where}, column 'text': post {pid!r} has empty text; fill in the post's text or "
            "remove the row (and its annotations)"
        )
    if max_post_chars is not None and len(text) > max_post_chars:
        raise DataError(
            f"{where}, column 'text': post {pid!r} has {len(text)} characters, more than "
            f"data.max_post_chars = {max_post_chars}. Policy: over-long posts are rejected, not "
            "truncated (the encoder's max_length and training.long_posts decide how a long post is "
            "read later); raise data.max_post_chars in the config, set it to null for no limit, or "
            "shorten or remove the post"
        )
    seen[pid] = where
    posts.append({"post_id": pid, "text": text})


def _annotation(row: dict, where: str, known_posts: dict, posts_name: str) -> dict:
    pid = str(row.get("post_id", "") or "").strip()
    if pid not in known_posts:
        raise DataError(
            f"{where}, column 'post_id': annotation refers to post {pid!r}, which is not in "
            f"{posts_name}; add the post or remove the annotation row"
        )
    symptom = str(row.get("DSM5_symptom", "") or "").strip()
    if symptom not in ALLOWED_LABELS:
        close = difflib.get_close_matches(symptom.upper(), ALLOWED_LABELS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise DataError(
            f"{where}, column 'DSM5_symptom': unknown symptom {symptom!r}{hint}; allowed: "
            f"{', '.join(ALLOWED_LABELS)} (SPECIAL_CASE is kept out of the nine labels)"
        )
    status_raw = row.get("status", "")
    status = _status(status_raw)
    if status is None:
        raise DataError(
            f"{where}, column 'status': {status_raw!r} is not a valid status; use 1 (the sentence "
            "shows the symptom) or 0 (considered and rejected)"
        )
    sentence = row.get("sentence_text")
    sentence = "" if sentence is None else str(sentence)
    sid = row.get("sentence_id")
    return {
        "post_id": pid,
        "sentence_id": "" if sid is None else str(sid).strip(),
        "sentence_text": sentence,
        "DSM5_symptom": symptom,
        "status": status,
        "explanation": "" if row.get("explanation") is None else str(row.get("explanation")),
    }


def _status(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value) if value in (0, 1) else None
    text = str(value).strip()
    if text in ("0", "1"):
        return int(text)
    if text in ("0.0", "1.0"):
        return int(float(text))
    return None


# ---------------------------------------------------------------------------------- split folders


def _split_file_map(folder: Path) -> dict[str, list[Path]]:
    """The data files datasets.load_dataset gives each split (its own patterns, its order)."""
    try:
        from datasets.data_files import DataFilesDict, get_data_patterns

        found = DataFilesDict.from_patterns(get_data_patterns(str(folder)), base_path=str(folder))
    except Exception:
        return {}

    def keep(f: Path) -> bool:
        return f.suffix.lower() in DATA_SUFFIXES and not any(p.startswith(".") for p in f.relative_to(folder).parts)

    return {str(k): [Path(str(f)) for f in v if keep(Path(str(f)))] for k, v in found.items()}


def check_split_file(path: Path) -> tuple[list[str] | None, list[str] | None]:
    """Checks datasets does not make with a location (empty, UTF-8, CSV/JSON syntax, header).

    Returns (the location of each row, e.g. ``file: line 3``, or None; the CSV header or None)."""
    suffix = path.suffix.lower()
    header = None
    if suffix not in (".csv", ".json", ".jsonl"):
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty (0 bytes); re-export it or remove it from the folder")
        if suffix != ".parquet":
            return None, None
        try:
            import pyarrow.parquet as pq

            n_rows = pq.ParquetFile(path).metadata.num_rows
        except Exception as exc:
            raise DataError(
                f"{path}: not a readable Parquet file ({type(exc).__name__}: {_scrub(exc)}); re-export it"
            ) from None
        locs = [f"{path}: row {i}" for i in range(1, n_rows + 1)]
    elif suffix == ".csv":
        header, rows = read_csv(path, POSTS_REQUIRED)
        locs = [f"{path}: line {n}" for n, _ in rows]
    else:
        text = decode_text(path)
        if text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}); fix "
                    "the syntax, or write one JSON object per line (JSON Lines)"
                ) from None
            locs = [f"{path}: item {i}" for i in range(1, len(items) + 1)]
        else:
            locs = []
            for n, line in enumerate(text.split("\n"), start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"{path}: line {n}, column {exc.colno}: not valid JSON ({exc.msg}); write one "
                        'JSON object per line, e.g. {"post_id": "p1", "text": "..."}'
                    ) from None
                if not isinstance(obj, dict):
                    raise DataError(
                        f"{path}: line {n}: expected a JSON object per line, got "
                        f"{type(obj).__name__}; write one object per line with post_id and text"
                    )
                locs.append(f"{path}: line {n}")
    if not locs:
        raise DataError(
            f"{path}: {'has a header but ' if header else ''}no rows; add one row per post, or remove "
            "the file (a folder needs train.*, and optionally validation.* and test.*)"
        )
    return locs, header


def _load_split_folder(folder: Path, max_post_chars: int | None) -> RawData:
    files = data_files(folder)
    if not files:
        raise DataError(
            f"{folder}: no data files; expected posts.csv + annotations.csv (ReDSM5 format) or "
            "train/validation/test files (CSV, JSONL or Parquet) that datasets.load_dataset reads"
        )
    split_files = _split_file_map(folder)
    locations: dict[str, list[str] | None] = {}
    headers: dict[Path, list[str]] = {}
    for split, paths in split_files.items():
        locs: list[str] | None = []
        for path in paths:
            rows, header = check_split_file(path)
            locs = None if rows is None or locs is None else locs + rows
            if header is not None:
                headers[path] = header
        locations[split] = locs
    kwargs: dict = {}
    all_paths = [p for ps in split_files.values() for p in ps]
    if all_paths and len(headers) == len(all_paths):  # CSV only: read every value as the exact string
        (first, cols), *rest = headers.items()
        for path, other in rest:
            if other != cols:
                raise DataError(
                    f"{path}: line 1 (header): columns {', '.join(other)} differ from {first}'s "
                    f"{', '.join(cols)}; give every split file the same columns"
                )
        import datasets

        kwargs = {"features": datasets.Features({c: datasets.Value("string") for c in cols}), "keep_default_na": False}
    try:
        import datasets
        from datasets.utils import logging as ds_logging

        ds_logging.disable_progress_bar()
        ds_logging.set_verbosity_error()
        with tempfile.TemporaryDirectory(prefix="redsm5_ds_") as cache:
            dd = datasets.load_dataset(str(folder), cache_dir=cache, **kwargs)
            splits = {name: dd[name].to_list() for name in dd}
            columns = {name: list(dd[name].column_names) for name in dd}
    except DataError:
        raise
    except Exception as exc:
        raise DataError(
            f"{folder}: datasets.load_dataset could not read the folder ({type(exc).__name__}: "
            f"{_scrub(exc)}). Provide posts.csv + annotations.csv (ReDSM5 format), or split files "
            "named train.*, validation.*, test.* with the same columns"
        ) from None
    names = sorted(splits)
    unknown = [n for n in names if n not in SPLIT_NAMES]
    if unknown or "train" not in names or (set(names) != {"train"} and set(names) != set(SPLIT_NAMES)):
        raise DataError(
            f"{folder}: found split(s) {', '.join(names)}; required: train, validation and test "
            "(or train alone, and the pipeline splits it). Name the files train.*, validation.* "
            "and test.*"
        )
    posts: list[dict] = []
    annotations: list[dict] = []
    seen: dict[str, str] = {}
    split_of: dict[str, str] = {}
    given: dict[str, list[str]] = {}
    for split in [s for s in SPLIT_NAMES if s in splits]:
        label = ", ".join(map(str, split_files.get(split, []))) or str(folder)
        if not splits[split]:
            raise DataError(f"{label}: split {split!r} has no rows; add its posts or remove the file")
        mode = _split_columns(label, split, columns[split])
        locs = locations.get(split)
        locs = locs if locs and len(locs) == len(splits[split]) else None
        given[split] = []
        for i, row in enumerate(splits[split], start=1):
            where = f"{locs[i - 1]} (split {split!r})" if locs else f"{label}: split {split!r} row {i}"
            pid = "" if row.get("post_id") is None else str(row.get("post_id")).strip()
            if pid in split_of and split_of[pid] != split:
                raise DataError(
                    f"{where}, column 'post_id': post {pid!r} is in split {split_of[pid]!r} "
                    f"({seen[pid]}) and in split {split!r}; splits must be disjoint - remove it from "
                    "one of them"
                )
            add_post(posts, seen, row.get("post_id"), row.get("text"), where, max_post_chars)
            split_of[pid] = split
            given[split].append(pid)
            annotations.extend(_split_row_annotations(row, mode, pid, where))
    return RawData(
        posts=posts,
        annotations=annotations,
        given_splits=given if len(given) == 3 else None,
        origin=str(folder),
        layout="split_folder",
        files=[str(p) for p in files],
    )


def _split_columns(folder, split: str, cols: list[str]) -> str:
    missing = [c for c in POSTS_REQUIRED if c not in cols]
    has_symptoms = [s for s in SYMPTOMS if s in cols]
    if missing:
        raise DataError(
            f"{folder}: split {split!r}: missing required column(s) {', '.join(missing)}; found "
            f"columns {', '.join(cols)}; required: post_id, text and either the nine symptom columns "
            "or an 'annotations' column"
        )
    if "annotations" in cols:
        return "annotations"
    if len(has_symptoms) == len(SYMPTOMS):
        return "symptoms"
    if has_symptoms:
        absent = [s for s in SYMPTOMS if s not in cols]
        raise DataError(
            f"{folder}: split {split!r}: symptom column(s) {', '.join(absent)} missing; found columns "
            f"{', '.join(cols)}; add all nine symptom columns (0/1): {', '.join(SYMPTOMS)}"
        )
    raise DataError(
        f"{folder}: split {split!r}: no label columns; found columns {', '.join(cols)}; add either the "
        f"nine symptom columns (0/1: {', '.join(SYMPTOMS)}) or an 'annotations' column (a list of "
        "{sentence_text, DSM5_symptom, status} objects)"
    )


def _as_list(value: Any, where: str, column: str) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{where}, column {column!r}: not valid JSON ({exc.msg} at character {exc.pos + 1}); "
                "write a JSON list of objects"
            ) from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DataError(f"{where}, column {column!r}: expected a list of objects, got {type(value).__name__}")
    return value


def _split_row_annotations(row: dict, mode: str, pid: str, where: str) -> list[dict]:
    out = []
    if mode == "annotations":
        for k, item in enumerate(_as_list(row.get("annotations"), where, "annotations"), start=1):
            item = dict(item)
            item["post_id"] = pid
            item.setdefault("sentence_id", f"{pid}_a{k}")
            out.append(_annotation(item, f"{where}, annotation {k}", {pid: where}, "this split"))
        return out
    evidence = _as_list(row.get("evidence"), where, "evidence")
    by_symptom: dict[str, list[dict]] = {}
    for k, item in enumerate(evidence, start=1):
        sym = str(item.get("symptom", item.get("DSM5_symptom", "")) or "").strip()
        if sym not in SYMPTOMS:
            raise DataError(
                f"{where}, column 'evidence', item {k}: unknown symptom {sym!r}; allowed: {', '.join(SYMPTOMS)}"
            )
        by_symptom.setdefault(sym, []).append(item)
    for sym in SYMPTOMS:
        value = _status(row.get(sym))
        if value is None:
            raise DataError(
                f"{where}, column {sym!r}: {row.get(sym)!r} is not 0 or 1; mark each symptom 1 (present) or 0 (absent)"
            )
        items = by_symptom.get(sym, [])
        if items and not value:
            raise DataError(
                f"{where}, column 'evidence': evidence for {sym} but column {sym} is 0; set it to 1 "
                "or remove the evidence"
            )
        if value and not items:
            out.append(
                {
                    "post_id": pid,
                    "sentence_id": "",
                    "sentence_text": "",
                    "DSM5_symptom": sym,
                    "status": 1,
                    "explanation": "",
                }
            )
        for k, item in enumerate(items, start=1):
            out.append(
                {
                    "post_id": pid,
                    "sentence_id": str(item.get("sentence_id") or f"{pid}_{sym}_{k}"),
                    "sentence_text": str(item.get("sentence_text") or ""),
                    "DSM5_symptom": sym,
                    "status": 1,
                    "explanation": str(item.get("explanation") or ""),
                }
            )
    return out

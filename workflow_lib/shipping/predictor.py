"""Predict the nine symptoms (and evidence spans) of posts with a trained model: the library.

One predictor serves the ``redsm5-predict`` command (workflow_lib/shipping/cli.py), the ``predict_posts``
rule (workflow_lib/pipeline/stages.py ``predict_posts``) and the MLflow pyfunc model
(workflow_lib/shipping/mlflow_model.py)::

    redsm5-predict results/final/<final_key>/model posts.csv -o predictions.jsonl
    redsm5-predict models:/redsm5-symptoms@champion posts.jsonl -o predictions.csv

``Predictor.load`` takes a model folder (``results/final/<key>/model`` or ``results/refit/<key>/model``),
the stage folder holding ``model/``, or an MLflow model URI (``models:/<name>@<alias>``,
``models:/<name>/<version>``, ``runs:/<run_id>/model``), which is downloaded and whose pyfunc artifact
``model`` is the model folder. Every model folder is verified against its manifest before loading.

Prediction runs through the final stage's own test-evaluation call, ``workflow_lib.learning.inference.predict``
(same tokenisation, batching, eval mode, evidence decoding), on the model's ``eval_batch_size``
unless a batch size is given. Inputs of up to ``CHUNK_POSTS`` posts (and any input with
``chunk_size=None``) are one such call, so their probabilities are bit-identical to the final stage's
on the same posts; larger inputs are cut into chunks of ``CHUNK_POSTS`` posts to bound memory, one
call each. The progress bar counts posts after every model batch. Results are the same on every run
with the same thread count.

Posts are read by ``read_posts`` (CSV, JSONL or standard input) and rows written by
``write_predictions`` (JSONL or flat CSV); ``predict_file`` does all three steps.

Rows (one per post, in input order)::

    {"post_id", "probabilities": {SYMPTOM: p} (all nine, SYMPTOMS order), "decisions": {SYMPTOM: 0|1},
     "predicted": [SYMPTOM, ...], "threshold": "tuned" | float,
     "evidence": {SYMPTOM: [{"start", "end", "text"(, "score")}, ...]}, "evidence_scope": "symptom" | "post",
     ("evidence_threshold": float,) "final_key", "code_version"}

A label is decided present when its probability is >= its threshold (as in workflow_lib.learning.metrics):
the per-symptom thresholds the final stage chose (checkpoint.json ``meta.thresholds``), or one
``threshold`` for all. ``evidence`` and ``evidence_scope`` are only there for a model that marks
evidence, with one entry per predicted symptom (in ``predicted`` order):

- the sentence model (training.criteria_from: sentences): every sentence gets nine probabilities and a
  predicted symptom's evidence is its sentences whose probability is >= the evidence threshold, else its
  single most probable sentence, each with its ``score`` (that probability); scope ``symptom``.
  ``evidence_threshold`` is the threshold used: checkpoint.json ``meta.evidence_threshold`` (chosen by
  the final stage; a checkpoint without one falls back to training.evidence_threshold, with a warning);
- span heads (training.evidence_task): a binary_pairs model decodes spans per (post, symptom) row (scope
  ``symptom``); a multi_label evidence head is symptom-agnostic, so every predicted symptom gets the
  post's spans (scope ``post``); no scores.

Offsets are character offsets into the post text (``text == post[start:end]``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from workflow_lib.config import Training
from workflow_lib.config.schema import load_schema
from workflow_lib.data.loader import DataError, add_post, check_split_file, decode_text, read_csv
from workflow_lib.devices import configure_threads
from workflow_lib.learning.checkpoint import CheckpointError, load_checkpoint
from workflow_lib.persistence.reports import atomic_write_text
from workflow_lib.provenance import code_version
from workflow_lib.symptoms import SYMPTOMS
from workflow_lib.tracking.tracker import redact_uri, store_uri

log = logging.getLogger(__name__)

CHUNK_POSTS = 8192  # posts per inference.predict call (bounds the memory of the tokenised rows)
DEFAULT_THRESHOLD = 0.5  # for a model whose checkpoint has no tuned thresholds
URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")  # models:/..., runs:/..., s3://, mlflow-artifacts:/
SUFFIXES = (".jsonl", ".csv")  # what write_predictions writes
STDIN = "-"


class PredictError(ValueError):
    """A problem with the model argument, the input posts or the output path; the message says the fix."""


# ---------------------------------------------------------------------------------------------- loading


def default_tracking_uri(tracking_uri: str | None = None) -> str | None:
    """The store a pipeline run in this working directory logs to (tracking.tracking_uri with the
    schema's default results_dir): ``tracking_uri``, else $MLFLOW_TRACKING_URI, else its SQLite file
    when that exists, else None."""
    results_dir = load_schema("config")["properties"]["results_dir"]["default"]
    uri = store_uri(tracking_uri, results_dir)
    if tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    return uri if Path(uri.removeprefix("sqlite:///")).is_file() else None


def is_mlflow_uri(model: str | Path) -> bool:
    """True for an MLflow model URI (``models:/...``, ``runs:/...``, any ``scheme:/``) that is not a path."""
    return isinstance(model, str) and bool(URI_RE.match(model)) and not Path(model).exists()


def _registered_models(client) -> str:
    """'name (aliases: a -> v2; versions: 1, 2), ...' of every registered model in the store."""
    parts = []
    for rm in client.search_registered_models(max_results=50):
        aliases = getattr(rm, "aliases", None) or {}
        versions = sorted({int(v.version) for v in client.search_model_versions(f"name='{rm.name}'")})
        alias_txt = "; ".join(f"@{a} -> v{v}" for a, v in sorted(aliases.items())) or "no aliases"
        parts.append(f"{rm.name} ({alias_txt}; versions {', '.join(map(str, versions)) or 'none'})")
    return ", ".join(parts)


def _unresolved(uri: str, store: str, exc: BaseException) -> PredictError:
    detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    try:
        from mlflow import MlflowClient

        found = _registered_models(MlflowClient(tracking_uri=store, registry_uri=store))
        there = (
            f"registered models in that store: {found}. Fix: use models:/<name>@<alias> or "
            f"models:/<name>/<version> with a name and alias or version listed there, or point"
            if found
            else "that store has no registered models (the final stage registers the selected model). Fix: run "
            "the pipeline through its final stage, or point"
        )
    except Exception as list_exc:
        there = f"the store could not be listed either ({type(list_exc).__name__}: {str(list_exc)[:200]}). Fix: point"
    return PredictError(
        f"MLflow model {uri!r} could not be resolved in the tracking store {redact_uri(store)} "
        f"({type(exc).__name__}: {detail}); {there} --tracking-uri (or MLFLOW_TRACKING_URI) at "
        f"the store the pipeline logged to (default sqlite:///<project>/results/mlflow.db)"
    )


@contextlib.contextmanager
def _mlflow_store(uri: str) -> Iterator[None]:
    """MLflow's process-wide tracking and registry URIs set to ``uri`` for the block, then restored.

    download_artifacts looks a models:/ name up in the process-wide registry whatever registry_uri
    it is given (mlflow 3.x ModelsArtifactRepository._get_model_uri_infos), so that is set too."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = (tracking._tracking_uri, registry._registry_uri, {n: os.environ.get(n) for n in names})
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        tracking.set_tracking_uri(saved[0])
        registry._registry_uri = saved[1]
        for name, value in saved[2].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _downloaded(uri: str, tracking_uri: str | None) -> Iterator[Path]:
    """The model folder of an MLflow model URI, downloaded into a temporary folder for the block."""
    store = default_tracking_uri(tracking_uri)
    if store is None:
        raise PredictError(
            f"{uri!r} is an MLflow model URI but no tracking store is given and there is no "
            f"results/mlflow.db here; pass --tracking-uri sqlite:///<project>/results/mlflow.db "
            f"(or an http:// server), or set MLFLOW_TRACKING_URI"
        )
    if store.startswith("sqlite:///") and not Path(store[len("sqlite:///") :]).is_file():
        raise PredictError(
            f"tracking store {store} does not exist (no such SQLite file), so {uri!r} cannot be "
            f"resolved; pass --tracking-uri with the path of the pipeline's results/mlflow.db"
        )
    import mlflow.artifacts

    tmp = Path(tempfile.mkdtemp(prefix="redsm5-model-"))
    try:
        try:
            with _mlflow_store(store):
                local = Path(
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=uri, dst_path=str(tmp), tracking_uri=store, registry_uri=store
                    )
                )
        except Exception as exc:
            raise _unresolved(uri, store, exc) from None
        folder = next((c for c in (local, local / "artifacts" / "model") if (c / "manifest.json").is_file()), None)
        if folder is None:
            found = ", ".join(sorted(p.name for p in local.iterdir())) if local.is_dir() else "a single file"
            raise PredictError(
                f"MLflow model {uri!r} (store {store}) holds no pipeline model folder: expected the "
                f"pyfunc artifact 'model' (artifacts/model/manifest.json), found {found}; point the "
                f"URI at a model the final stage logged (models:/<name>@<alias>)"
            )
        yield folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def model_folder(model: str | Path) -> Path:
    """The checkpoint folder of a local model argument: the folder itself (it holds manifest.json), a
    stage folder holding ``model/``, or a downloaded pyfunc model (``artifacts/model``)."""
    root = Path(model)
    if not root.exists():
        raise PredictError(
            f"model {str(model)!r} does not exist; pass a model folder (results/final/<final_key>/"
            f"model), its stage folder (results/final/<final_key>) or an MLflow model URI "
            f"(models:/redsm5-symptoms@champion)"
        )
    for cand in (root, root / "model", root / "artifacts" / "model"):
        if (cand / "manifest.json").is_file() or (cand / "checkpoint.json").is_file():
            return cand
    raise PredictError(
        f"{root}: not a model folder (no manifest.json, no model/ inside); pass results/final/"
        f"<final_key>/model (or results/refit/<refit_key>/model), or the stage folder holding it"
    )


def _stored_code_version(folder: Path) -> str:
    for name in ("manifest.json", "checkpoint.json"):
        try:
            return str(json.loads((folder / name).read_text(encoding="utf-8"))["code_version"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return "unknown"


def _load_checkpoint(folder: Path):
    """checkpoint.load_checkpoint; its error also names the code version that wrote the model."""
    try:
        return load_checkpoint(folder)
    except CheckpointError as exc:
        msg = str(exc)
        if "code_version" not in msg:
            msg += f" (model written by code_version {_stored_code_version(folder)}; this code is {code_version()})"
        raise CheckpointError(msg) from None


def _thresholds(info: Mapping, where: str) -> dict[str, float]:
    stored = (info.get("meta") or {}).get("thresholds")
    if not stored:
        log.warning(
            "%s: the checkpoint has no tuned thresholds (meta.thresholds); deciding every symptom at %g",
            where,
            DEFAULT_THRESHOLD,
        )
        return dict.fromkeys(SYMPTOMS, DEFAULT_THRESHOLD)
    missing = [s for s in SYMPTOMS if s not in stored]
    if missing:
        log.warning(
            "%s: meta.thresholds has no value for %s; using %g for them", where, ", ".join(missing), DEFAULT_THRESHOLD
        )
    return {s: float(stored.get(s, DEFAULT_THRESHOLD)) for s in SYMPTOMS}


def _evidence_threshold(info: Mapping, where: str) -> float | None:
    """The sentence model's evidence threshold (checkpoint.json ``meta.evidence_threshold``; without one
    training.evidence_threshold, with a warning); None for any other model (span heads decode at
    training.evidence_threshold, inference.predict's default)."""
    train_cfg: Training = info["train_cfg"]
    if train_cfg.criteria_from != "sentences":
        return None
    stored = (info.get("meta") or {}).get("evidence_threshold")
    if stored is None:
        log.warning(
            "%s: the sentence model's checkpoint has no evidence threshold (meta.evidence_threshold); marking "
            "evidence at training.evidence_threshold %g",
            where,
            train_cfg.evidence_threshold,
        )
        return train_cfg.evidence_threshold
    if isinstance(stored, bool) or not isinstance(stored, (int, float)) or not 0.0 <= stored <= 1.0:
        raise PredictError(
            f"{where}: checkpoint.json meta.evidence_threshold is {stored!r}, not a probability in [0, 1]; "
            "rebuild the model folder with the final stage (it writes the chosen evidence threshold)"
        )
    return float(stored)


def post_records(posts: Sequence[Mapping]) -> list[dict]:
    """Posts ``[{"post_id", "text"}]`` as the records inference.predict reads (no labels, no evidence)."""
    records = []
    for i, post in enumerate(posts):
        text = post.get("text") if isinstance(post, Mapping) else None
        pid = post.get("post_id", i) if isinstance(post, Mapping) else None
        if not isinstance(text, str) or not text.strip():
            raise PredictError(
                f"post {i} (post_id {pid!r}): 'text' must be a non-empty string, got "
                f"{type(text).__name__}; give every post a post_id and its text"
            )
        records.append({"post_id": str(pid), "text": text, "labels": [0] * len(SYMPTOMS), "evidence": []})
    return records


class Predictor:
    """A loaded model with its tokenizer, training config and tuned thresholds (see the module docstring)."""

    def __init__(self, model, tokenizer, info: Mapping, *, source: str, threads: int | None = None):
        """``info``: load_checkpoint's, its ``train_cfg`` a Training and ``backbone_spec`` an Encoder."""
        self.model, self.tokenizer, self.info, self.source = model, tokenizer, dict(info), source
        self.train_cfg: Training = info["train_cfg"]
        meta = info.get("meta") or {}
        self.final_key: str | None = meta.get("final_key")
        self.code_version: str = str(info.get("code_version", "unknown"))
        self.thresholds: dict[str, float] = _thresholds(info, source)
        self.evidence_threshold: float | None = _evidence_threshold(info, source)  # sentence model only
        self.has_evidence: bool = self.evidence_threshold is not None or (
            self.train_cfg.evidence_task and model.evidence_head is not None
        )
        self.input_format: str = self.train_cfg.input_format
        self.max_length: int = info["backbone_spec"].max_length
        self.manifest_sha256: str | None = info.get("manifest_sha256")
        self.threads = configure_threads(threads)

    @classmethod
    def load(cls, model: str | Path, *, tracking_uri: str | None = None, threads: int | None = None) -> Predictor:
        """Load (and verify) a model folder, a stage folder holding ``model/`` or an MLflow model URI."""
        if is_mlflow_uri(model):
            with _downloaded(str(model), tracking_uri) as folder:
                net, tok, info = _load_checkpoint(folder)  # everything is in memory afterwards
        else:
            net, tok, info = _load_checkpoint(model_folder(model))
        if info.get("code_version") != code_version():
            log.warning(
                "%s: model written by code_version %s, this code is %s; it verified and loaded, so predicting with it",
                model,
                info.get("code_version"),
                code_version(),
            )
        import torch

        if torch.cuda.is_available():
            net.to("cuda")
        return cls(net, tok, info, source=str(model), threads=threads)

    # ------------------------------------------------------------------------------------------ predict

    def _rows_per_post(self) -> int:
        return len(SYMPTOMS) if self.input_format == "binary_pairs" else 1

    def predict(
        self,
        posts: Sequence[Mapping],
        *,
        threshold: float | None = None,
        batch_size: int | None = None,
        progress: bool = True,
        chunk_size: int | None = CHUNK_POSTS,
    ) -> list[dict]:
        """One row per post (module docstring), in input order. ``threshold`` replaces the tuned ones;
        ``chunk_size`` posts per inference.predict call (None: one call for every post)."""
        import numpy as np

        from workflow_lib.learning.inference import predict as run_predict

        if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
            raise PredictError(f"threshold {threshold!r} is outside [0, 1]; pass a probability such as 0.5")
        if batch_size is not None and int(batch_size) < 1:
            raise PredictError(f"batch size {batch_size!r} must be at least 1")
        records = post_records(posts)
        thr = np.asarray(
            [float(threshold)] * len(SYMPTOMS) if threshold is not None else [self.thresholds[s] for s in SYMPTOMS],
            dtype=np.float64,
        )
        step = len(records) if not chunk_size else max(1, int(chunk_size))
        per_post = self._rows_per_post()
        bar = tqdm(
            total=len(records),
            desc="predict",
            unit="post",
            file=sys.stderr,
            disable=not progress,
            mininterval=1.0,
            dynamic_ncols=True,
            leave=False,
        )

        def advance(_module, _args, out) -> None:  # a forward hook must return None: a value replaces the output
            bar.update(min(out["criteria"].shape[0] / per_post, bar.total - bar.n))

        hook = self.model.register_forward_hook(advance)
        rows: list[dict] = []
        try:
            for start in range(0, len(records), step):
                chunk = records[start : start + step]
                pred = run_predict(
                    self.model,
                    self.tokenizer,
                    chunk,
                    self.train_cfg,
                    max_length=self.max_length,
                    batch_size=batch_size,
                    evidence_threshold=self.evidence_threshold,
                )
                rows += self._rows(chunk, pred, thr, "tuned" if threshold is None else float(threshold))
                bar.n = start + len(chunk)
                bar.refresh()
        finally:
            hook.remove()
            bar.close()
        return rows

    def _rows(self, records: list[dict], pred, thr, threshold_label) -> list[dict]:
        rows = prediction_rows(records, pred, thr, self.input_format, threshold_label)
        for row in rows:
            row["final_key"] = self.final_key
            row["code_version"] = self.code_version
        return rows


def span_rows(text: str, spans) -> list[dict]:
    """Character spans as ``{"start", "end", "text"}`` rows."""
    return [{"start": int(a), "end": int(b), "text": text[int(a) : int(b)]} for a, b in spans]


def _span_evidence(records: Sequence[Mapping], pred, input_format: str) -> list[dict[str, list[dict]]]:
    """Per post, the span heads' evidence of every symptom: its row's spans (binary_pairs) or the post's."""
    per_symptom = input_format == "binary_pairs"
    return [
        {
            s: span_rows(rec["text"], pred.spans[i * len(SYMPTOMS) + j if per_symptom else i])
            for j, s in enumerate(SYMPTOMS)
        }
        for i, rec in enumerate(records)
    ]


def prediction_rows(
    records: Sequence[Mapping], pred, thresholds, input_format: str, threshold_label: str | float = "tuned"
) -> list[dict]:
    """The one row builder (redsm5-predict, the pyfunc model, the final stage's test_predictions):
    probabilities, decisions at ``thresholds`` (p >= t), the predicted symptoms and, when ``pred`` marks
    evidence, that of each predicted symptom: the sentence model's scored sentences (``pred.evidence`` at
    the prediction's evidence threshold, also given as ``evidence_threshold``; scope "symptom"), or the span
    heads' spans (scope "symptom" for binary_pairs rows, "post" for the symptom-agnostic multi_label head)."""
    import numpy as np

    probs = np.asarray(pred.probs)
    thr = np.asarray(thresholds, dtype=np.float64)
    decided = probs >= thr[None, :]
    sentences = pred.sentence_probs is not None
    if sentences:
        evidence = pred.evidence(thr)
    elif pred.spans is not None:
        evidence = _span_evidence(records, pred, input_format)
    else:
        evidence = None
    rows = []
    for i, rec in enumerate(records):
        decisions = {s: int(decided[i, j]) for j, s in enumerate(SYMPTOMS)}
        row = {
            "post_id": rec["post_id"],
            "probabilities": {s: float(probs[i, j]) for j, s in enumerate(SYMPTOMS)},
            "decisions": decisions,
            "predicted": [s for s in SYMPTOMS if decisions[s]],
            "threshold": threshold_label,
        }
        if evidence is not None:
            row["evidence"] = {s: evidence[i].get(s, []) for s in row["predicted"]}
            row["evidence_scope"] = pred.evidence_scope
        if sentences:
            row["evidence_threshold"] = float(pred.evidence_threshold)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------- input


class _Stdin:
    """Standard input in the shape data.loader.decode_text reads (read_bytes, suffix, a name in messages)."""

    suffix = ""

    def read_bytes(self) -> bytes:
        return sys.stdin.buffer.read()

    def __str__(self) -> str:
        return "<stdin>"


def read_posts(path: str | Path) -> list[dict]:
    """``[{"post_id", "text"}]`` from ReDSM5's posts.csv, any CSV or JSONL (also a JSON list) with
    ``post_id`` and ``text`` (other columns are ignored), or ``-``: standard input, one post per line,
    the 1-based line number as post_id. A problem raises data.loader.DataError naming the file, the
    line and the fix (the loader's own checks: empty file, UTF-8, CSV syntax and header, empty text,
    duplicate post_id)."""
    posts: list[dict] = []
    seen: dict[str, str] = {}
    no_limit = None  # a post is never rejected for its length here; the model reads it by its long_posts policy
    if str(path) == STDIN:
        text = decode_text(_Stdin())
        for n, line in enumerate(text.splitlines(), start=1):
            add_post(posts, seen, str(n), line, f"<stdin>: line {n}", no_limit)
        return posts
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: no such file; pass a CSV or JSONL file with post_id and text columns, "
            f"or - to read one post per line from standard input"
        )
    suffix = path.suffix.lower()
    if suffix == ".csv":
        _, rows = read_csv(path, ("post_id", "text"))
        if not rows:
            raise DataError(f"{path}: has a header but no posts (line 2 onwards is empty); add one row per post")
        for line, row in rows:
            add_post(posts, seen, row.get("post_id"), row.get("text"), f"{path}: line {line}", no_limit)
        return posts
    if suffix in (".jsonl", ".json"):
        locations, _ = check_split_file(path)  # syntax checked here, each object's location
        text = decode_text(path)
        items = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(line) for line in text.split("\n") if line.strip()]
        )
        for where, item in zip(locations, items):
            if not isinstance(item, dict):
                raise DataError(f"{where}: expected a JSON object with post_id and text, got {type(item).__name__}")
            missing = [k for k in ("post_id", "text") if k not in item]
            if missing:
                raise DataError(
                    f"{where}: missing key(s) {', '.join(missing)}; found keys "
                    f"{', '.join(map(str, item)) or '(none)'}; every object needs post_id and text, "
                    'e.g. {"post_id": "p1", "text": "..."}'
                )
            add_post(posts, seen, item["post_id"], item["text"], where, no_limit)
        return posts
    raise DataError(
        f"{path}: unknown input type {path.suffix or '(no suffix)'!r}; pass a .csv or .jsonl file "
        f"with post_id and text (or - for one post per line on standard input)"
    )


# ---------------------------------------------------------------------------------------------- output


def csv_header() -> list[str]:
    return (
        ["post_id"]
        + [f"p_{s}" for s in SYMPTOMS]
        + [f"y_{s}" for s in SYMPTOMS]
        + ["evidence", "final_key", "code_version"]
    )


def _csv_text(rows: Sequence[Mapping]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(csv_header())
    for r in rows:
        evidence = json.dumps(r["evidence"], ensure_ascii=False, sort_keys=True) if "evidence" in r else ""
        writer.writerow(
            [r["post_id"]]
            + [repr(float(r["probabilities"][s])) for s in SYMPTOMS]
            + [int(r["decisions"][s]) for s in SYMPTOMS]
            + [evidence, r.get("final_key") or "", r.get("code_version") or ""]
        )
    return buf.getvalue()


def write_predictions(rows: Sequence[Mapping], path: str | Path) -> None:
    """Write rows atomically: ``.jsonl`` (one row a line) or ``.csv`` (post_id, p_<SYMPTOM> x9,
    y_<SYMPTOM> x9, evidence as JSON (the rows' ``evidence``, scores included; empty for a model that marks
    no evidence), final_key, code_version)."""
    if output_kind(path) == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
    else:
        text = _csv_text(rows)
    atomic_write_text(path, text)


def output_kind(path: str | Path) -> str:
    """``.jsonl`` or ``.csv`` by the output's suffix; any other suffix is a PredictError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise PredictError(
            f"{path}: unknown output type {path.suffix or '(no suffix)'!r}; name the output "
            f"file {path.stem}.jsonl (one JSON row a line) or {path.stem}.csv (flat columns)"
        )
    return suffix


def predict_file(
    model: str | Path | Predictor,
    input_path: str | Path,
    output_path: str | Path,
    *,
    threshold: float | None = None,
    batch_size: int | None = None,
    tracking_uri: str | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> dict:
    """Read posts, predict, write the rows; return a summary (posts, seconds, posts/s, model, output)."""
    out = Path(output_path)
    output_kind(out)  # before the model loads: a typo costs nothing
    posts = read_posts(input_path)
    predictor = (
        model if isinstance(model, Predictor) else Predictor.load(model, tracking_uri=tracking_uri, threads=threads)
    )
    t0 = time.perf_counter()
    rows = predictor.predict(posts, threshold=threshold, batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - t0
    write_predictions(rows, out)
    return {
        "n_posts": len(rows),
        "seconds": seconds,
        "posts_per_second": len(rows) / seconds if seconds else None,
        "threads": predictor.threads,
        "batch_size": batch_size or predictor.train_cfg.eval_batch_size,
        "threshold": "tuned" if threshold is None else float(threshold),
        "model": predictor.source,
        "final_key": predictor.final_key,
        "manifest_sha256": predictor.manifest_sha256,
        "code_version": predictor.code_version,
        "input": str(input_path),
        "output": str(out),
        "n_predicted": {s: sum(r["decisions"][s] for r in rows) for s in SYMPTOMS},
    }

"""The final model as an MLflow pyfunc model, in the Model Registry under one name with a moving alias.

What a logged model holds (``models:/<tracking.registered_model>@<tracking.model_alias>``)::

    MLmodel, python_model.py        pyfunc flavor; the model is "from code": python_model.py builds
                                    ``RedSM5Model`` (this module), nothing is pickled
    code/workflow_lib/              this package (without __pycache__, about 0.8 MB), so the
                                    model loads in a fresh process that has only the requirements
    requirements.txt, python_env.yaml   the inference libraries, pinned as in envs/requirements.lock
    input_example.json              two short posts; signature: post_id (optional), text -> the rows
    artifacts/model/                the checkpoint folder as the final stage wrote it: weights,
                                    tokenizer/, checkpoint.json (meta.thresholds: the tuned decision
                                    thresholds; a sentence model's meta.evidence_threshold too),
                                    README.md (the model card), manifest.json

``RedSM5Model.predict`` takes a DataFrame with ``text`` and optionally ``post_id`` (missing: the row
number 0, 1, ..., as ``Predictor.predict`` numbers posts without one) and returns exactly the rows of
``workflow_lib.shipping.predictor.Predictor.predict`` (so ``mlflow models predict -t csv`` equals ``redsm5-predict``):
a model that marks evidence adds ``evidence`` and ``evidence_scope``, the sentence model (training.criteria_from:
sentences) each evidence sentence's ``score`` and the row's ``evidence_threshold``.
``params={"threshold": 0.5}`` decides at one threshold instead of the tuned ones.

Jobs never call this module: ``Tracker.log_model`` spools a ``model`` event and the tracking replayer
calls ``apply_model_event``, which is idempotent: a version is found again by its final_key tag
before one is created (a replay after a crash moves the alias only), and a pyfunc model logged
by an interrupted attempt is found again (READY) or marked FAILED and logged anew.
The alias moves to the version whose model event is newest (tag ``event_time_ms``), so a spool
drained late never takes the alias away from a newer final model.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from workflow_lib.learning.checkpoint import INFO, verify_checkpoint
from workflow_lib.provenance import CODE_VERSION_FILE, code_version
from workflow_lib.shipping.predictor import Predictor
from workflow_lib.symptoms import SYMPTOMS
from workflow_lib.tracking.tracker import tag

log = logging.getLogger(__name__)

ARTIFACT = "model"  # the pyfunc artifact key, the logged model's name and the checkpoint folder's name
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # workflow_lib/ (this module is workflow_lib/shipping/)
LOCK = PACKAGE_DIR.parent / "envs" / "requirements.lock"
CODE_IGNORE = ("__pycache__", "*.pyc", CODE_VERSION_FILE)  # what the model's code copy leaves out
# Distributions an inference process imports (tests/unit/shipping/test_mlflow_model.py checks the list is complete).
INFERENCE_DISTRIBUTIONS = (
    "mlflow",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "huggingface-hub",
    "numpy",
    "pandas",
    "peft",
    "pytorch-crf",
    "jsonschema",
    "PyYAML",
    "tqdm",
)
DESCRIPTION_MAX = 5000  # MLflow's limit for a model version description
MODEL_CODE = '''"""RedSM5 pyfunc model (MLflow models from code): the class lives in workflow_lib.shipping.mlflow_model."""
import mlflow

from workflow_lib.shipping.mlflow_model import RedSM5Model

mlflow.models.set_model(RedSM5Model())
'''
INPUT_EXAMPLE = pd.DataFrame(
    {
        "post_id": ["example-1", "example-2"],
        "text": ["I can't sleep and nothing is fun anymore.", "Had a great day at the beach with friends."],
    }
)


class RedSM5Model(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper of ``workflow_lib.shipping.predictor.Predictor`` over the logged model folder."""

    def load_context(self, context) -> None:
        self.predictor = Predictor.load(context.artifacts[ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params: Mapping[str, Any] | None = None) -> list[dict]:
        params = params or {}
        return self.predictor.predict(
            posts_from_frame(model_input),
            threshold=params.get("threshold"),
            batch_size=params.get("batch_size"),
            progress=False,
        )


def posts_from_frame(frame) -> list[dict]:
    """[{"post_id", "text"}] from a DataFrame (or what pandas makes one of) with ``text`` and optionally
    ``post_id``. A post without one is left without: Predictor numbers it by its row (0, 1, ...);
    an empty text cell becomes "" (which Predictor refuses, naming the row)."""
    df = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
    if "text" not in df.columns:
        raise ValueError(
            f"model input needs a 'text' column (and optionally 'post_id'); got columns {list(map(str, df.columns))}"
        )
    ids = df["post_id"].tolist() if "post_id" in df.columns else [None] * len(df)
    return [
        {**({"post_id": str(p)} if _present(p) else {}), "text": str(t) if _present(t) else ""}
        for p, t in zip(ids, df["text"].tolist())
    ]


def _present(value) -> bool:
    return not pd.isna(value)


def signature():
    """Input: post_id (optional, any scalar), text (string); output: the Predictor rows; params: threshold,
    batch_size."""
    from mlflow.models import ModelSignature
    from mlflow.types import DataType
    from mlflow.types.schema import AnyType, Array, ColSpec, Object, ParamSchema, ParamSpec, Property, Schema

    span = Object(
        [
            Property("start", DataType.long),
            Property("end", DataType.long),
            Property("text", DataType.string),
            Property("score", DataType.double, required=False),  # the sentence model's sentence probability
        ]
    )
    outputs = Schema(
        [
            ColSpec(DataType.string, "post_id"),
            ColSpec(Object([Property(s, DataType.double) for s in SYMPTOMS]), "probabilities"),
            ColSpec(Object([Property(s, DataType.long) for s in SYMPTOMS]), "decisions"),
            ColSpec(Array(DataType.string), "predicted"),
            ColSpec(AnyType(), "threshold"),  # "tuned", or the threshold given
            ColSpec(Object([Property(s, Array(span), required=False) for s in SYMPTOMS]), "evidence", required=False),
            ColSpec(DataType.string, "evidence_scope", required=False),  # evidence models only
            ColSpec(DataType.double, "evidence_threshold", required=False),  # the sentence model only
            ColSpec(DataType.string, "final_key", required=False),
            ColSpec(DataType.string, "code_version"),
        ]
    )
    return ModelSignature(
        # post_id: any scalar, made a string (a CSV's numeric ids are int64 to pandas, which a string column
        # refuses; redsm5-predict reads them as text)
        inputs=Schema([ColSpec(AnyType(), "post_id", required=False), ColSpec(DataType.string, "text")]),
        outputs=outputs,
        params=ParamSchema(
            [ParamSpec("threshold", DataType.double, None), ParamSpec("batch_size", DataType.long, None)]
        ),
    )


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def pip_requirements(info: Mapping | None = None, lock: Path = LOCK) -> list[str]:
    """The inference libraries pinned as in ``lock`` (envs/requirements.lock; without the lock file, e.g.
    the package installed without its repository: the installed versions). ``info`` (checkpoint.json) of
    a LoRA adapter over a pip-packaged encoder adds that package: the base encoder is loaded from it."""
    dists = list(INFERENCE_DISTRIBUTIONS)
    spec = (info or {}).get("backbone_spec") or {}
    if (info or {}).get("weights") == "adapter" and spec.get("source") == "package":
        dists += metadata.packages_distributions().get(spec["package"], [spec["package"]])[:1]
    pins: dict[str, str] = {}
    if lock.is_file():
        for line in lock.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[_norm(name)] = f"{name.strip()}=={version.strip()}"
    out = []
    for dist in dists:
        if _norm(dist) in pins:
            out.append(pins[_norm(dist)])
        elif lock.is_file():
            raise ValueError(
                f"{lock}: no pin for {dist!r}, which the MLflow model needs at inference; add "
                f"'{dist}==<version>' (the version `pip show {dist}` names)"
            )
        else:
            out.append(f"{dist}=={metadata.version(dist)}")
    return out


def check_model_folder(model_dir) -> dict:
    """Verify a final/refit checkpoint folder for logging (manifest, meta.thresholds, and a sentence model's
    meta.evidence_threshold); return checkpoint.json."""
    folder = Path(model_dir)
    if folder.name != ARTIFACT:
        raise ValueError(
            f"{folder}: the model folder must be named {ARTIFACT!r} (the checkpoint folder the final "
            f"stage writes: results/final/<final_key>/{ARTIFACT}); loaders find it at "
            f"artifacts/{ARTIFACT}"
        )
    verify_checkpoint(folder)
    info = json.loads((folder / INFO).read_text())
    missing = [s for s in SYMPTOMS if s not in (info.get("meta", {}).get("thresholds") or {})]
    if missing:
        raise ValueError(
            f"{folder / INFO}: meta.thresholds lacks {missing}; the model predicts at its tuned "
            "thresholds, so rebuild the folder with the final stage (it writes them)"
        )
    sentences = (info.get("train_cfg") or {}).get("criteria_from") == "sentences"
    if sentences and info["meta"].get("evidence_threshold") is None:
        raise ValueError(
            f"{folder / INFO}: a sentence model (training.criteria_from: sentences) without "
            "meta.evidence_threshold; it marks evidence at its chosen evidence threshold, so rebuild the folder "
            "with the final stage (it writes it)"
        )
    return info


def model_card(folder: Path) -> str | None:
    """The model card (README.md of the model folder) without its YAML front matter, or None."""
    path = Path(folder) / "README.md"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if text.startswith("---\n") and "\n---\n" in text[4:]:
        text = text[4:].split("\n---\n", 1)[1]
    text = text.strip()
    if len(text) <= DESCRIPTION_MAX:
        return text
    note = f"\n\n... (the whole card: artifacts/{ARTIFACT}/README.md of this version)"
    head = text[: DESCRIPTION_MAX - len(note)]
    return head[: head.rfind("\n\n")] + note if "\n\n" in head else head + note  # cut between paragraphs


def _stage_code(dst: Path) -> Path:
    """A copy of this package for the model's code/ folder (what loads it in a fresh process)."""
    target = dst / PACKAGE_DIR.name
    shutil.copytree(PACKAGE_DIR, target, ignore=shutil.ignore_patterns(*CODE_IGNORE))
    (target / CODE_VERSION_FILE).write_text(code_version(), encoding="utf-8")  # the copy has no git checkout
    return target


def log_pyfunc_model(model_dir, *, run_id: str, experiment_id: str, tags: Mapping[str, str] | None = None, client=None):
    """Log the checkpoint folder ``model_dir`` as the pyfunc model "model" of run ``run_id``; return the
    LoggedModel (status READY once every file is uploaded; ``models:/<model_id>``).

    The steps of ``mlflow.pyfunc.log_model(name="model", ...)``, spelled out with public MLflow calls
    because the replayer has no active run and should not load the model: create the logged model in the
    run's experiment (``tags``: the lineage), ``mlflow.pyfunc.save_model`` into a temporary folder,
    upload it, link it to the run as an output, mark it READY. ``log_model`` would also load the model
    to check its input example (importing torch into the replayer, while the job's close() waits);
    the tests load and serve the logged model instead. The folder is verified first. ``client``: an
    MlflowClient on the store (default: MLflow's current tracking URI).
    """
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model

    folder = Path(model_dir).resolve()
    info = check_model_folder(folder)
    card = model_card(folder)
    if card is None:
        log.warning("%s has no model card (README.md); the model is logged without one", folder)
    client = client or mlflow.MlflowClient()
    logged = client.create_logged_model(experiment_id, name=ARTIFACT, source_run_id=run_id, tags=dict(tags or {}))
    with tempfile.TemporaryDirectory(prefix="redsm5-pyfunc-") as tmp:
        code = Path(tmp) / "python_model.py"
        code.write_text(MODEL_CODE)
        local = Path(tmp) / "pyfunc"
        mlflow.pyfunc.save_model(
            str(local),
            mlflow_model=Model(
                artifact_path=logged.artifact_location,
                run_id=run_id,
                model_uuid=logged.model_id,
                model_id=logged.model_id,
            ),
            python_model=str(code),
            artifacts={ARTIFACT: str(folder)},
            code_paths=[str(_stage_code(Path(tmp) / "code"))],
            signature=signature(),
            input_example=INPUT_EXAMPLE,
            pip_requirements=pip_requirements(info),
            metadata={
                "final_key": info["meta"].get("final_key"),
                "code_version": info.get("code_version"),
                "thresholds": info["meta"]["thresholds"],
                "thresholds_file": f"artifacts/{ARTIFACT}/checkpoint.json (meta.thresholds)",
                **({"evidence_threshold": ev} if (ev := info["meta"].get("evidence_threshold")) is not None else {}),
                "model_card": f"artifacts/{ARTIFACT}/README.md" if card is not None else None,
            },
        )
        client.log_model_artifacts(logged.model_id, str(local))
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    return client.finalize_logged_model(logged.model_id, "READY")


# -- registry -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _global_tracking_uri(uri: str):
    """MLflow's global tracking URI set to ``uri`` for the block, then put back ($MLFLOW_TRACKING_URI too):
    MLflow's SQL model registry resolves a ``models:/<model_id>`` source through the global URI, not
    through the client's (a TODO in mlflow/store/model_registry/sqlalchemy_store.py)."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    env = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env


def find_version(client, name: str, final_key: str):
    """The registered version of ``final_key`` under ``name`` (the oldest, should there be several), or None."""
    found = client.search_model_versions(f"name = '{name}' and tags.`{tag('final_key')}` = '{final_key}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def _ensure_registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(
            name,
            description=(
                "ReDSM5 symptom classifiers: one version per final model (final_key tag), alias on the newest. "
                "A research tool for studying language, not a diagnostic device."
            ),
        )
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise


def _find_logged_model(client, experiment_id: str, run_id: str, final_key: str) -> str | None:
    """A READY pyfunc model of this run and final_key (an earlier attempt's); others left PENDING are marked FAILED."""
    found = client.search_logged_models(
        [experiment_id], filter_string=f"source_run_id = '{run_id}' AND tags.`{tag('final_key')}` = '{final_key}'"
    )
    ready = [m for m in found if m.name == ARTIFACT and str(m.status) == "READY"]
    for m in found:
        if m.name == ARTIFACT and str(m.status) == "PENDING":
            client.finalize_logged_model(m.model_id, "FAILED")
    return min(ready, key=lambda m: m.creation_timestamp).model_id if ready else None


def _move_alias(client, name: str, alias: str, version) -> str:
    """Point ``alias`` at ``version`` unless it points at a version of a newer model event; return its version."""
    time_tag = tag("event_time_ms")
    current = client.get_registered_model(name).aliases.get(alias)
    if current is not None and str(current) != str(version.version):
        held = client.get_model_version(name, str(current))
        if int(held.tags.get(time_tag, 0)) > int(version.tags.get(time_tag, 0)):
            log.warning(
                "alias %s@%s stays on version %s (a newer final model than version %s)",
                name,
                alias,
                current,
                version.version,
            )
            return str(current)
    if str(current) != str(version.version):
        client.set_registered_model_alias(name, alias, str(version.version))
    return str(version.version)


def apply_model_event(rep, run_id: str, ev: Mapping):
    """Apply a ``model`` spool event with the replayer ``rep`` (its client, store calls retried with backoff):
    log the pyfunc model into run ``run_id``, register it (once per final_key), move the alias.
    Returns the ModelVersion, or None when the model folder cannot be logged (logged as an error)."""
    client = rep.client
    name, alias = ev["registered_model"], ev["alias"]
    tags = {**ev["tags"], tag("event_time_ms"): str(ev["time_ms"])}
    final_key = tags[tag("final_key")]
    version = rep.call(find_version, client, name, final_key)
    if version is None:
        try:
            check_model_folder(ev["path"])
        except Exception as exc:
            log.error("model %s not logged to %s: %s", ev["path"], name, exc)
            return None

        def find_or_register():  # a retried attempt first looks for what an earlier one made
            found = find_version(client, name, final_key)
            if found is not None:
                return found
            _ensure_registered_model(client, name)
            model_id = (
                _find_logged_model(client, rep.experiment_id, run_id, final_key)
                or log_pyfunc_model(
                    ev["path"], run_id=run_id, experiment_id=rep.experiment_id, tags=tags, client=client
                ).model_id
            )
            with _global_tracking_uri(rep.uri):
                return client.create_model_version(
                    name,
                    source=f"models:/{model_id}",
                    run_id=run_id,
                    tags=tags,
                    description=model_card(Path(ev["path"])),
                    model_id=model_id,
                )

        version = rep.call(find_or_register)
    rep.call(_move_alias, client, name, alias, version)
    return version

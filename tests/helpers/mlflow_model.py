"""What the final-model-in-MLflow tests share (tests/unit/shipping/test_mlflow_model.py,
tests/integration/test_mlflow_model_registry.py): the registry names, a final model's lineage, and a
results folder holding two config-built tiny BERT final models beside a SQLite store."""

from __future__ import annotations

from pathlib import Path

import torch

from workflow_lib import config
from workflow_lib.config import Config
from workflow_lib.learning.checkpoint import save_checkpoint
from workflow_lib.learning.models.model import build_model
from workflow_lib.symptoms import SYMPTOMS

REPO = Path(__file__).resolve().parents[2]
NAME, ALIAS = "redsm5-symptoms", "champion"
CARD = "---\nlicense: mit\ntags: [test]\n---\n# Model card\n\nA research tool for studying language.\n"


def lineage(final_key: str) -> dict:
    return {
        "data_key": "d" * 12,
        "study_key": "s" * 12,
        "trial_key": "t" * 12,
        "selection_key": "x" * 12,
        "final_key": final_key,
        "variant": 1,
        "backbone": "tiny-a",
        "code_version": "test-version",
    }


def final_model(results: Path, cfg: Config, final_key: str, seed: int) -> Path:
    """results/final/<final_key>/model: a config-built tiny BERT with meta.thresholds and a model card."""
    spec = cfg.encoders["tiny-a"]
    tcfg = cfg.training
    torch.manual_seed(seed)
    model, tok = build_model(spec, tcfg, n_labels=len(SYMPTOMS))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    out = results / "final" / final_key / "model"
    meta = {
        **lineage(final_key),
        "stage": "final",
        "epochs": 1,
        "thresholds": {s: 0.3 + 0.03 * i for i, s in enumerate(SYMPTOMS)},
    }
    save_checkpoint(
        out,
        model,
        tok,
        backbone_spec=spec,
        train_cfg=tcfg,
        meta=meta,
        extra=lambda folder: (Path(folder) / "README.md").write_text(CARD, encoding="utf-8"),
    )
    return out


def model_store(root: Path) -> dict:
    """A results folder under ``root`` with two final model folders, a SQLite store and a config pointing at it."""
    results = root / "results"
    cfg = config.load(
        REPO / "config" / "config.yaml",
        REPO / "config" / "smoke.yaml",
        overrides={"results_dir": str(results), "tracking": {"uri": f"sqlite:///{root}/mlflow.db"}},
    )
    models = {"a" * 12: final_model(results, cfg, "a" * 12, 1), "b" * 12: final_model(results, cfg, "b" * 12, 2)}
    return {"cfg": cfg, "root": root, "models": models, "uri": cfg.tracking.uri}


def registry_client(uri: str):
    """An MLflow client of the store (and model registry) at ``uri``."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

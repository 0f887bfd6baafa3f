"""Code version and library versions, recorded in manifests, reports and MLflow tags."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGE = "redsm5-pipeline"
CODE_VERSION_FILE = "CODE_VERSION"  # written into the package copy an MLflow model carries
LIBRARIES = ("torch", "transformers", "optuna", "mlflow", "snakemake", "scikit-learn", "numpy", "datasets")


@lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+g<git sha>[.dirty]`` when run from a git checkout, else the package version.

    A copy of this package shipped inside an MLflow model (workflow_lib.shipping.mlflow_model) carries the
    version of the code it was copied from in a ``CODE_VERSION`` file, which wins."""
    shipped = Path(__file__).resolve().parent / CODE_VERSION_FILE
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8").strip()
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    repo = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=10", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(repo),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "workflow_lib",
                "devbench",
                "scripts",
                "rules",
                "Snakefile",
            ],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{sha}" + (".dirty" if dirty else "")


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out

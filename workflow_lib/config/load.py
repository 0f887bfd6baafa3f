"""Configuration: load, fill defaults, validate. The one place a config is read.

The JSON schema (workflow_lib/config/schemas/config.schema.json) is the contract; its
``default`` values are the defaults. Errors name the offending key path, what
was found and what is allowed, so a user can fix the YAML without reading code.
Validating against the schema is workflow_lib.config.schema (the level below this module
and search_space); its public names are importable from here too.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path

import yaml

from workflow_lib.config.schema import SCHEMA_DIR, ConfigError, load_schema, validate
from workflow_lib.config.search_space import check_search_space
from workflow_lib.config.sections import (
    Benchmark,
    Checkpoints,
    Config,
    Data,
    Encoder,
    Evaluation,
    Final,
    FrozenList,
    Hpo,
    Objective,
    Refit,
    Run,
    Section,
    Selection,
    Split,
    Storage,
    Thresholds,
    Tracking,
    Training,
    freeze,
    plain,
)

__all__ = [
    "SCHEMA_DIR",
    "ConfigError",
    "load_schema",
    "validate",
    "load_yaml",
    "deep_merge",
    "resolve",
    "load",
    "Config",
    "Section",
    "FrozenList",
    "freeze",
    "plain",
    "Data",
    "Split",
    "Encoder",
    "Training",
    "Hpo",
    "Objective",
    "Refit",
    "Benchmark",
    "Selection",
    "Final",
    "Tracking",
    "Run",
    "Checkpoints",
    "Storage",
    "Thresholds",
    "Evaluation",
]


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """Recursive dict merge, as Snakemake merges several --configfile files. The result is plain dicts and
    lists (a resolved config merged with overrides is a raw config to resolve again)."""
    out = copy.deepcopy(plain(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(plain(v))
    return out


def resolve(raw: Mapping) -> Config:
    """The one resolution of a whole config: validate the raw config (as Snakemake merged it) against the
    schema, fill its defaults, check the cross-field rules, and freeze it into typed sections
    (workflow_lib.config.sections). Every job calls it once; nothing downstream checks a section again."""
    cfg = copy.deepcopy(plain(raw))  # plain: a resolved Config given back is resolved afresh, not changed
    validate(cfg, "config", fill_defaults=True, what="config")
    unknown = [b for b in cfg["backbones"] if b not in cfg["encoders"]]
    if unknown:
        raise ConfigError(
            f"invalid config:\n  - backbones: {', '.join(map(repr, unknown))} not in the encoders "
            f"catalogue; known: {', '.join(sorted(cfg['encoders']))}"
        )
    cfg["hpo"]["search_space"] = {k: v for k, v in cfg["hpo"]["search_space"].items() if v is not None}
    for name, spec in cfg["encoders"].items():
        if spec["source"] == "tiny" and spec["tiny"]["hidden_size"] % spec["tiny"]["num_attention_heads"]:
            raise ConfigError(
                f"invalid config:\n  - encoders.{name}.tiny: hidden_size "
                f"{spec['tiny']['hidden_size']} must be divisible by num_attention_heads "
                f"{spec['tiny']['num_attention_heads']}"
            )
    if cfg["data"]["source"] == "local" and not cfg["data"]["local_path"]:
        raise ConfigError(
            "invalid config:\n  - data.local_path: required when data.source is 'local'; "
            "set it to a folder with posts.csv and annotations.csv"
        )
    split = cfg["data"]["split"]
    if split["validation_fraction"] + split["test_fraction"] >= 0.8:
        raise ConfigError(
            f"invalid config:\n  - data.split: validation_fraction {split['validation_fraction']} + "
            f"test_fraction {split['test_fraction']} = "
            f"{split['validation_fraction'] + split['test_fraction']:g}, must stay below 0.8 (train "
            "gets the rest); lower one of them"
        )
    check_search_space(cfg["hpo"]["search_space"], cfg["training"])
    _check_backbones(cfg)
    _check_objective(cfg)
    return freeze(cfg, Config)


def _encoder_layers(spec: Mapping) -> int | None:
    """The encoder's layer count, read from its config.json without loading it (None if unknown)."""
    if spec["source"] == "tiny":
        return spec["tiny"]["num_hidden_layers"]
    folder = None
    if spec["source"] == "local":
        folder = Path(spec["path"]).expanduser()
    elif spec["source"] == "package":
        try:
            found = importlib.util.find_spec(spec["package"])
        except (ImportError, ValueError):
            found = None
        folder = Path(found.origin).parent / "model" if found is not None and found.origin else None
    try:
        return int(json.loads((folder / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"])
    except (TypeError, OSError, ValueError, KeyError):
        return None


def _check_backbones(cfg: Mapping) -> None:
    """Each backbone can be loaded as configured: hub pinned, local folder present, frozen layers it has."""
    problems = []
    space = cfg["hpo"]["search_space"].get("freeze_layers")
    fixed = cfg["training"]["freeze_layers"]
    for name in cfg["backbones"]:
        spec, where = cfg["encoders"][name], f"encoders.{name}"
        if spec["source"] == "hub" and not spec.get("revision"):
            problems.append(
                f"{where}.revision: required for source: hub - a commit sha (or tag) of "
                f"{spec['hub_id']!r}, so the trained models stay reproducible and their keys stay "
                "valid; copy it from the model page's 'Files and versions' tab"
            )
        if spec["source"] == "local" and not Path(spec["path"]).expanduser().is_dir():
            problems.append(
                f"{where}.path: {spec['path']!r} is not a folder; point it at a folder written by "
                "save_pretrained() (config.json, weights, tokenizer files)"
            )
        n_layers = _encoder_layers(spec)
        if n_layers is None:
            continue
        if fixed > n_layers and (not space or space.get("when")):
            problems.append(
                f"training.freeze_layers: {fixed} but encoder {name!r} has {n_layers} layer(s); use at most that many"
            )
        if space:
            top = max(space["choices"]) if space["type"] == "categorical" else space["high"]
            if top > n_layers:
                problems.append(
                    f"hpo.search_space.freeze_layers: can suggest {top} but encoder {name!r} has "
                    f"{n_layers} layer(s); lower it to at most {n_layers}"
                )
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))


def _check_objective(cfg: Mapping) -> None:
    """An objective that weighs evidence needs evidence in every trial: the evidence task on, or the sentence model
    (criteria_from: sentences gives its evidence from its sentence scores)."""
    obj = cfg["hpo"]["objective"]
    if obj["criteria_weight"] + obj["evidence_weight"] <= 0:
        raise ConfigError("invalid config:\n  - hpo.objective: criteria_weight + evidence_weight must be > 0")
    if obj["evidence_weight"] > 0:

        def values(key: str) -> list:
            space = cfg["hpo"]["search_space"].get(key)
            return space["choices"] if space else [cfg["training"][key]]

        if not (
            all(v is True for v in values("evidence_task")) or all(v == "sentences" for v in values("criteria_from"))
        ):
            raise ConfigError(
                "invalid config:\n  - hpo.objective.evidence_weight: > 0 scores evidence, but a trial can have "
                "none (training.evidence_task false with criteria_from post); set training.evidence_task: true "
                "(or training.criteria_from: sentences) and drop it from hpo.search_space, or set evidence_weight: 0"
            )


def load(*paths: str | Path, overrides: Mapping | None = None) -> Config:
    """Load one or more YAML files (later ones override earlier ones), validate, fill defaults."""
    merged: dict = {}
    for p in paths:
        merged = deep_merge(merged, load_yaml(p))
    if overrides:
        merged = deep_merge(merged, overrides)
    return resolve(merged)

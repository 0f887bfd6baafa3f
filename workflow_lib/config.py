"""Configuration: load, fill defaults, validate. The one place a config is read.

The JSON schema (workflow_lib/schemas/config.schema.json) is the contract; its
``default`` values are the defaults. Errors name the offending key path, what
was found and what is allowed, so a user can fix the YAML without reading code.
"""
from __future__ import annotations

import copy
import difflib
import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml


SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


class ConfigError(ValueError):
    """A configuration problem a user fixes in their YAML."""


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """Return one of the JSON schemas shipped in workflow_lib/schemas/."""
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


def _extend_with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema and prop not in instance:
                    instance[prop] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultFilling = _extend_with_defaults(jsonschema.Draft202012Validator)


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _describe(error: jsonschema.ValidationError, schema_name: str) -> str:
    """One actionable line for one schema violation."""
    where = _key_path(error)
    v = error.validator
    if v == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        hint = f"allowed keys: {', '.join(allowed)}" if allowed else "no extra keys allowed here"
        close = [f"{k!r} -> {m[0]!r}" for k in extra if (m := difflib.get_close_matches(str(k), allowed, n=1))]
        fix = f" (did you mean {', '.join(close)}?)" if close else ""
        return f"{where}: unknown key(s) {', '.join(map(repr, extra))}{fix}; {hint}"
    if v == "enum":
        return f"{where}: {error.instance!r} is not allowed; choose one of {error.validator_value}"
    if v == "type":
        return f"{where}: expected {error.validator_value}, got {type(error.instance).__name__} {error.instance!r}"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{where}: {error.instance!r} is out of range ({v} {error.validator_value})"
    if v == "required":
        return f"{where}: {error.message}"
    if v == "minItems":
        return f"{where}: needs at least {error.validator_value} item(s), got {len(error.instance)}"
    if v == "minProperties":
        return f"{where}: needs at least {error.validator_value} entry"
    if v == "pattern" or (v == "propertyNames"):
        return f"{where}: {error.message}"
    return f"{where}: {error.message}"


def validate(instance: Any, schema_name: str, *, fill_defaults: bool = False, what: str = "") -> Any:
    """Validate ``instance`` against a shipped schema; raise ConfigError listing every problem.

    With ``fill_defaults`` the instance is completed in place with the schema's defaults.
    """
    schema = load_schema(schema_name)
    cls = _DefaultFilling if fill_defaults else jsonschema.Draft202012Validator
    validator = cls(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        # For if/then branches jsonschema reports the wrapper; descend to the leaf errors.
        leaves = []
        for err in errors:
            stack = [err]
            while stack:
                e = stack.pop()
                if e.context:
                    stack.extend(e.context)
                else:
                    leaves.append(e)
        # An anyOf with a null branch reports "expected null" beside the real problem: drop it.
        def _shadowed(e):
            if e.validator != "type" or e.validator_value != "null":
                return False
            p = list(e.absolute_path)
            return any(o is not e and list(o.absolute_path)[:len(p)] == p for o in leaves)
        lines = sorted({_describe(e, schema_name) for e in leaves if not _shadowed(e)})
        label = what or schema_name
        raise ConfigError(f"invalid {label}:\n  - " + "\n  - ".join(lines))
    return instance


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
    """Recursive dict merge, as Snakemake merges several --configfile files."""
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve(raw: Mapping) -> dict:
    """Validate a raw config (as Snakemake merged it), fill defaults, check cross-field rules."""
    cfg = copy.deepcopy(dict(raw))
    validate(cfg, "config", fill_defaults=True, what="config")
    unknown = [b for b in cfg["backbones"] if b not in cfg["encoders"]]
    if unknown:
        raise ConfigError(f"invalid config:\n  - backbones: {', '.join(map(repr, unknown))} not in the encoders "
                          f"catalogue; known: {', '.join(sorted(cfg['encoders']))}")
    cfg["hpo"]["search_space"] = {k: v for k, v in cfg["hpo"]["search_space"].items() if v is not None}
    for name, spec in cfg["encoders"].items():
        if spec["source"] == "tiny":
            if spec["tiny"]["hidden_size"] % spec["tiny"]["num_attention_heads"]:
                raise ConfigError(f"invalid config:\n  - encoders.{name}.tiny: hidden_size "
                                  f"{spec['tiny']['hidden_size']} must be divisible by num_attention_heads "
                                  f"{spec['tiny']['num_attention_heads']}")
    if cfg["data"]["source"] == "local" and not cfg["data"]["local_path"]:
        raise ConfigError("invalid config:\n  - data.local_path: required when data.source is 'local'; "
                          "set it to a folder with posts.csv and annotations.csv")
    split = cfg["data"]["split"]
    if split["validation_fraction"] + split["test_fraction"] >= 0.8:
        raise ConfigError(f"invalid config:\n  - data.split: validation_fraction {split['validation_fraction']} + "
                          f"test_fraction {split['test_fraction']} = "
                          f"{split['validation_fraction'] + split['test_fraction']:g}, must stay below 0.8 (train "
                          "gets the rest); lower one of them")
    from workflow_lib.search_space import check_search_space  # local import: search_space imports config

    check_search_space(cfg["hpo"]["search_space"], cfg["training"])
    _check_backbones(cfg)
    _check_objective(cfg)
    return cfg


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
            problems.append(f"{where}.revision: required for source: hub - a commit sha (or tag) of "
                            f"{spec['hub_id']!r}, so the trained models stay reproducible and their keys stay "
                            "valid; copy it from the model page's 'Files and versions' tab")
        if spec["source"] == "local" and not Path(spec["path"]).expanduser().is_dir():
            problems.append(f"{where}.path: {spec['path']!r} is not a folder; point it at a folder written by "
                            "save_pretrained() (config.json, weights, tokenizer files)")
        n_layers = _encoder_layers(spec)
        if n_layers is None:
            continue
        if fixed > n_layers and (not space or space.get("when")):
            problems.append(f"training.freeze_layers: {fixed} but encoder {name!r} has {n_layers} layer(s); use at "
                            "most that many")
        if space:
            top = max(space["choices"]) if space["type"] == "categorical" else space["high"]
            if top > n_layers:
                problems.append(f"hpo.search_space.freeze_layers: can suggest {top} but encoder {name!r} has "
                                f"{n_layers} layer(s); lower it to at most {n_layers}")
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))


def _check_objective(cfg: Mapping) -> None:
    """An objective that weighs evidence needs the evidence task on in every trial."""
    obj = cfg["hpo"]["objective"]
    if obj["criteria_weight"] + obj["evidence_weight"] <= 0:
        raise ConfigError("invalid config:\n  - hpo.objective: criteria_weight + evidence_weight must be > 0")
    if obj["evidence_weight"] > 0:
        space = cfg["hpo"]["search_space"].get("evidence_task")
        values = space["choices"] if space else [cfg["training"]["evidence_task"]]
        if not all(v is True for v in values):
            raise ConfigError("invalid config:\n  - hpo.objective.evidence_weight: > 0 scores evidence, but "
                              "training.evidence_task can be false; set training.evidence_task: true and drop "
                              "evidence_task from hpo.search_space, or set evidence_weight: 0")


def load(*paths: str | Path, overrides: Mapping | None = None) -> dict:
    """Load one or more YAML files (later ones override earlier ones), validate, fill defaults."""
    merged: dict = {}
    for p in paths:
        merged = deep_merge(merged, load_yaml(p))
    if overrides:
        merged = deep_merge(merged, overrides)
    return resolve(merged)


def validate_training(train_cfg: Mapping, what: str = "training config") -> dict:
    """Validate (and complete) one training configuration - fixed settings merged with a trial's params."""
    schema = load_schema("config")
    cfg = _complete(train_cfg, schema["$defs"]["training"], what)
    from workflow_lib.augment import UNAVAILABLE_RECIPES  # local import: keeps config import-light

    if cfg["augment"] in UNAVAILABLE_RECIPES:
        raise ConfigError(f"invalid {what}:\n  - augment: {cfg['augment']!r} cannot run here: "
                          f"{UNAVAILABLE_RECIPES[cfg['augment']]}; choose one of none, "
                          f"{', '.join(_available_recipes())}")
    return cfg


def _available_recipes() -> tuple[str, ...]:
    from workflow_lib.augment import RECIPES

    return tuple(RECIPES)


def validate_data(data_cfg: Mapping, what: str = "data config") -> dict:
    """Validate (and complete with the schema's defaults) a ``data`` section."""
    schema = load_schema("config")
    return _complete(data_cfg, schema["properties"]["data"], what)


def _complete(obj: Mapping, subschema: Mapping, what: str) -> dict:
    schema = load_schema("config")
    cfg = copy.deepcopy(dict(obj))
    validator = _DefaultFilling({**subschema, "$defs": schema["$defs"]})
    errors = list(validator.iter_errors(cfg))
    if errors:
        lines = sorted({_describe(e, "config") for e in errors})
        raise ConfigError(f"invalid {what}:\n  - " + "\n  - ".join(lines))
    return cfg

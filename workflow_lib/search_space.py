"""The HPO search space: declared in config, checked at start-up, sampled per trial.

Every parameter name is a key of the ``training`` section; a trial's
configuration is ``training`` with the sampled values put over it, and it is
validated against the same schema, so a space that could produce an invalid
model is refused before any training starts.
"""
from __future__ import annotations

from typing import Any, Mapping

from workflow_lib.config import ConfigError, load_schema, validate_training


def _active(spec: Mapping, params: Mapping) -> bool:
    for other, allowed in (spec.get("when") or {}).items():
        if params.get(other) not in allowed:
            return False
    return True


def check_search_space(space: Mapping[str, Mapping], training: Mapping) -> None:
    """Raise ConfigError if the space names unknown keys, has empty or inverted ranges,
    or offers a value the training schema would reject."""
    known = set(load_schema("config")["$defs"]["training"]["properties"])
    problems: list[str] = []
    for name, spec in space.items():
        where = f"hpo.search_space.{name}"
        if name not in known:
            problems.append(f"{where}: not a training setting; searchable keys: {', '.join(sorted(known))}")
            continue
        for other in (spec.get("when") or {}):
            if other not in space:
                problems.append(f"{where}.when: refers to {other!r}, which is not in the search space")
        kind = spec["type"]
        if kind == "categorical":
            values = spec["choices"]
        else:
            low, high = spec["low"], spec["high"]
            if low > high:
                problems.append(f"{where}: low {low} is above high {high}")
                continue
            if spec.get("log") and low <= 0:
                problems.append(f"{where}: log scale needs low > 0, got {low}")
                continue
            if kind == "int" and (int(low) != low or int(high) != high):
                problems.append(f"{where}: int parameter needs integer bounds, got {low}..{high}")
                continue
            values = [int(low), int(high)] if kind == "int" else [low, high]
        for value in values:
            try:
                validate_training({**training, name: value})
            except ConfigError as exc:
                detail = str(exc).split("\n  - ", 1)[-1]
                problems.append(f"{where}: value {value!r} cannot produce a valid model ({detail})")
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))


def suggest(trial, space: Mapping[str, Mapping]) -> dict[str, Any]:
    """Ask an Optuna trial for every active parameter, in declaration order."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if not _active(spec, params):
            continue
        kind = spec["type"]
        if kind == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif kind == "int":
            params[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]),
                                             step=int(spec.get("step", 1)), log=bool(spec.get("log", False)))
        else:
            kwargs = {"log": bool(spec.get("log", False))}
            if spec.get("step") is not None:
                kwargs["step"] = float(spec["step"])
            params[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), **kwargs)
    return params


def trial_training_config(training: Mapping, params: Mapping) -> dict:
    """The full, validated training configuration of one trial."""
    return validate_training({**training, **params}, what="trial configuration")

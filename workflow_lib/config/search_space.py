"""The HPO search space: declared in config, checked at start-up, sampled per trial.

Every parameter name is a key of the ``training`` section; a trial's
configuration is ``training`` with the sampled values put over it
(``Training.with_params``, which checks it against the same schema). Every value the space
can offer is checked when the config is resolved (check_search_space, called by
workflow_lib.config.resolve), so a space that could produce an invalid model is refused before any
training starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workflow_lib.config.schema import ConfigError, load_schema, validate_training

if TYPE_CHECKING:  # sections imports schema only; this module is imported by load, as sections is
    from workflow_lib.config.sections import Training

_FOCAL = ("focal", "adaptive_focal", "hybrid")
_COUPLED = {"evidence_task": (True,), "multitask": ("coupled",)}

# setting -> {other setting: values under which it shapes the trained model}, or a list of such conditions
# when any one of them is enough. A setting whose condition fails is inert: it is never suggested and never
# enters the trial key.
CONDITIONS: dict[str, dict[str, tuple] | list[dict[str, tuple]]] = {
    "head_hidden": [  # the hidden layer of these criteria heads, and of these evidence heads
        {"head": ("mlp", "mlp_residual", "gated")},
        {"evidence_task": (True,), "evidence_head": ("start_end_mlp", "biaffine", "sentence_reranker")},
    ],
    "loss_gamma": {"loss": _FOCAL},
    "loss_alpha": {"loss": ("hybrid",)},
    "multitask": {"evidence_task": (True,)},
    "coupling": _COUPLED,
    "coupling_pooling": _COUPLED,
    "evidence_head": {"evidence_task": (True,)},
    "evidence_loss_weight": {"evidence_task": (True,)},
    "evidence_threshold": {"evidence_task": (True,)},
    "lora_r": {"finetune": ("lora",)},
    "lora_alpha": {"finetune": ("lora",)},
    "lora_dropout": {"finetune": ("lora",)},
    "lora_target_modules": {"finetune": ("lora",)},
    "window_overlap": {"long_posts": ("windows",)},
    "max_windows": {"long_posts": ("windows",)},
    "window_aggregation": {"long_posts": ("windows",), "criteria_from": ("post",)},
    "pooling": {"criteria_from": ("post",)},  # the sentence model mean-pools each sentence
    "sentence_aggregation": {"criteria_from": ("sentences",)},
    "sentence_loss_weight": {"criteria_from": ("sentences",)},
    "hard_negative_weight": {"criteria_from": ("sentences",)},
    "sentence_pos_weight": {"criteria_from": ("sentences",)},
    "sentence_context": {"criteria_from": ("sentences",)},
    "augment_prob": {"augment": ("synonym_swap", "synonym_insert", "word_swap", "char_perturb", "deletion")},
}
# Settings that never change the trained weights (only speed or memory).
NOT_MODEL = ("threads", "eval_batch_size")
# Settings added after trial keys existed -> the value that trains what the code trained before them: at that
# value the setting stays out of the trial key (and a checkpoint's head_config), so those keys stay valid.
KEYED_UNLESS = {"criteria_from": "post", "sentence_pos_weight": "none", "sentence_context": "window"}


def alternatives(name: str) -> list[dict[str, tuple]]:
    """The conditions under which setting ``name`` shapes the model (any one is enough; none: always)."""
    cond = CONDITIONS.get(name)
    return [] if cond is None else cond if isinstance(cond, list) else [cond]


def is_active(name: str, config: Mapping) -> bool:
    """Whether setting ``name`` shapes the model, given the other settings in ``config``."""
    alts = alternatives(name)
    return not alts or any(all(config.get(o) in allowed for o, allowed in alt.items()) for alt in alts)


def effective_config(train_cfg: Training) -> dict:
    """The settings of the resolved ``train_cfg`` that change the trained model: inert and
    speed-only settings removed (and a KEYED_UNLESS setting at its old behaviour's value).

    Two trial configurations with the same effective config train the same model, so they
    share a trial key (and their folds on disk).
    """
    return {
        k: v
        for k, v in train_cfg.items()
        if k not in NOT_MODEL and is_active(k, train_cfg) and (k not in KEYED_UNLESS or v != KEYED_UNLESS[k])
    }


def _active(spec: Mapping, params: Mapping, training: Mapping, name: str | None = None) -> bool:
    """A parameter is suggested when its ``when:`` holds and the model would use it."""
    merged = {**training, **params}
    for other, allowed in (spec.get("when") or {}).items():
        if merged.get(other) not in allowed:
            return False
    return name is None or is_active(name, merged)


def check_search_space(space: Mapping[str, Mapping], training: Mapping) -> None:
    """Raise ConfigError if the space names unknown keys, has empty or inverted ranges,
    or offers a value the training schema would reject.

    Part of resolving a config (workflow_lib.config.resolve calls it on the completed training
    section): each value the space can offer is checked here, once, against the schema."""
    known = set(load_schema("config")["$defs"]["training"]["properties"])
    problems: list[str] = []
    for name, spec in space.items():
        where = f"hpo.search_space.{name}"
        if name not in known:
            problems.append(f"{where}: not a training setting; searchable keys: {', '.join(sorted(known))}")
            continue
        for other in spec.get("when") or {}:
            if other not in known:
                problems.append(f"{where}.when: refers to {other!r}, which is not a training setting")
        order = list(space)
        alts = alternatives(name)
        for other in dict.fromkeys(o for alt in alts for o in alt):
            if other in space and order.index(other) > order.index(name):
                problems.append(
                    f"{where}: depends on {other!r}, which is declared after it; move "
                    f"{other!r} above {name!r} in hpo.search_space"
                )
        fixed_out = [  # per condition, the fixed settings that rule it out
            [(o, allowed) for o, allowed in alt.items() if o not in space and training.get(o) not in allowed]
            for alt in alts
        ]
        if alts and all(fixed_out):
            why = "; or ".join(
                ", ".join(
                    f"{o} is one of {', '.join(map(str, allowed))} (training.{o} is fixed to {training.get(o)!r})"
                    for o, allowed in out
                )
                for out in fixed_out
            )
            problems.append(
                f"{where}: never used - it only matters when {why}; remove it or add the setting to the search space"
            )
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
            if spec.get("log") and spec.get("step") not in (None, *((1,) if kind == "int" else ())):
                problems.append(
                    f"{where}: log: true and step {spec['step']} cannot be combined (Optuna refuses "
                    "it at the first trial); drop one of them"
                )
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


def suggest(trial, space: Mapping[str, Mapping], training: Training) -> dict[str, Any]:
    """Ask an Optuna trial for every active parameter, in declaration order.

    A parameter is skipped when its ``when:`` fails or when the model would not use it (see
    CONDITIONS), judged on the values suggested so far over the fixed settings of the resolved
    ``training`` section; so a parameter must come after the ones it depends on. ``space`` is the
    resolved hpo.search_space (the schema has filled each range's ``log``).
    """
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if not _active(spec, params, training, name):
            continue
        # low, high and step are JSON numbers: Optuna's distributions make them ints (int) or floats (float)
        if spec.type == "categorical":
            params[name] = trial.suggest_categorical(name, spec.choices)
        elif spec.type == "int":
            params[name] = trial.suggest_int(name, spec.low, spec.high, step=spec.get("step", 1), log=spec.log)
        else:
            params[name] = trial.suggest_float(name, spec.low, spec.high, step=spec.get("step"), log=spec.log)
    return params


def trial_training_config(training: Training, params: Mapping) -> Training:
    """The full training configuration of one trial: the resolved ``training`` section with the trial's
    parameters applied (Training.with_params, which checks it once)."""
    return training.with_params(params)

"""The resolved configuration: typed, frozen sections, made once per job.

``workflow_lib.config.resolve`` checks the merged YAML against the JSON schema (which fills every
default and words every error) and returns a ``Config``. Each job resolves once; every function
then receives only the section it needs (``cfg.training``, ``cfg.data``, ``cfg.checkpoints`` ...) and
never checks or completes it again. A section is a ``dict`` whose contents cannot change (so it
hashes, serialises to JSON and compares like the plain dict the schema completed) read by key or
by attribute; its class names the settings and their types, and ``tests/unit/config/test_sections.py``
holds those names to the schema's.

Configurations that do not come from the YAML are made here too, once each:
- a trial's: the study's training section with the trial's parameters applied
  (``Training.with_params``, used by workflow_lib.config.search_space.trial_training_config);
- one read back from a checkpoint's ``checkpoint.json`` (``Training.resolve``, in learning.checkpoint);
- a developer benchmark's or a test's, from a few settings (``Training.resolve``, ``Encoder.resolve``).
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from workflow_lib.config.schema import complete, load_schema, validate_training

__all__ = [
    "Section",
    "FrozenList",
    "freeze",
    "Config",
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
    "Thresholds",
    "Evaluation",
    "Tracking",
    "Run",
    "Checkpoints",
    "Storage",
]


class _Immutable:
    """What a frozen value shares: copies are the value itself; changing it raises TypeError."""

    __slots__ = ()

    def _frozen(self, *args, **kwargs):
        raise TypeError(
            f"a resolved {type(self).__name__} config is frozen; use .replace(name=value) on its "
            "section for a changed copy"
        )

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class FrozenList(_Immutable, list):
    """A list that cannot change (equal to, and serialised as, the plain list it holds)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _Immutable._frozen
    append = extend = insert = pop = remove = clear = sort = reverse = _Immutable._frozen

    def __reduce__(self):
        return FrozenList, (list(self),)


class Section(_Immutable, dict):
    """One resolved, frozen config section: ``section["epochs"]`` or ``section.epochs``.

    Made only by ``freeze`` from a mapping the schema has completed (``resolve`` on a subclass
    does both). Subclasses annotate their settings; ``NESTED`` names the settings that are
    sections of their own type, ``ITEMS`` the type of every value of a catalogue (encoders).
    """

    __slots__ = ()
    NESTED: ClassVar[Mapping[str, type]] = {}
    ITEMS: ClassVar[type | None] = None
    SCHEMA: ClassVar[tuple[str, ...]] = ()  # the section's path in config.schema.json (properties / $defs)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no setting {name!r}; it has {', '.join(sorted(self)) or 'none'}"
            ) from None

    __setitem__ = __delitem__ = __setattr__ = __delattr__ = __ior__ = _Immutable._frozen
    clear = pop = popitem = setdefault = update = _Immutable._frozen

    def __reduce__(self):
        return freeze, (plain(self), type(self))

    @classmethod
    def subschema(cls) -> dict:
        node: Any = load_schema("config")
        for part in cls.SCHEMA:
            node = node[part]
        return node

    @classmethod
    def resolve(cls, raw: Mapping | None, what: str | None = None):
        """The section ``raw`` gives, completed with the schema's defaults and checked (ConfigError)."""
        label = what or f"{cls.SCHEMA[-1] if cls.SCHEMA else cls.__name__.lower()} config"
        return freeze(complete(raw or {}, cls.subschema(), label), cls)

    def replace(self, **changes: Any):
        """A copy with ``changes`` applied, resolved again as a new configuration of this type."""
        return type(self).resolve({**plain(self), **changes})


@functools.cache
def _int_settings(cls: type[Section]) -> frozenset[str]:
    """The settings ``cls`` annotates ``int`` (or ``int | None``)."""
    out = set()
    for name, hint in typing.get_type_hints(cls).items():
        union = typing.get_origin(hint) in (types.UnionType, typing.Union)
        if hint is int or (union and set(typing.get_args(hint)) == {int, type(None)}):
            out.add(name)
    return frozenset(out)


def _as_annotated(cls: type[Section], name: str, value: Any) -> Any:
    """``value`` as the setting's annotation types it: a float with an integral value (256.0, which the schema's
    "integer" accepts) becomes the int for a setting annotated int; everything else is unchanged."""
    if isinstance(value, float) and value.is_integer() and name in _int_settings(cls):
        return int(value)
    return value


def freeze(value: Any, kind: type | None = None) -> Any:
    """``value`` with every mapping made a (typed) Section and every list a FrozenList; a setting annotated int
    that holds an integral float (the schema's "integer" accepts 256.0) becomes that int."""
    if isinstance(value, Mapping):
        cls = kind if isinstance(kind, type) and issubclass(kind, Section) else Section
        items = {k: freeze(_as_annotated(cls, k, v), cls.ITEMS or cls.NESTED.get(k)) for k, v in value.items()}
        out = dict.__new__(cls)
        dict.__init__(out, items)
        return out
    if isinstance(value, (list, tuple)):
        return FrozenList(freeze(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """``value`` as plain dicts and lists (what the schema completed), e.g. for YAML."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# -- the sections ------------------------------------------------------------------------------


class Split(Section):
    """The train/validation/test split of the posts (folds are cut from train)."""

    SCHEMA = ("properties", "data", "properties", "split")
    protocol: str  # stratified | holdout_80_20
    seed: int
    validation_fraction: float
    test_fraction: float


class Data(Section):
    """Where the posts come from (and the settings of reading them), how they are split and folded."""

    SCHEMA = ("properties", "data")
    NESTED = {"split": Split}
    source: str  # embedded | local | hub
    embedded: Section  # n_posts, seed, generator
    local_path: str | None
    hub: Section  # id, revision, timeout_s
    alignment_threshold: float
    max_post_chars: int | None
    strict: bool
    split: Split
    n_folds: int


class Encoder(Section):
    """One backbone of the encoders catalogue (the settings present depend on ``source``)."""

    SCHEMA = ("$defs", "backbone")
    source: str  # package | local | hub | tiny
    package: str  # source: package
    path: str  # source: local
    hub_id: str  # source: hub
    revision: str | None
    tiny: Section  # source: tiny - hidden_size, num_hidden_layers, ...
    tokenizer_package: str
    max_length: int
    gradient_checkpointing: bool


class Encoders(Section):
    ITEMS = Encoder


class Training(Section):
    """The training section; a trial's configuration is one too (``with_params``)."""

    SCHEMA = ("$defs", "training")
    epochs: int
    batch_size: int
    eval_batch_size: int
    learning_rate: float
    head_learning_rate: float | None
    weight_decay: float
    warmup_ratio: float
    max_grad_norm: float | None
    input_format: str
    long_posts: str
    window_overlap: float
    max_windows: int | None
    window_aggregation: str
    criteria_from: str  # post | sentences
    sentence_aggregation: str  # max | logsumexp | noisy_or | attention
    sentence_loss_weight: float
    hard_negative_weight: float
    sentence_pos_weight: str
    sentence_context: str  # window | alone
    evidence_task: bool
    multitask: str
    coupling: str
    coupling_pooling: str
    evidence_head: str
    evidence_loss_weight: float
    evidence_threshold: float
    head: str
    head_hidden: int
    pooling: str
    freeze_layers: int
    cache_frozen: bool
    dropout: float
    loss: str
    loss_gamma: float
    loss_alpha: float
    label_smoothing: float
    finetune: str
    lora_r: int
    lora_alpha: float
    lora_dropout: float
    lora_target_modules: FrozenList
    augment: str
    augment_prob: float
    precision: str
    group_by_length: bool
    seed: int
    threads: int | None

    @classmethod
    def resolve(cls, raw: Mapping | None, what: str | None = None) -> Training:
        # validate_training also refuses the augmentation recipes that cannot run offline
        return freeze(validate_training(raw or {}, what=what or "training config"), cls)

    def with_params(self, params: Mapping[str, Any], what: str = "trial configuration") -> Training:
        """This training section with a trial's parameters applied: the trial's one configuration."""
        return Training.resolve({**plain(self), **params}, what=what)

    def replace(self, **changes: Any) -> Training:
        return self.with_params(changes, what="training config")


class Objective(Section):
    # a trial's score: criteria_weight x hpo.metric + evidence_weight x evidence_metric
    SCHEMA = ("properties", "hpo", "properties", "objective")
    criteria_weight: float
    evidence_weight: float
    evidence_metric: str  # token_f1 | char_f1 | exact_match


class Hpo(Section):
    SCHEMA = ("properties", "hpo")
    NESTED = {"objective": Objective}
    n_trials: int
    metric: str
    sampler: Section  # name, seed, n_startup_trials
    pruner: Section  # enabled, n_startup_trials, n_warmup_steps
    search_space: Section  # setting -> {type, choices | low/high[, step, log][, when]}
    objective: Objective
    n_workers: int
    storage: str | None
    heartbeat_s: int


class Refit(Section):
    SCHEMA = ("properties", "refit")
    max_epochs: int
    patience: int


class Benchmark(Section):
    SCHEMA = ("properties", "benchmark")
    batch_sizes: FrozenList
    seq_lengths: FrozenList
    warmup: int
    iterations: int
    threads: int | None
    posts_sample: int


class Selection(Section):
    SCHEMA = ("properties", "selection")
    latency_budget_ms: float | None
    latency_metric: str
    latency_batch_size: int
    latency_seq_length: int
    tie_tolerance: float
    baseline: bool


class Final(Section):
    SCHEMA = ("properties", "final")
    epochs: int | None


class Thresholds(Section):
    SCHEMA = ("properties", "thresholds")
    source: str  # oof | validation | fixed


class Evaluation(Section):
    SCHEMA = ("properties", "evaluation")
    bootstrap: int
    seed: int


class Tracking(Section):
    SCHEMA = ("properties", "tracking")
    uri: str | None
    experiment: str
    enabled: bool
    registered_model: str
    model_alias: str


class Run(Section):
    SCHEMA = ("properties", "run")
    mode: Section  # stage -> reuse_if_exists | force_new | resume_if_incomplete
    benchmark_all_variants: bool
    benchmark_strategy: str


class Checkpoints(Section):
    SCHEMA = ("properties", "checkpoints")
    enabled: bool
    keep_last_n: int
    keep_best_k: int


class Storage(Section):
    SCHEMA = ("properties", "storage")
    preflight: bool
    monitor: bool
    monitor_interval_s: float
    critical_free_fraction: float


class Config(Section):
    """A whole resolved config (workflow_lib.config.resolve makes it; nothing else does)."""

    NESTED = {
        "data": Data,
        "encoders": Encoders,
        "training": Training,
        "hpo": Hpo,
        "refit": Refit,
        "benchmark": Benchmark,
        "selection": Selection,
        "final": Final,
        "thresholds": Thresholds,
        "evaluation": Evaluation,
        "tracking": Tracking,
        "run": Run,
        "checkpoints": Checkpoints,
        "storage": Storage,
    }
    results_dir: str
    predict_input: str | None
    data: Data
    backbones: FrozenList
    encoders: Encoders
    training: Training
    hpo: Hpo
    refit: Refit
    benchmark: Benchmark
    selection: Selection
    final: Final
    thresholds: Thresholds
    evaluation: Evaluation
    tracking: Tracking
    run: Run
    checkpoints: Checkpoints
    storage: Storage

    @classmethod
    def resolve(cls, raw: Mapping | None, what: str | None = None) -> Config:
        raise TypeError(
            "a whole config is resolved by workflow_lib.config.resolve (schema, cross-field rules, "
            "freezing), not by Config.resolve"
        )


def section_types() -> Iterable[type[Section]]:
    """Every typed section class with its schema path (for the test that holds them to the schema)."""
    return (
        Split,
        Data,
        Encoder,
        Training,
        Objective,
        Hpo,
        Refit,
        Benchmark,
        Selection,
        Final,
        Thresholds,
        Evaluation,
        Tracking,
        Run,
        Checkpoints,
        Storage,
    )

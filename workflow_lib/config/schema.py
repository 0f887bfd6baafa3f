"""The config schema: load it, validate against it, fill its defaults. Imports nothing of the project.

The JSON schema (workflow_lib/config/schemas/config.schema.json) is the contract; its ``default`` values
are the defaults. Errors name the offending key path, what was found and what is allowed, so a user
can fix the YAML without reading code. This is the low level under workflow_lib.config (which loads
and resolves whole configs) and workflow_lib.config.search_space (which checks and samples trials): both
import it, it imports neither. workflow_lib.config re-exports ConfigError, load_schema and validate.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

# The augmentation recipes that run offline (workflow_lib.learning.augment implements them) and those the
# schema names but that are refused, with the reason a user reads. They live here, not in augment,
# because validating a training section refuses the unavailable ones (and augment imports keys,
# which imports search_space, which imports this module); workflow_lib.learning.augment re-exports them.
RECIPES: tuple[str, ...] = ("synonym_swap", "synonym_insert", "word_swap", "char_perturb", "deletion")
UNAVAILABLE_RECIPES: dict[str, str] = {
    "embedding_swap": "TextAttack's EmbeddingAugmenter needs the counter-fitted word embeddings "
    "(paragramcf), which it downloads from TextAttack's server at first use; "
    "these machines reach no such server",
    "back_translation": "TextAttack's BackTranslationAugmenter needs MarianMT translation models from "
    "the Hugging Face Hub, which these machines cannot reach",
    "checklist": "TextAttack's CheckListAugmenter needs flair's NER model (flair/ner-english) from the "
    "Hugging Face Hub for its location and name swaps, which these machines cannot reach",
    "clare": "TextAttack's CLAREAugmenter needs the distilroberta-base masked language model and the "
    "Universal Sentence Encoder, downloaded at first use; these machines cannot reach them",
    "back_transcription": "TextAttack's BackTranscriptionAugmenter needs text-to-speech and speech "
    "recognition models from the Hugging Face Hub, which these machines cannot reach",
}

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


class ConfigError(ValueError):
    """A configuration problem a user fixes in their YAML."""


@cache
def load_schema(name: str) -> dict:
    """Return one of the JSON schemas shipped in workflow_lib/config/schemas/."""
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
    """One actionable line for one schema violation (a subschema's ``errorMessage``, e.g. a cross-field rule's, wins)."""
    where = _key_path(error)
    if isinstance(error.schema, Mapping) and isinstance(error.schema.get("errorMessage"), str):
        return f"{where}: {error.schema['errorMessage']}"
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
    errors = sorted(
        validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
    )
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
            return any(o is not e and list(o.absolute_path)[: len(p)] == p for o in leaves)

        lines = sorted({_describe(e, schema_name) for e in leaves if not _shadowed(e)})
        label = what or schema_name
        raise ConfigError(f"invalid {label}:\n  - " + "\n  - ".join(lines))
    return instance


def validate_training(train_cfg: Mapping, what: str = "training config") -> dict:
    """Validate (and complete) one training configuration - fixed settings merged with a trial's params."""
    cfg = complete(train_cfg, load_schema("config")["$defs"]["training"], what)
    if cfg["augment"] in UNAVAILABLE_RECIPES:
        raise ConfigError(
            f"invalid {what}:\n  - augment: {cfg['augment']!r} cannot run here: "
            f"{UNAVAILABLE_RECIPES[cfg['augment']]}; choose one of none, {', '.join(RECIPES)}"
        )
    return cfg


def complete(obj: Mapping, subschema: Mapping, what: str) -> dict:
    """``obj`` checked against ``subschema`` (a part of config.schema.json) and completed with its defaults."""
    schema = load_schema("config")
    cfg = copy.deepcopy(dict(obj))
    validator = _DefaultFilling({**subschema, "$defs": schema["$defs"]})
    errors = list(validator.iter_errors(cfg))
    if errors:
        lines = sorted({_describe(e, "config") for e in errors})
        raise ConfigError(f"invalid {what}:\n  - " + "\n  - ".join(lines))
    return cfg

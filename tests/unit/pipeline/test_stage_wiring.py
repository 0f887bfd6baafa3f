"""How the workflow reaches the stages: every script calls one pipeline.stages function with the paths its
rule declares; the final key and the predict target's input are computed once, by the Plan."""

from __future__ import annotations

import ast
import re

import pytest

from workflow_lib.pipeline import stages
from workflow_lib.pipeline.plan import Plan
from workflow_lib.shipping.predictor import PredictError


def _calls(tree: ast.Module) -> list[str]:
    """Dotted names of every call in ``tree`` (``stages.final``, ``jobs.job`` ...)."""
    out = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
        ):
            out.append(f"{node.func.value.id}.{node.func.attr}")
    return out


def test_every_script_is_an_adapter_of_one_stage(repo):
    scripts = sorted((repo / "scripts").glob("*.py"))
    assert scripts
    for path in scripts:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = [
            (node.module, alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        ] + [(alias.name, None) for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        assert sorted(imports) == [("workflow_lib.pipeline", "jobs"), ("workflow_lib.pipeline", "stages")], path.name
        stage_calls = [c for c in _calls(tree) if c.startswith("stages.")]
        assert len(stage_calls) == 1, f"{path.name}: {stage_calls}"
        assert callable(getattr(stages, stage_calls[0].split(".", 1)[1], None)), f"{path.name}: {stage_calls[0]}"
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 25, f"{path.name} is more than an adapter"


def test_rules_name_their_paths_layout_and_read_the_config_by_attribute(repo):
    files = [*sorted((repo / "rules").glob("*.smk")), repo / "Snakefile"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bL\.", text), f"{path.name}: the paths object is LAYOUT"
        assert "CFG[" not in text, f"{path.name}: read the resolved config by attribute (CFG.selection.baseline)"
    # the final key has one expression, in common.smk's final_key()
    uses = {p.name: p.read_text(encoding="utf-8").count("PLAN.final_key") for p in files}
    assert sum(uses.values()) == 1 and uses["common.smk"] == 1, uses


def test_final_key_of_a_selection_report_is_the_planned_final_key(base_config):
    plan = Plan(base_config, main_process=False)
    report = {"selected": {"trial_key": "a" * 12}, "co_best": [{"trial_key": "b" * 12}]}
    assert plan.final_key_of(report) == plan.final_key("a" * 12, ["b" * 12])
    assert plan.final_key_of({**report, "co_best": []}) == plan.final_key("a" * 12)
    assert plan.final_key_of(report) != plan.final_key("a" * 12)


def test_predict_input_needs_an_existing_file(tmp_path, base_config, repo):
    from workflow_lib import config

    def with_input(path):
        return config.load(repo / "config" / "config.yaml", overrides={"predict_input": path})

    assert base_config.predict_input is None
    with pytest.raises(PredictError, match=r"pass --config predict_input=PATH"):
        Plan(base_config).predict_input()
    with pytest.raises(PredictError, match=r"predict_input: '\S+nope.csv' is not a file"):
        Plan(with_input(str(tmp_path / "nope.csv"))).predict_input()
    (tmp_path / "in.csv").write_text("post_id,text\np1,a\n")
    assert Plan(with_input(str(tmp_path / "in.csv"))).predict_input() == str(tmp_path / "in.csv")


def test_the_evaluation_page_pattern_is_filled_with_the_final_key():
    assert stages._fill_final_key("results/final/{final_key}/evaluation_report.html", "f" * 12) == (
        f"results/final/{'f' * 12}/evaluation_report.html"
    )
    with pytest.raises(ValueError, match=r"has no \{final_key\} to fill in"):
        stages._fill_final_key("results/final/x/evaluation_report.html", "f" * 12)


def test_the_model_card_must_lie_inside_the_model_folder():
    assert stages._inside("results/final/k/model/README.md", "results/final/k/model") == "README.md"
    for outside in ("results/final/k/README.md", "results/final/k/model"):
        with pytest.raises(ValueError, match=r"is not inside the model folder results/final/k/model"):
            stages._inside(outside, "results/final/k/model")


def test_every_script_passes_the_stage_exactly_the_arguments_it_takes(repo):
    """Each adapter's keywords name parameters of its stage, and every parameter without a default is passed
    (e.g. refit's fold_metrics, the trial's out-of-fold files; selection's baseline_paths and data_card_path)."""
    import inspect

    for path in sorted((repo / "scripts").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        call = next(
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and isinstance(n.func.value, ast.Name)
            and n.func.value.id == "stages"
        )
        params = inspect.signature(getattr(stages, call.func.attr)).parameters
        passed = {k.arg for k in call.keywords}
        assert passed <= set(params), f"{path.name}: {sorted(passed - set(params))} are not parameters"
        required = {n for n, p in params.items() if p.default is inspect.Parameter.empty and p.kind is p.KEYWORD_ONLY}
        assert required <= passed, f"{path.name}: {sorted(required - passed)} not passed"

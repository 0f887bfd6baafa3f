"""envs/ stays in step with pyproject, and CI runs exactly the README's commands."""

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def _lock(repo):
    pins = {}
    for line in (repo / "envs" / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_every_dependency_is_pinned_and_satisfied(repo):
    deps = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = _lock(repo)
    problems = []
    for dep in deps:
        req = Requirement(dep)
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req.name} missing from envs/requirements.lock")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req.name}=={pinned} does not satisfy {req.specifier}")
    assert problems == []
    assert pins["torch"] == "2.13.0"


def _readme_commands(repo):
    text = (repo / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S)
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip()]


def test_ci_runs_the_readme_install_and_test_commands(repo):
    cmds = _readme_commands(repo)
    install = next(c for c in cmds if "install.sh" in c)
    test = next(c for c in cmds if "pytest" in c)
    ci = [line.strip() for line in (repo / ".ci" / "run").read_text().splitlines()]
    assert any(line.startswith(install) for line in ci), (install, ci)
    assert test in ci, (test, ci)
    assert "snakemake --profile profiles/local" in cmds

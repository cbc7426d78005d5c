"""dvc.yaml's deps match what each stage script imports, so that DVC reruns a stage exactly when
code it runs has changed: a missing dep leaves a stale output, a stale dep reruns for nothing.

The import closure is computed statically with `ast` (nothing is imported), following module-level
and function-local imports; `if TYPE_CHECKING:` blocks are skipped since they never run.
"""

from __future__ import annotations

import ast
import copy
import re
from functools import cache
from pathlib import Path

import yaml

from tests.helpers import ROOT

SRC = "src"  # folder holding the charaid package
PACKAGE = "charaid"
STAGE_CMD = re.compile(r"python (stages/\w+\.py)")


@cache
def module_file(module: str) -> str | None:
    """The file (relative to ROOT) of a charaid module or package, or None if there is none."""
    base = Path(SRC, *module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if (ROOT / path).is_file():
            return path.as_posix()
    return None


def with_parents(module: str) -> list[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py before c."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: at any depth, except under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.stmt] = list(tree.body)
    while stack:  # statements only: an import is one, and skipping expressions keeps this fast
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in {
            getattr(node.test, "id", None),
            getattr(node.test, "attr", None),
        }:
            stack.extend(node.orelse)
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            stack.extend(getattr(node, field, []))
    return found


@cache
def imported_files(path: str) -> tuple[str, ...]:
    """The charaid files that the file at `path` (relative to ROOT) imports directly."""
    tree = ast.parse((ROOT / path).read_text(), path)
    parts = Path(path).with_suffix("").parts
    # the package that relative imports start from (stage scripts are outside any package)
    package = list(parts[1:-1]) if parts[0] == SRC else []
    modules: list[str] = []
    for node in runtime_imports(tree):
        if isinstance(node, ast.Import):
            modules += [m for a in node.names for m in with_parents(a.name)]
            continue
        base = node.module or ""
        if node.level:
            prefix = package[: len(package) - node.level + 1]
            base = ".".join(prefix + ([base] if base else []))
        modules += with_parents(base)
        # `from charaid.x import y`: y is a submodule when it has a file, else a name in x
        modules += [f"{base}.{a.name}" for a in node.names if a.name != "*"]
    files = [module_file(m) for m in modules if m.split(".")[0] == PACKAGE]
    return tuple(dict.fromkeys(f for f in files if f))


def closure(script: str) -> dict[str, list[str]]:
    """Every file the script runs (itself included), each with the import chain that reaches it."""
    chains = {script: [script]}
    todo = [script]
    while todo:  # breadth first, so each chain is a shortest one
        current = todo.pop(0)
        for f in imported_files(current):
            if f not in chains:
                chains[f] = chains[current] + [f]
                todo.append(f)
    return chains


def covers(dep: str, file: str) -> bool:
    """A dep covers its own file, and every file under it when it is a folder."""
    return file == dep or file.startswith(dep + "/")


def dep_problems(dvc: dict) -> list[str]:
    """What is wrong with each `python stages/<x>.py` stage's deps, one sentence per problem."""
    problems = []
    for name, stage in dvc["stages"].items():
        match = STAGE_CMD.fullmatch(stage.get("cmd", "").strip())
        if not match:
            continue
        # only code deps are checked: data/, models/ and ${...} interpolations are left alone
        deps = [d.rstrip("/") for d in stage.get("deps", []) if isinstance(d, str)]
        code = [d for d in deps if d.startswith(("stages/", f"{SRC}/{PACKAGE}"))]
        chains = closure(match.group(1))
        for file, chain in chains.items():
            if not any(covers(d, file) for d in code):
                # a subpackage is listed as its folder (as src/charaid/detector is)
                folder = file.rpartition("/")[0]
                line = folder if folder.startswith(f"{SRC}/{PACKAGE}/") else file
                problems.append(
                    f"stage {name}: {file} is imported but not a dep "
                    f"({' -> '.join(chain)}); add `      - {line}` to its deps in dvc.yaml"
                )
        for dep in code:
            if not any(covers(dep, f) for f in chains):
                problems.append(
                    f"stage {name}: dep {dep} is never imported by {match.group(1)}; "
                    "remove it from its deps in dvc.yaml (it reruns the stage for nothing)"
                )
    return problems


@cache
def parsed_dvc() -> dict:
    return yaml.load(
        (ROOT / "dvc.yaml").read_text(),
        Loader=getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader,
    )


def load_dvc() -> dict:
    """A fresh copy of dvc.yaml, parsed once (the tests below edit their copy)."""
    return copy.deepcopy(parsed_dvc())


def test_dvc_deps_match_stage_imports():
    problems = dep_problems(load_dvc())
    assert not problems, "dvc.yaml deps drifted from the imports:\n" + "\n".join(problems)


def test_dvc_deps_checker_reports_a_dropped_dep():
    # drop a module file dep that no folder dep covers, so the drop itself is what gets reported
    dvc = load_dvc()
    name, dropped = next(
        (name, d)
        for name, stage in dvc["stages"].items()
        for d in stage["deps"]
        if d.startswith(f"{SRC}/{PACKAGE}/")
        and d.endswith(".py")
        and not any(d.startswith(folder + "/") for folder in stage["deps"])
    )
    dvc["stages"][name]["deps"].remove(dropped)
    problems = dep_problems(dvc)
    assert any(p.startswith(f"stage {name}: {dropped} is imported") for p in problems), problems


def test_dvc_deps_checker_reports_a_stale_dep():
    dvc = load_dvc()
    stage = dvc["stages"]["make_demo"]  # draws the demo show: never runs the web server
    stage["deps"].append(f"{SRC}/{PACKAGE}/serve.py")
    problems = dep_problems(dvc)
    assert any(f"dep {SRC}/{PACKAGE}/serve.py is never imported" in p for p in problems), problems

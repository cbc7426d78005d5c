"""The import tower: the longest chain of module-level imports inside charaid, and whether the
inference path (`predict`, `serve`) reaches training code.

    python bench/import_chain.py

Module-level imports only (function-local ones run late and are how cycles are broken); the
closure check includes both (tests/unit/test_dvc_deps.py).
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
TRAINING = ("charaid.train", "charaid.train_detector")


def module_of(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_of(p): p for p in SRC.rglob("*.py")}


def resolve(name: str) -> str | None:
    """The charaid module `name` is or lies in (`charaid.x.y` -> charaid.x.y or charaid.x)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@cache
def top_level_imports(module: str) -> tuple[str, ...]:
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found += [f"{base}.{a.name}" for a in node.names]
    targets = {resolve(n) for n in found if n.split(".")[0] == "charaid"}
    return tuple(sorted(t for t in targets if t and t != module))


@cache
def longest_from(module: str, seen: frozenset = frozenset()) -> tuple[str, ...]:
    best: tuple[str, ...] = ()
    for nxt in top_level_imports(module):
        if nxt not in seen:
            chain = longest_from(nxt, seen | {module})
            best = max(best, chain, key=len)
    return (module, *best)


def reaches(start: str, targets: tuple[str, ...]) -> list[str]:
    """A module-level chain from `start` to one of `targets`, if any."""
    todo, came = [start], {start: [start]}
    while todo:
        current = todo.pop(0)
        if current in targets:
            return came[current]
        for nxt in top_level_imports(current):
            if nxt not in came:
                came[nxt] = came[current] + [nxt]
                todo.append(nxt)
    return []


def main() -> None:
    chain = max((longest_from(m) for m in sorted(MODULES)), key=len)
    print(f"longest module-level import chain: {len(chain)} modules")
    print("  " + " -> ".join(m.removeprefix("charaid.") for m in chain))
    failed = False
    for start in ("charaid.predict", "charaid.serve"):
        path = reaches(start, TRAINING)
        failed |= bool(path)
        print(f"{start}: " + (" -> ".join(path) if path else "does not import training code"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

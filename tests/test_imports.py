"""The package layering, checked on the source: data flows train -> model dir -> index dir -> results.

Every ``import`` of ``indexes/``, ``retrieval/``, ``trainers/`` and ``eval/`` is read with :mod:`ast`
(module level and inside functions, relative imports resolved), and two kinds of problem are reported
with the module and line:

- back-edges: ``indexes`` imports none of our packages; ``retrieval`` outside ``retrieval/cli`` (the
  top of the stack, which may import anything) imports only ``indexes`` and itself; ``eval`` never
  imports ``trainers``;
- import cycles between modules of one package, even through a function-level import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("indexes", "retrieval", "trainers", "eval")
OURS = (*PACKAGES, "bench", "tests")
ALLOWED = {  # which of our other packages each package may import
    "indexes": set(),
    "retrieval": {"indexes"},
    "trainers": {"indexes", "retrieval", "eval"},  # dev scoring during training uses eval
    "eval": {"indexes", "retrieval"},
}
CLI_LAYER = ("retrieval.cli", "retrieval.__main__")  # entry points: may import every package


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module (the longest known module of the dotted name)
    path: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{self.source} ({self.path.relative_to(root)}:{self.line})"


def modules_under(root: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file of :data:`PACKAGES` under ``root``."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _known(name: str, modules: dict[str, Path]) -> str:
    """The longest prefix of ``name`` that is a module (``name`` itself when none is known)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return name


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Edge]:
    """Every import of one of our packages in ``path``, wherever it sits in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
            ]
        for name in names:
            if name.split(".")[0] in OURS:
                yield Edge(module, _known(name, modules), path, node.lineno)


def all_edges(root: Path) -> list[Edge]:
    modules = modules_under(root)
    edges = (edge for module, path in modules.items() for edge in imports_of(module, path, modules))
    return list(dict.fromkeys(edges))  # one edge per line, however many names it imports


def back_edges(edges: list[Edge], root: Path) -> list[str]:
    problems = []
    for edge in edges:
        source_package, target_package = edge.source.split(".")[0], edge.target.split(".")[0]
        if edge.source.startswith(CLI_LAYER) or source_package == target_package:
            if (
                source_package == target_package == "retrieval"
                and edge.target.startswith(CLI_LAYER)
                and not edge.source.startswith(CLI_LAYER)
            ):
                problems.append(f"{edge.where(root)} imports {edge.target}: the CLI is the top of the stack")
            continue
        if target_package not in ALLOWED[source_package]:
            allowed = ", ".join(sorted(ALLOWED[source_package])) or "none of our packages"
            problems.append(
                f"{edge.where(root)} imports {edge.target}: {source_package} may import {allowed}"
            )
    return problems


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycles(edges: list[Edge], root: Path) -> list[str]:
    inside = [e for e in edges if e.source != e.target and e.source.split(".")[0] == e.target.split(".")[0]]
    graph: dict[str, set[str]] = {}
    for edge in inside:
        graph.setdefault(edge.source, set()).add(edge.target)
    problems = []
    for component in _components(graph):
        links = [
            f"{e.where(root)} imports {e.target}"
            for e in inside
            if e.source in component and e.target in component
        ]
        problems.append(f"import cycle between {', '.join(component)}: {'; '.join(links)}")
    return problems


def check_imports(root: Path) -> list[str]:
    """Every back-edge and import cycle under ``root``, one message each."""
    edges = all_edges(root)
    return back_edges(edges, root) + cycles(edges, root)


def test_the_packages_have_no_back_edges_and_no_import_cycles() -> None:
    assert modules_under(ROOT), f"no modules found under {ROOT}"
    problems = check_imports(ROOT)
    assert not problems, "\n".join(problems)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_check_reports_back_edges_and_cycles(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "indexes/__init__.py": "",
            "indexes/store.py": "import numpy\n\n\ndef load():\n    from retrieval.reader import read\n",
            "retrieval/__init__.py": "",
            "retrieval/reader.py": "from . import writer\n",
            "retrieval/writer.py": "def f():\n    from .reader import read\n",
            "retrieval/helper.py": "import trainers.loop\nfrom retrieval.cli import main\n",
            "retrieval/cli/__init__.py": "from trainers.loop import run\nfrom eval import report\n",
            "trainers/__init__.py": "",
            "trainers/loop.py": "from indexes import store\nfrom retrieval.reader import read\n",
            "eval/__init__.py": "",
            "eval/report.py": "from trainers import loop\n",
        },
    )
    problems = check_imports(tmp_path)
    assert len(problems) == 5, "\n".join(problems)
    assert any(
        p.startswith("indexes.store (indexes/store.py:5) imports retrieval.reader: indexes may import none")
        for p in problems
    )
    assert any(
        p.startswith("retrieval.helper (retrieval/helper.py:1) imports trainers.loop") for p in problems
    )
    assert any(
        p.startswith("retrieval.helper (retrieval/helper.py:2) imports retrieval.cli: the CLI is the top")
        for p in problems
    )
    assert any(p.startswith("eval.report (eval/report.py:1) imports trainers.loop") for p in problems)
    cycle = [p for p in problems if p.startswith("import cycle")]
    assert cycle == [
        "import cycle between retrieval.reader, retrieval.writer: "
        "retrieval.reader (retrieval/reader.py:1) imports retrieval.writer; "
        "retrieval.writer (retrieval/writer.py:2) imports retrieval.reader"
    ]
    (tmp_path / "retrieval" / "writer.py").write_text("def f():\n    return 1\n")
    (tmp_path / "retrieval" / "helper.py").write_text("from indexes.store import load\n")
    (tmp_path / "eval" / "report.py").write_text("from retrieval import reader\n")
    (tmp_path / "indexes" / "store.py").write_text("from . import other\n")
    assert check_imports(tmp_path) == []

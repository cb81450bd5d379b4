"""Import structure of src/soritune: no import cycle inside a package, packages import one way, and
`soritune --help` pulls in no heavy library.

The graph is built with `ast` from every `import` statement, at the top of a file or inside a
function (a function-local import is still a dependency, only a later one). Imports under
`if TYPE_CHECKING:` and `if __name__ == "__main__":` are left out: they never run while the module
is imported.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Cycles that another piece of work removes; each entry says which. The test fails when one of them
# disappears, so the list only ever shrinks.
KNOWN_CYCLES: set[frozenset[str]] = set()

HEAVY = ("torch", "transformers", "peft", "ctranslate2", "accelerate", "bitsandbytes", "datasets", "pyarrow",
         "fastapi", "uvicorn", "ray", "matplotlib", "faster_whisper", "vosk")


def _modules(root: Path) -> dict[str, Path]:
    mods = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _skipped_block(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` / `if __name__ == "__main__":`: never run on import."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    if isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
        return True
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def _imports(tree: ast.AST):
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if _skipped_block(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            stack.append(child)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same source tree it imports (top level and function-local)."""
    mods = _modules(root)
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        out = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                out |= {a.name for a in node.names if a.name in mods}
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in mods:
                    out.add(sub)
                elif target in mods:
                    out.add(target)
        graph[name] = out - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(comp)
    return found


def _package(module: str) -> str:
    """soritune.data.corpora.kspon -> data; top-level modules (soritune.audio) are their own unit."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_the_graph_builder_sees_top_level_function_local_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "sub" / "c.py").write_text("import pkg.sub.a\n")
    (pkg / "sub" / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import a\n"
                                      "if __name__ == '__main__':\n    import pkg.sub.a\n")
    graph = import_graph(pkg)
    assert graph["pkg.sub.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.sub.a"} and graph["pkg.sub.d"] == set()
    assert cycles(graph) == [{"pkg.sub.a", "pkg.sub.b", "pkg.sub.c"}]


def test_no_import_cycle_inside_a_package():
    graph = import_graph(SRC / "soritune")
    assert "soritune.compress.masks" in graph["soritune.compress.prune_lottery"]  # a function-local import is seen
    inside = [c for c in cycles(graph) if len({_package(m) for m in c}) == 1]
    new = [sorted(c) for c in inside if frozenset(c) not in KNOWN_CYCLES]
    assert not new, f"import cycles inside a package: {new}"
    gone = [sorted(c) for c in KNOWN_CYCLES if not any(frozenset(c) == frozenset(x) for x in inside)]
    assert not gone, f"no longer a cycle, remove from KNOWN_CYCLES: {gone}"


def test_packages_import_one_way():
    graph = import_graph(SRC / "soritune")
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        packages.setdefault(_package(module), set()).update(_package(t) for t in targets)
    for name, targets in packages.items():
        targets.discard(name)
        targets.discard("soritune")  # the package root only holds the version
    assert cycles(packages) == [], "packages import each other in a loop"


def test_help_imports_no_heavy_library():
    """`soritune --help` and every verb's `--help` stay fast: no torch, transformers, ... imported."""
    code = f"""
import json, sys
import typer
from soritune.cli import app, main
argvs = [["--help"]]
group = typer.main.get_command(app)
for name, cmd in group.commands.items():
    argvs.append([name, "--help"])
    for sub in getattr(cmd, "commands", {{}}):
        argvs.append([name, sub, "--help"])
for argv in argvs:
    try:
        main(argv)
    except SystemExit as e:
        assert e.code in (0, None), (argv, e.code)
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
sys.stderr.write("RESULT " + json.dumps({{"argvs": len(argvs), "heavy": heavy}}) + "\\n")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stderr.split("RESULT ", 1)[1])
    assert result["argvs"] > 10  # the top-level help and every verb's
    assert result["heavy"] == [], f"--help imported {result['heavy']}"

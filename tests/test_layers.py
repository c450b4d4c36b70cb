"""The package's layers: imports go one way, down (imports inside functions included).

    frontends   the pytest plugin, the `benchsuite` command, the W&B agent; experiments/
    sweep       the search (engines, trials, the frontier)
    track       outputs: results table, W&B, report, baseline, summary
    broker      the Redis transport: jobs, blobs, workers
    pipeline    stages, run / measure-again / calibrate, the result cache, the executors
    bench       OpenVINO: ONNX -> IR, paired rounds, benchmark_app, INT8, the latency table
    export      torch -> ONNX
    prune       torch: pruners, scheduler, training
    latency     the latency model (table lookup, a torch model's convs)
    data        datasets and the validation split
    models      the networks
    recipe      the Distiller recipe grammar and the Case (no torch)
    core        errors, paths, hashing, progress, statistics, the result record, job messages

A module may import its own package and the packages below it, never one above: a test of the
package's own source, so a new import that breaks the order fails here.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import benchsuite

LAYERS = ("core", "recipe", "models", "data", "latency", "prune", "export", "bench",
          "pipeline", "broker", "track", "sweep", "frontends")
TOP = {"experiments": "frontends", "schedules": "core"}  # packaged tests, recipe data
PACKAGE = Path(benchsuite.__file__).resolve().parent
# what each low layer must not import, wherever (third-party)
FORBIDDEN = {"core": ("torch", "openvino", "pytest", "redis", "torch_pruning", "nncf"),
             "recipe": ("torch", "openvino", "pytest", "redis", "torch_pruning", "nncf")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path) -> set[str]:
    """Every module an `import` or `from ... import` statement names, at any depth (inside
    functions and `if TYPE_CHECKING:` too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _layer(module: str) -> str:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else ""
    return TOP.get(name, name) or "core"  # the package itself: its version


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: {n for n in _imports(p) if n in modules and n != m} for m, p in modules.items()}


def test_every_package_has_a_layer_and_at_most_6_top_level_modules() -> None:
    layers = {_layer(m) for m in _modules() if m != "benchsuite"}
    top_files = [p for p in PACKAGE.glob("*.py")]
    assert layers <= set(LAYERS), f"packages without a layer: {sorted(layers - set(LAYERS))}"
    assert len(top_files) <= 6, top_files


def test_imports_go_down_only() -> None:
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = [f"{a} -> {b}" for a, targets in _graph().items() for b in sorted(targets)
              if a != "benchsuite" and rank[_layer(b)] > rank[_layer(a)]]
    assert not upward, "imports that go up a layer:\n" + "\n".join(sorted(upward))


def test_no_module_cycles() -> None:
    graph = _graph()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"module cycles: {cycles}"


def test_the_low_layers_need_no_torch_openvino_pytest_or_redis() -> None:
    bad = defaultdict(list)
    for module, path in _modules().items():
        for name in _imports(path):
            if name.split(".")[0] in FORBIDDEN.get(_layer(module), ()):
                bad[module].append(name)
    assert not bad, dict(bad)


def test_no_two_modules_share_a_basename() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for module in _modules():
        if module.count(".") >= 1:
            seen[module.rsplit(".", 1)[1]].append(module)
    shared = {k: v for k, v in seen.items() if len(v) > 1}
    assert not shared, shared


def test_the_checker_sees_an_import_inside_a_function(tmp_path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from benchsuite.frontends.cli import main\n")
    assert "benchsuite.frontends.cli.main" in _imports(source)

"""The layers of ``src/aisp`` and the absence of import cycles, read from the source's AST.

Every ``import`` counts: at module top, inside a function, and under ``TYPE_CHECKING``.

    cli, server, bench, cluster  ->  api  ->  runtime  ->  pipeline  ->  models  ->  cache  ->  core
                                        |                                              ^
                                        +-> store ---------------------------------------+
                          api  ->  delivery (MQTT, webhooks)  ->  store, core

A module may import its own layer and the layers below it. ``client`` sits in the top layer beside
cli, server and bench, and imports only core, cache and models (the library's types), never the
server. The store sits beside the pipeline and imports only core; the pipeline never imports the
store. The package root ``aisp/__init__.py`` is
the lazy facade over every layer (its names resolve on first use), so it is the one exception.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = SRC / "aisp"

CORE = 0
#: top-level module or package under ``aisp`` -> layer
LAYERS: dict[str, int] = {
    "errors": CORE,
    "settings": CORE,
    "logs": CORE,
    "_lazy": CORE,
    "events": CORE,
    "netpolicy": CORE,
    "cpu_budget": CORE,
    "cache": 1,
    "models": 2,
    "pipeline": 3,
    "store": 3,
    "runtime": 4,
    "delivery": 4,
    "api": 5,
    "cli": 6,
    "server": 6,
    "bench": 6,
    "client": 6,
    "cluster": 6,
    "__main__": 6,
}
#: areas that may import only some of the layers below them
ONLY: dict[str, set[str]] = {
    "store": {"errors", "settings", "logs", "_lazy", "events", "store"},
    "pipeline": {
        "errors", "settings", "logs", "_lazy", "events", "netpolicy", "cpu_budget", "cache", "models",
        "pipeline",
    },
    "delivery": {"errors", "settings", "logs", "_lazy", "events", "netpolicy", "store", "delivery"},
    # the remote client: the library's result, stats and event types, never the server or a runtime
    "client": {"errors", "logs", "events", "cache", "models", "client"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported aisp module, line) for every import in the file, resolved to a module we have."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("aisp."):
                out.append((target, node.lineno))
    return out


GRAPH: dict[str, set[str]] = defaultdict(set)
LINES: dict[tuple[str, str], int] = {}
for _name, _path in MODULES.items():
    for _target, _line in _imports(_path):
        if _target != _name:
            GRAPH[_name].add(_target)
            LINES.setdefault((_name, _target), _line)


def _area(module: str) -> str:
    return module.split(".")[1]


def test_every_area_has_a_layer() -> None:
    areas = {_area(m) for m in MODULES if m != "aisp"}
    assert areas <= set(LAYERS), f"add these to LAYERS in {__name__}: {sorted(areas - set(LAYERS))}"


def test_no_import_goes_up_a_layer() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        if module == "aisp":
            continue
        src = _area(module)
        for target in targets:
            dst = _area(target)
            allowed = ONLY.get(src)
            if LAYERS[dst] > LAYERS[src] or (allowed is not None and dst not in allowed):
                line = LINES[(module, target)]
                wrong.append(f"{MODULES[module].relative_to(SRC)}:{line}: {module} imports {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def _cycles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(GRAPH):
        if start in index:
            continue
        work = [(start, iter(sorted(GRAPH[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(GRAPH.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_no_import_cycles() -> None:
    groups = [g for g in _cycles() if "aisp" not in g]
    assert not groups, "import cycles (each line is one group of modules that import each other):\n" + (
        "\n".join(", ".join(g) for g in groups)
    )


@pytest.mark.parametrize(
    ("module", "target", "expected"),
    [
        ("aisp.cache.model_cache", "aisp.models.registry", False),
        ("aisp.store.store", "aisp.pipeline.engine", False),
        ("aisp.pipeline.engine", "aisp.store.store", False),
        ("aisp.models.registry", "aisp.cache.keys", True),
        ("aisp.runtime.build", "aisp.store.store", True),
        ("aisp.api.app", "aisp.runtime.build", True),
        ("aisp.client._sync", "aisp.api.errors", False),
        ("aisp.client._types", "aisp.models.results", True),
        ("aisp.cli.remote", "aisp.client._sync", True),
    ],
)
def test_the_rule_itself(module: str, target: str, expected: bool) -> None:
    src, dst = _area(module), _area(target)
    allowed = ONLY.get(src)
    ok = LAYERS[dst] <= LAYERS[src] and (allowed is None or dst in allowed)
    assert ok is expected

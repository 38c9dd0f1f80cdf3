"""The package's import graph (function-level imports included) has no cycle, and dependencies point one way."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its body (at the top or inside a function)."""
    modules: dict[str, tuple[Path, bool]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_init else parts)] = (path, is_init)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, (path, is_init) in modules.items():
        package = name.split(".") if is_init else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - (node.level - 1)] if node.level else []
                module = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
                targets += [module] + [f"{module}.{alias.name}" for alias in node.names]  # `from . import x`
            elif isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each a cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50  # the walk saw the whole package
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# The layers of STYLE.md, lowest first: a module may import its own layer and those below, never above.
LAYERS = [
    {"types", "errors", "deps", "readers"},
    {"models", "generation", "parsing", "prompts", "corpus", "documents", "tools", "fewshot", "testing", "store",
     "verifier", "world", "datasets", "knowledge", "sampling", "kvcache", "hotpot_gold", "fastforward", "batching", "naive",
     "quantize"},
    {"agent", "steps", "replay"},
    {"eval_modes", "evaluation", "attribution", "prompt_lab", "prompt_experiments", "finetune", "interventions",
     "stepper", "counterfactual"},
    {"viz", "fork_viz"},
    {"app", "cli"},
]


def _layer(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else ""
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"{module} is in no layer of the architecture; add it to LAYERS (and the README's map)")


def test_dependencies_point_one_way():
    upward = [f"{m} -> {t}" for m, targets in import_graph().items() if m != "workbench"
              for t in targets if t != "workbench" and _layer(t) > _layer(m)]
    assert upward == []

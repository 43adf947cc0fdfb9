"""The layered house (issue 12), read from the imports of every module in `medsight/` (top-level and function-level
imports alike): each sub-package counts as one unit and each top-level module as its own; no unit imports, directly
or through others, a unit that imports it back; Streamlit only in the app state module; no module over 350 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "medsight"
MAX_LINES = 350
STREAMLIT_ALLOWED = {"medsight/app_state.py"}


def unit_of(module: str) -> str | None:
    """'medsight.vision.detectors.knn' -> 'vision'; 'medsight.case' -> 'case'; anything else -> None."""
    parts = module.split(".")
    if parts[0] != "medsight" or len(parts) < 2:
        return None
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}  # `from medsight import case`
    return out


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        src = unit_of(module_name(path))
        if src is None:
            continue
        graph.setdefault(src, set())
        for mod in imports_of(path):
            dst = unit_of(mod)
            if dst is not None and dst != src and ((PACKAGE / dst).is_dir() or (PACKAGE / f"{dst}.py").is_file()):
                graph[src].add(dst)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_unit_imports_a_unit_that_imports_it_back():
    graph = unit_graph()
    found = cycles(graph)
    detail = {u: sorted(graph[u] & set(c)) for c in found for u in c}
    assert not found, f"import circles between units: {found}; edges inside them: {detail}"


def test_streamlit_only_in_the_app_state_module():
    offenders = [str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                 if any(m == "streamlit" or m.startswith("streamlit.") for m in imports_of(p))
                 and str(p.relative_to(PACKAGE.parent)) not in STREAMLIT_ALLOWED]
    assert not offenders, offenders


def test_no_module_over_350_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long

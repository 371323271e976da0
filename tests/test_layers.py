"""The package's layers import downwards only (docs/dev/contracts.md)."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "cdr"

LAYER = {
    "errors": 0, "_base": 0, "_validate": 0,
    "data": 1, "schema": 1, "reference": 1, "published": 1, "fields": 1,
    "synthetic": 2, "rates": 2, "_synthetic_fields": 2,
    "aggregate": 3, "footprints": 3,
    "trends": 4, "factors": 4, "models": 4,
    "disclosure": 5,
    "report": 6,
    "cli": 7, "__main__": 7,
}


def _top(module_path: pathlib.Path) -> str:
    rel = module_path.relative_to(ROOT).parts
    return rel[0].removesuffix(".py")


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cdr.") and node.level == 0:
            yield node.lineno, node.module.split(".")[1]
        elif isinstance(node, ast.ImportFrom) and node.module == "cdr":
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "cdr":
            yield node.lineno, node.attr  # lazy access such as cdr.report.build_report
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("cdr."):
                    yield node.lineno, alias.name.split(".")[1]


FILES = sorted(p for p in ROOT.rglob("*.py") if _top(p) in LAYER)


def test_every_module_has_a_layer():
    unknown = sorted({_top(p) for p in ROOT.rglob("*.py")} - set(LAYER) - {"__init__"})
    assert unknown == [], f"add these modules to the layer table in docs/dev/contracts.md and this test: {unknown}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_downwards(path):
    own = LAYER[_top(path)]
    bad = [
        f"line {line}: imports cdr.{target} (layer {LAYER[target]}) from layer {own}"
        for line, target in _imports(path)
        if target in LAYER and target != _top(path) and LAYER[target] > own
    ]
    assert bad == [], f"{path.relative_to(ROOT)}: " + "; ".join(bad)


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _internal_edges(package: pathlib.Path) -> dict:
    """module -> modules of the same subpackage it imports, at any depth (imports inside functions too)."""
    prefix = _module_name(package / "__init__.py")
    modules = {_module_name(p): p for p in package.rglob("*.py") if p.name != "__init__.py"}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module in modules:
                    targets.add(node.module)
                elif node.module == prefix:                      # from cdr.trends import _glm
                    targets |= {f"{prefix}.{a.name}" for a in node.names if f"{prefix}.{a.name}" in modules}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name in modules}
        edges[name] = targets - {name}
    return edges


def _cycles(edges: dict) -> list:
    """Every elementary cycle found by depth-first search, each as a list of module names."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "active"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "active":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


SUBPACKAGES = sorted(p.parent for p in ROOT.glob("*/__init__.py"))


@pytest.mark.parametrize("package", SUBPACKAGES, ids=lambda p: p.name)
def test_no_import_cycle_inside_a_subpackage(package):
    # An import moved inside a function hides a cycle from Python, not from this test.
    cycles = _cycles(_internal_edges(package))
    assert cycles == [], f"cdr.{package.name}: import cycle(s) " + "; ".join(" -> ".join(c) for c in cycles)

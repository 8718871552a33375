"""The import-direction contract, read from the source (AST; nothing is imported).

Layers, bottom to top; a module may import its own package and any package below it, never above:

    odbench.core -> devices -> runtimes -> models -> compressors -> stats -> bench -> verdicts -> report -> api -> cli

So there are no package-level import cycles. Project modules are imported at module level (a function-level
import of a project module is how a cycle used to be hidden); heavy third-party libraries may still be
imported lazily. Registries name their plugins as "odbench.<package>.<module>:<Class>" strings, checked too.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NS = "odbench"
LAYERS = ("core", "devices", "runtimes", "models", "compressors", "stats", "bench", "verdicts", "report", "api", "cli")
OLD_TOP_LEVEL = ("bench", "runtimes", "devices", "models", "compressors", "core", "cli", "stats", "verdicts", "report", "api")
MODULE_STRING = re.compile(r"^odbench\.(\w+)(\.\w+)*(:\w+)?$")


def _modules():
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            yield layer, path


def _imports(tree):
    """(node, imported module, inside a function?) for every import statement."""
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside.update(id(n) for n in ast.walk(fn) if n is not fn)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            yield node, targets, id(node) in inside
        elif isinstance(node, ast.Import):
            yield node, [a.name for a in node.names], id(node) in inside


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == NS and len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return None


def test_the_layer_folders_exist():
    missing = [layer for layer in LAYERS if not (REPO / layer / "__init__.py").exists()]
    assert not missing, f"layer packages without __init__.py: {missing}"


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_go_down_only(layer):
    rank = LAYERS.index(layer)
    bad = []
    for own, path in _modules():
        if own != layer:
            continue
        for node, targets, _ in _imports(ast.parse(path.read_text())):
            for target in targets:
                other = _layer_of(target)
                if other is not None and LAYERS.index(other) > rank:
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {target} ({other} is above {layer})")
    assert not bad, "\n".join(bad)


def test_no_function_level_imports_of_project_modules():
    bad = []
    for _, path in _modules():
        for node, targets, in_function in _imports(ast.parse(path.read_text())):
            if in_function and any(_layer_of(t) or t == NS for t in targets[:1]):
                bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {targets[0]} inside a function")
    assert not bad, "\n".join(bad)


def test_no_old_top_level_names_anywhere():
    """`import bench` would work from a checkout (the repo root is on sys.path) and load a second copy."""
    bad = []
    files = [p for _, p in _modules()] + sorted((REPO / "tests").rglob("*.py")) + sorted((REPO / "scripts").rglob("*.py"))
    for path in files:
        for node, targets, _ in _imports(ast.parse(path.read_text())):
            if targets[0].split(".")[0] in OLD_TOP_LEVEL:
                bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {targets[0]} (use odbench.{targets[0]})")
    assert not bad, "\n".join(bad)


def test_module_path_strings_name_existing_modules_in_their_layer_or_below():
    """Registries and subprocess entry points: "odbench.runtimes.ort:OnnxRuntime", "-m odbench.bench.cell"."""
    bad = []
    for layer, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.match(node.value)):
                continue
            module = node.value.partition(":")[0]
            parts = module.split(".")[1:]
            if not ((REPO.joinpath(*parts)).is_dir() or REPO.joinpath(*parts[:-1], parts[-1] + ".py").exists()):
                bad.append(f"{path.relative_to(REPO)}:{node.lineno} names {node.value!r}, which does not exist")
            elif parts[0] in LAYERS and LAYERS.index(parts[0]) > LAYERS.index(layer):
                bad.append(f"{path.relative_to(REPO)}:{node.lineno} names {node.value!r} from below ({layer})")
    assert not bad, "\n".join(bad)


def test_the_contract_catches_a_violation(tmp_path):
    """The checks above can fail: an upward and a function-level import in a fake core module."""
    tree = ast.parse("from odbench.bench import gate\n\ndef f():\n    from odbench.core import records\n")
    found = [(targets[0], inside) for _, targets, inside in _imports(tree)]
    assert found == [("odbench.bench", False), ("odbench.core", True)] or sorted(found) == sorted(
        [("odbench.bench", False), ("odbench.core", True)])
    assert LAYERS.index(_layer_of("odbench.verdicts.gate")) > LAYERS.index("core")


# Registries resolve "odbench.<package>.<module>:<Class>" strings (checked above); a computed import anywhere
# else could reach any layer unseen, so it is allowed only in these files.
COMPUTED_IMPORT_ALLOWED = {"runtimes/__init__.py", "models/__init__.py", "compressors/__init__.py",
                           "bench/executors/__init__.py", "runtimes/torch_eager.py"}


def _relative_imports(tree):
    return [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]


def _computed_imports(tree):
    """Calls of importlib.import_module / import_module / __import__ (the module name is computed at run time)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name in ("import_module", "__import__"):
                found.append(node)
    return found


def test_no_relative_imports():
    """`from ..bench import gate` would bypass the contract's absolute-name check: the project has none."""
    bad = [f"{path.relative_to(REPO)}:{node.lineno} imports relatively (level {node.level})"
           for _, path in _modules() for node in _relative_imports(ast.parse(path.read_text()))]
    assert not bad, "\n".join(bad)


def test_computed_imports_only_in_registries():
    bad = []
    for _, path in _modules():
        rel = str(path.relative_to(REPO))
        for node in _computed_imports(ast.parse(path.read_text())):
            if rel not in COMPUTED_IMPORT_ALLOWED:
                bad.append(f"{rel}:{node.lineno} imports a computed module name (only registries may)")
    assert not bad, "\n".join(bad)


def test_relative_and_computed_imports_are_caught():
    tree = ast.parse("from ..bench import gate\nimport importlib\nm = importlib.import_module('odbench.' + x)\n"
                     "n = __import__(y)\n")
    assert [n.level for n in _relative_imports(tree)] == [2]
    assert len(_computed_imports(tree)) == 2

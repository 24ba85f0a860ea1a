"""The package's layout as checked facts: layers, no import cycles, no private names across modules, small modules.

Every ``import`` of every module counts, the ones inside functions too: a lazy import is still a
dependency of the design.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fastfcn"
MAX_LINES = 400

# the network is the folder fastfcn/models/, every module under it: importing it must not pull in data
# loading, training, inference, the benchmark, the book machinery or the command line
NETWORK = "fastfcn.models"
# layers, lowest first: a module may import its own layer's modules and lower layers only; two
# layers that share a rank (network, complexity, ops, paper, profiles; data, third_party; benchmark, book) may not
# import each other. third_party (what others measured) sits above the paper it compares with.
RANKS = {"utils": 0, "network": 1, "complexity": 1, "ops": 1, "paper": 1, "profiles": 1, "data": 2, "third_party": 2,
         "checkpoint": 3,
         "inference": 4, "training": 5, "benchmark": 6, "book": 6, "lessons": 7, "cli": 8}
# what the front door imports besides the network: the two tools it re-exports, which need torch alone
FRONT_DOOR_TOOLS = ("complexity", "ops")


def module_name(path: Path) -> str:
    parts = ["fastfcn", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[tuple[str, list[str]]]:
    """``(imported fastfcn module, names taken from it)`` for one import statement of ``module``."""
    if isinstance(node, ast.Import):
        return [(a.name, []) for a in node.names if a.name.split(".")[0] == "fastfcn"]
    is_package = MODULES[module].name == "__init__.py"
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "fastfcn":
        return []
    out = []
    for alias in node.names:  # `from fastfcn import benchmark` imports a module, not a name
        sub = f"{target}.{alias.name}"
        out.append((sub, []) if sub in MODULES else (target, [alias.name]))
    return out


def imports_of(module: str) -> list[tuple[str, list[str]]]:
    tree = ast.parse(MODULES[module].read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found += resolve(module, node)
    return found


GRAPH = {m: sorted({t for t, _ in imports_of(m) if t in MODULES and t != m}) for m in MODULES}


def layer(module: str) -> str | None:
    if module in ("fastfcn", "fastfcn.__main__"):
        return None  # the package's front door re-exports; it is not a layer
    if module == NETWORK or module.startswith(NETWORK + "."):
        return "network"
    return module.split(".")[1]


def test_every_module_has_a_layer() -> None:
    unknown = sorted(m for m in MODULES if layer(m) is not None and layer(m) not in RANKS)
    assert not unknown, f"modules outside the known layers (add them to RANKS or move them): {unknown}"


def test_every_import_resolves_to_a_module() -> None:
    unresolved = [(m, t) for m in MODULES for t, _ in imports_of(m) if t not in MODULES]
    assert not unresolved, f"imports of fastfcn modules that do not exist: {unresolved}"


def test_the_network_imports_only_the_network() -> None:
    bad = [(m, t) for m in MODULES if layer(m) == "network" for t in GRAPH[m] if layer(t) != "network"]
    assert not bad, f"the network imports other layers: {bad}"


def test_layers_import_only_downwards() -> None:
    bad = []
    for m, targets in GRAPH.items():
        if layer(m) is None:
            continue
        for t in targets:
            lm, lt = layer(m), layer(t)
            if lt is None:
                bad.append((m, t, "imports the package's front door"))
            elif RANKS[lt] > RANKS[lm] or (RANKS[lt] == RANKS[lm] and lt != lm):
                bad.append((m, t, f"{lm} (rank {RANKS[lm]}) -> {lt} (rank {RANKS[lt]})"))
    assert not bad, "imports against the layering:\n" + "\n".join(map(str, bad))


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a list of modules, first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in graph:
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


def test_no_import_cycles() -> None:
    # a package's __init__ importing its own submodules is how packages work: not a cycle of the design
    graph = {m: [t for t in ts if not (MODULES[m].name == "__init__.py" and t.startswith(m + "."))]
             for m, ts in GRAPH.items()}
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_no_private_name_is_imported_from_another_module() -> None:
    bad = [(m, t, n) for m in MODULES for t, names in imports_of(m) for n in names
           if n.startswith("_") and t != m]
    assert not bad, f"private names imported across modules: {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_small(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}): split it by idea"


def test_one_home_for_each_primitive() -> None:
    """The primitives the layout promises one home for are defined once."""
    homes = {"IGNORE_INDEX": "fastfcn.data.base", "normalize": "fastfcn.data.transforms",
             "atomic_write": "fastfcn.utils.io", "read_rgb": "fastfcn.data.images",
             "resolve_device": "fastfcn.utils.device", "time_calls": "fastfcn.utils.timing",
             "environment": "fastfcn.utils.environment", "limited_threads": "fastfcn.utils.threads",
             "MEAN": "fastfcn.models.fastfcn", "UPSAMPLINGS": "fastfcn.models.fastfcn",
             "TABLE1_UPSAMPLINGS": "fastfcn.training.table1", "UPSAMPLING_LABELS": "fastfcn.training.table1",
             "HEAD_LABELS": "fastfcn.training.table1", "UPSAMPLING_COLOURS": "fastfcn.training.table1"}
    defined: dict[str, list[str]] = {name: [] for name in homes}
    for m, path in MODULES.items():
        for node in ast.parse(path.read_text()).body:
            names = ([node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else
                     [t.id for t in node.targets if isinstance(t, ast.Name)] if isinstance(node, ast.Assign) else
                     [node.target.id] if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) else [])
            for n in names:
                if n in defined:
                    defined[n].append(m)
    assert defined == {name: [home] for name, home in homes.items()}


def test_the_network_imports_without_the_rest() -> None:
    """Importing the network in a fresh interpreter loads no data, training, inference, benchmark, book or cli
    module: only fastfcn.models, the front door's two tools and the primitives (fastfcn.utils: the front door
    sets the allocator, see fastfcn.utils.allocator)."""
    import subprocess

    code = ("import sys, fastfcn.models, fastfcn.models.official; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('fastfcn.'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "fastfcn.models.fastfcn" in loaded and "fastfcn.models.official" in loaded, loaded
    assert all(layer(m) in ("network", "utils") or layer(m) in FRONT_DOOR_TOOLS for m in loaded), loaded


@pytest.mark.parametrize("tool", FRONT_DOOR_TOOLS)
def test_the_front_door_tools_need_only_torch(tool: str) -> None:
    """complexity and ops import the standard library, torch and fastfcn.utils, nothing else."""
    module = f"fastfcn.{tool}"
    tree = ast.parse(MODULES[module].read_text())
    outside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            outside |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            outside.add(node.module.split(".")[0])
    third_party = outside - set(sys.stdlib_module_names) - {"__future__", "torch", "fastfcn"}
    assert not third_party, f"{module} imports {sorted(third_party)}"
    package = [t for t in GRAPH[module] if layer(t) != "utils"]
    assert not package, f"{module} imports {package} (only fastfcn.utils is allowed)"


MAX_FUNCTION_LINES = 60


def test_functions_are_short() -> None:
    """No function or method of the package is longer than 60 lines (its docstring included): a longer one is
    split into named steps."""
    long = []
    for m, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{m}.{node.name} (line {node.lineno}): {lines} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them into named steps): {long}"


def test_the_network_classes_say_what_they_compute() -> None:
    """Every public class under fastfcn/models/ has a docstring."""
    bare = [f"{m}.{node.name}" for m in MODULES if layer(m) == "network"
            for node in ast.walk(ast.parse(MODULES[m].read_text()))
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and not ast.get_docstring(node)]
    assert not bare, f"classes of the network without a docstring: {bare}"

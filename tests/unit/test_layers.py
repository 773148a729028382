"""The module graph runs one way: no import cycle, no import up a layer, a pure core free of providers/.

Imports are read with ast (nothing is imported), lazy ones inside functions and the ones under
TYPE_CHECKING included: a cycle hidden in a function is still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import s3purge

ROOT = Path(s3purge.__file__).parent

LAYERS: list[tuple[str, ...]] = [  # lowest first: a module imports only its own layer or those below
    # the model layer: vocabulary and small helpers every layer may use
    (
        *("s3purge", "s3purge.model", "s3purge.capabilities", "s3purge.errors", "s3purge.locations"),
        *("s3purge.checks", "s3purge.spellings", "s3purge.yamlfile", "s3purge.secrets", "s3purge.logs"),
        "s3purge.secrets_aws",
        "s3purge.configfile",
    ),
    # providers depend on the model only; pure helpers over the model sit beside them
    (
        *("s3purge.providers", "s3purge.pacing", "s3purge.escalate", "s3purge.order", "s3purge.adapt"),
        *("s3purge.deadline", "s3purge.retries", "s3purge.transport"),  # the call policy and transport
        "s3purge.origin",  # the S3 client asking the origin (metadata, verification)
    ),
    ("s3purge.legacy",),  # the legacy-format converter, used by config to load old files
    ("s3purge.config", "s3purge.accounts"),  # accounts: where the provider layer is loaded, lazily
    (
        *("s3purge.mapping", "s3purge.events", "s3purge.s3records", "s3purge.unrouted", "s3purge.metrics"),
        *("s3purge.choose", "s3purge.freshness"),
    ),
    ("s3purge.plan", "s3purge.execute", "s3purge.verify", "s3purge.probing", "s3purge.metadata"),
    ("s3purge.pipeline",),
    ("s3purge.redrive",),
    ("s3purge.entry", "s3purge.deploy"),  # the runtime entries (Lambda, worker, SQS); the template and package
    # deploy's AWS calls (CloudFormation, the artifact upload, the checks before it), then deploy and destroy
    ("s3purge.deploy.cloudformation", "s3purge.deploy.artifacts", "s3purge.deploy.preflight"),
    ("s3purge.deploy.stack", "s3purge.deploy.teardown"),
    ("s3purge.demo",),  # runs the worker against a local bed
    (  # what the CLI's commands share; none of it imports a command
        *("s3purge.entry.cli.options", "s3purge.entry.cli.group", "s3purge.entry.cli.base"),
        *("s3purge.entry.cli.show", "s3purge.entry.cli.preview", "s3purge.entry.cli.urls"),
    ),
    ("s3purge.entry.cli", "s3purge.__main__"),  # the CLI's group and one module per command: nothing imports them
]
PURE_CORE = (
    "s3purge.events",
    "s3purge.s3records",
    "s3purge.mapping",
    "s3purge.plan",
    "s3purge.escalate",
    "s3purge.pacing",
    "s3purge.choose",
    "s3purge.freshness",
)
PROVIDERS = "s3purge.providers"

# Known exceptions, each with why it is still here. Keep this short; empty is the goal.
ALLOWED: dict[tuple[str, str], str] = {}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("s3purge", *path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imported(name: str, source: str, *, is_package: bool = False) -> Iterator[str]:
    """Everything module `name` imports, anywhere in its source (functions and TYPE_CHECKING too)."""
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)  # `from pkg import module`


def owner(target: str) -> str | None:
    """The s3purge module that `target` (a module or a name in one) resolves to."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def graph() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        source = path.read_text(encoding="utf-8")
        found = imported(name, source, is_package=path.name == "__init__.py")
        targets = {owner(t) for t in found if t == "s3purge" or t.startswith("s3purge.")}
        edges[name] = {t for t in targets if t and t != name}
    return edges


def layer(name: str) -> int:
    """The index of the layer whose most specific entry names this module (or its package)."""
    matches = [(len(p), i) for i, names in enumerate(LAYERS) for p in names if name == p or name.startswith(p + ".")]
    assert matches, f"{name} is in no layer: add it to LAYERS in {__file__}"
    return max(matches)[1]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = [stack.pop()]
            while component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def kept(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    return {name: {t for t in targets if (name, t) not in ALLOWED} for name, targets in edges.items()}


def test_every_module_is_in_a_layer() -> None:
    assert len(MODULES) > 40  # the walk found the package
    assert [name for name in MODULES if not any(name == p or name.startswith(p + ".") for g in LAYERS for p in g)] == []


def test_no_import_cycle() -> None:
    assert cycles(kept(graph())) == []


def test_imports_only_point_down() -> None:
    upward = [f"{a} -> {b}" for a, targets in kept(graph()).items() for b in targets if layer(b) > layer(a)]
    assert upward == []


def test_the_pure_core_never_imports_providers() -> None:
    leaks = [
        f"{a} -> {b}"
        for a, targets in kept(graph()).items()
        if owner(a) in PURE_CORE or a.startswith(PURE_CORE)
        for b in targets
        if b == PROVIDERS or b.startswith(PROVIDERS + ".")
    ]
    assert leaks == []


def test_importing_the_pure_core_loads_neither_providers_nor_httpx() -> None:
    """What actually loads, not only what the source names: config (which the core imports) may
    reach the provider layer only where an account is built, and under TYPE_CHECKING."""
    script = (
        "import importlib, json, sys\n"
        "loaded = {}\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "    loaded[name] = sorted(m for m in sys.modules if m == 'httpx' or m.startswith('s3purge.providers'))\n"
        "print(json.dumps(loaded))\n"
    )
    # One fresh interpreter: each module is imported in turn, so the first that loads them is named.
    args = [sys.executable, "-c", script, *PURE_CORE, "s3purge.providers.base"]
    loaded = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    assert {name: loaded[name] for name in PURE_CORE} == {name: [] for name in PURE_CORE}
    assert "httpx" in loaded["s3purge.providers.base"]  # the check can fail


def test_every_allowed_exception_is_still_needed() -> None:
    edges = graph()
    assert [pair for pair in ALLOWED if pair[1] not in edges.get(pair[0], set())] == []


def test_the_check_sees_lazy_relative_imports_and_cycles() -> None:
    """The checks themselves can fail: a relative import inside a function, and a two-module cycle."""
    source = "def later() -> None:\n    from ..pipeline import Pipeline\n"
    found = {owner(t) for t in imported("s3purge.deploy.stack", source)}
    assert "s3purge.pipeline" in found
    assert layer("s3purge.pipeline") > layer("s3purge.config")
    assert cycles({"s3purge.model": {"s3purge.config"}, "s3purge.config": {"s3purge.model"}}) == [
        ["s3purge.config", "s3purge.model"]
    ]


def test_providers_depend_on_the_model_and_each_other_only() -> None:
    """A vendor module needs the model and the provider base, never a planner beside it (escalate, pacing)."""
    model = set(LAYERS[0])
    leaks = [
        f"{a} -> {b}"
        for a, targets in kept(graph()).items()
        if a == PROVIDERS or a.startswith(PROVIDERS + ".")
        for b in targets
        if b not in model and b != PROVIDERS and not b.startswith(PROVIDERS + ".")
    ]
    assert leaks == []

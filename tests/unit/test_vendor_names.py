"""Vendor knowledge lives in providers/ (and the legacy converter's vendor table): no other module
names a vendor in code, so adding a vendor never touches the core, the CLI or deploy.

Code means identifiers, attribute and import names, and string constants; docstrings and comments
may name vendors (they explain). `http` is also a URL scheme, so it counts as the vendor's name only
where it is compared with a vendor (`cdn.provider.vendor == "http"`, `vendor in ("http", ...)`).
tests/deploy/test_template.py keeps the stricter rule for deploy/: not even in its text.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import s3purge
from s3purge.providers import BUILTIN

ROOT = Path(s3purge.__file__).parent
VENDOR_HOMES = ("providers", "legacy")
NAMED = re.compile("|".join(v for v in BUILTIN if v != "http"), re.IGNORECASE)


def vendor_names(source: str) -> Iterator[tuple[int, str]]:
    """(line, word) for each vendor named in the code of `source`."""
    tree = ast.parse(source)
    skipped = _docstrings(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        for word in _words(node):
            if NAMED.search(word):
                yield node.lineno, word
        if isinstance(node, ast.Compare) and _names_vendor(node) and "http" in _constants(node):
            yield node.lineno, "http"


def _words(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
    return []


def _docstrings(tree: ast.AST) -> set[int]:
    """Ids of the string constants that are docstrings (a bare string statement, also after an attribute)."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)  # a lambda's body is one expression, not statements
        for statement in body if isinstance(body, list) else []:
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                found.add(id(statement.value))
    return found


def _names_vendor(node: ast.Compare) -> bool:
    return any("vendor" in word.lower() for part in ast.walk(node) for word in _words(part) if not _is_str(part))


def _constants(node: ast.Compare) -> set[str]:
    return {part.value for part in ast.walk(node) if isinstance(part, ast.Constant) and isinstance(part.value, str)}


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def test_no_module_outside_providers_names_a_vendor_in_code() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {word[:80]!r}"
        for path in sorted(ROOT.rglob("*.py"))
        if path.relative_to(ROOT).parts[0] not in VENDOR_HOMES
        for line, word in vendor_names(path.read_text(encoding="utf-8"))
    ]
    assert len(list(ROOT.rglob("*.py"))) > 40  # the walk found the package
    assert found == []


def test_the_check_finds_a_vendor_in_code_but_not_in_text() -> None:
    source = '''
"""CloudFront and Fastly, named in a docstring: fine."""
from s3purge.providers.cloudfront import CloudFront  # a comment naming Akamai: fine

def cost(cdn) -> int:
    """Akamai bills nothing."""
    if cdn.provider.vendor == "cloudfront":
        return cdn.provider.paid_paths()
    if cdn.provider.vendor in ("http", "fastly") or url.scheme == "http":
        raise ValueError("Edgecast cannot")
    return 0
'''
    assert sorted(set(vendor_names(source))) == [
        (3, "CloudFront"),
        (3, "s3purge.providers.cloudfront"),
        (7, "cloudfront"),
        (9, "fastly"),
        (9, "http"),  # compared with a vendor; `url.scheme == "http"` alone is a scheme
        (10, "Edgecast cannot"),
    ]

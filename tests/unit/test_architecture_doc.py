"""docs/architecture.md lists every module of the package, and nothing that is not there."""

from __future__ import annotations

import re

from tests.support import REPO

PACKAGE = REPO / "holoload"


def listed_modules() -> set[str]:
    """Paths (relative to holoload/) named in the doc's module tree, e.g. core/stats/window.py."""
    text = (REPO / "docs" / "architecture.md").read_text()
    block = text.split("```", 2)[1]  # the first fenced block is the tree
    paths: set[str] = set()
    layer = ""
    package = ""
    for line in block.splitlines():
        if m := re.match(r"^holoload/(\S*)", line):
            name = m.group(1)
            if name.endswith(".py"):
                paths.add(name)
                layer = ""
            else:
                layer, package = name, ""
            continue
        if m := re.match(r"^  ([^\s,]+(?:, [^\s,]+)*)", line):
            names = [n.strip() for n in m.group(1).split(",")]
            if names[0].endswith("/"):
                package = names[0]
                continue
            package = ""
            paths.update(layer + n for n in names)
            continue
        if package and (m := re.match(r"^    (\S+)", line)):
            if m.group(1).endswith(".py"):
                paths.add(layer + package + m.group(1))
    return paths


def package_modules() -> set[str]:
    return {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py") and "__pycache__" not in p.parts
    }


def test_every_module_is_listed_once_and_every_listed_module_exists() -> None:
    listed, present = listed_modules(), package_modules()
    assert sorted(present - listed) == [], "modules missing from docs/architecture.md"
    assert sorted(listed - present) == [], "docs/architecture.md lists modules that do not exist"


def test_core_and_adapters_are_grouped_in_small_packages() -> None:
    """Issue 14: no flat layer; each sub-package holds a handful of modules."""
    for layer in ("core", "adapters"):
        flat = [p for p in (PACKAGE / layer).glob("*.py") if p.name != "__init__.py"]
        assert len(flat) <= 4, (layer, sorted(p.name for p in flat))
        for package in (PACKAGE / layer).iterdir():
            if package.is_dir() and package.name != "__pycache__":
                modules = [p for p in package.glob("*.py") if p.name != "__init__.py"]
                assert 1 <= len(modules) <= 10, (package, len(modules))

"""The README's map of the code ("How the code is laid out") names every module there is, and no other."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def layout_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def mapped_modules() -> dict[str, set[str]]:
    """The .py names the map gives, as {"": top-level modules, "web": the web package's}."""
    found: dict[str, set[str]] = {"": set(), "web": set()}
    package = ""
    for line in layout_block().splitlines():
        if re.match(r"^ {2}web/", line):
            package = "web"
        elif re.match(r"^ {2}\S", line):
            package = ""
        found[package].update(re.findall(r"(?<![\w/])([a-z_]+\.py)\b", line))
    return found


def test_the_code_map_names_every_module_of_the_package_and_no_other():
    mapped = mapped_modules()
    for package, folder in (("", REPO / "flashapp"), ("web", REPO / "flashapp" / "web")):
        present = {path.name for path in folder.glob("*.py")}
        assert mapped[package] == present, (package or "flashapp", sorted(present - mapped[package]),
                                            sorted(mapped[package] - present))

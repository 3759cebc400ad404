"""customer720/settings.py owns every ``C720_*`` variable: the only module that reads one,
the list of every one that is mentioned, and the README's settings table."""

from __future__ import annotations

import re
from pathlib import Path

from customer720.settings import PROJECT_ROOT, VARIABLES, markdown_table

OWNER = PROJECT_ROOT / "customer720" / "settings.py"
SKIP_DIRS = {".venv", ".local", ".git", "target", "dbt_packages", "results", "__pycache__"}
SUFFIXES = {".py", ".md", ".yml", ".yaml", ".sql", ".toml", ".cfg", ".txt", ".sh"}

NAME = re.compile(r"C720_[A-Z0-9_]*")
# A read of the environment naming a C720_ variable: Python, dbt's env_var(), make's $(...).
READS = [
    re.compile(r"(?:getenv|environ\.get|env_var)\(\s*['\"]C720_"),
    re.compile(r"environ\[\s*['\"]C720_[A-Z0-9_]*['\"]\s*\](?!\s*=[^=])"),
    re.compile(r"['\"]C720_[A-Z0-9_]*['\"]\s+(?:not\s+)?in\s+os\.environ"),
    re.compile(r"\$[({]C720_"),
]


def _files() -> list[Path]:
    out = []
    for path in PROJECT_ROOT.rglob("*"):
        rel = path.relative_to(PROJECT_ROOT)
        if any(part in SKIP_DIRS for part in rel.parts[:-1]) or not path.is_file():
            continue
        if path.suffix in SUFFIXES or path.name == "Makefile":
            out.append(path)
    return out


def test_only_the_settings_module_reads_c720_variables() -> None:
    readers = [
        f"{path.relative_to(PROJECT_ROOT)}:{n}: {line.strip()}"
        for path in _files()
        if path != OWNER and path.suffix != ".md"
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if any(pattern.search(line) for pattern in READS)
    ]
    assert not readers, "read C720_* through customer720.settings:\n" + "\n".join(readers)


def test_every_c720_name_mentioned_is_declared() -> None:
    declared = {v.name for v in VARIABLES}
    unknown = set()
    for path in _files():
        for name in NAME.findall(path.read_text(errors="replace")):
            # "C720_" or "C720_CUTOFF_*" name a group: some declared variable must match
            if name.endswith("_"):
                if not any(d.startswith(name) for d in declared):
                    unknown.add(f"{name}* ({path.relative_to(PROJECT_ROOT)})")
            elif name not in declared:
                unknown.add(f"{name} ({path.relative_to(PROJECT_ROOT)})")
    assert not unknown, "not in customer720/settings.py VARIABLES: " + ", ".join(sorted(unknown))


def test_readme_settings_table_is_generated_from_variables() -> None:
    lines = (PROJECT_ROOT / "README.md").read_text().splitlines()
    start = lines.index("## Settings")
    table = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    assert "\n".join(table) == markdown_table(), (
        "regenerate the README's settings table: python -m customer720.settings"
    )

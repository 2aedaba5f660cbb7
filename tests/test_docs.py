"""The documentation says what the repository holds: links and named files exist, the spaces' table is current.

``mkdocs build --strict`` (``make docs``) checks the site's own links, anchors
and API names; these check what it cannot: the README and spaces/README.md
(read on GitHub, outside the site), the repository paths the pages name as a
figure's source, and the table of built-in spaces against the spaces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from spaces import builtin_space_names, load_space

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
READMES = [ROOT / "README.md", ROOT / "spaces" / "README.md"]
# A path into the repository named in a code span: `benchmarks/results/fidelity.json`, `search/pareto.py`.
NAMED_PATH = re.compile(r"(?<![\w./-])((?:benchmarks|evaluation|search|spaces|tests|scripts|docs)/[\w./*<>{}-]*)")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _code_spans(text: str) -> list[str]:
    """Inline code and fenced blocks, where the pages name files."""
    fenced = re.findall(r"```.*?```", text, flags=re.DOTALL)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    return fenced + inline


def _named_paths(page: Path) -> set[str]:
    found = set()
    for span in _code_spans(page.read_text()):
        for path in NAMED_PATH.findall(span):
            path = path.rstrip(".")
            if not any(mark in path for mark in "<>*{}") and "..." not in path:
                found.add(path)
    return found


def _exists(path: str) -> bool:
    """Whether ``path`` is in the repository; a journal a command unpacks first (``gunzip -k X.log.gz``)
    counts when its archive is, and a module ``x.py`` when it became the package ``x/`` (same import name)."""
    where = ROOT / path
    package = where.with_suffix("") / "__init__.py" if where.suffix == ".py" else None
    return where.exists() or (ROOT / f"{path}.gz").exists() or (package is not None and package.is_file())


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_links_point_at_files_that_exist(readme: Path) -> None:
    links = [link for link in LINK.findall(readme.read_text()) if "://" not in link and not link.startswith("#")]
    missing = [link for link in links if not (readme.parent / link.split("#")[0]).exists()]
    assert not missing, f"{readme.relative_to(ROOT)} links to files that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES + READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_a_page_names_exists(page: Path) -> None:
    missing = sorted(path for path in _named_paths(page) if not _exists(path))
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_the_path_check_finds_the_sources_the_results_pages_name() -> None:
    """The check above must see the paths it is meant to check, or it passes by seeing nothing."""
    named = _named_paths(ROOT / "docs" / "results" / "fidelity.md")
    assert "benchmarks/results/fidelity.json" in named and "benchmarks/fidelity.py" in named, named


def _table_rows(text: str) -> dict[str, list[str]]:
    """The built-in spaces' table: the space's name to its cells."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = re.match(r"`(\w+)`", cells[0]) if len(cells) == 6 else None
        if name:
            rows[name.group(1)] = cells
    return rows


def test_the_built_in_spaces_table_matches_the_spaces_and_their_measured_refusals() -> None:
    rows = _table_rows((ROOT / "spaces" / "README.md").read_text())
    measured = json.loads((ROOT / "benchmarks" / "results" / "space_rejection.json").read_text())
    assert sorted(rows) == sorted(builtin_space_names()) == sorted(measured), "one row per built-in space"
    for name, (_, what, size, refused, macs, baseline) in rows.items():
        space = load_space(name)
        limits, budget = space.constraints.limits, space.training
        assert size == f"{space.size():,}", f"{name}: the table says {size} architectures, the space {space.size():,}"
        limit_text = f"max {limits['macs'] / 1e6:g} M MACs, {limits['params'] / 1e6:g} M params"
        assert limit_text in what, f"{name}: {what!r} should state the limits: {limit_text}"
        budget_text = f"{budget.epochs} epoch on {budget.train_fraction * 100:g} % of the training split"
        assert budget_text in what, f"{name}: {what!r} should state the trial budget: {budget_text}"
        assert measured[name]["size"] == space.size(), f"{name}: space_rejection.json predates the space; rerun it"
        assert refused == f"{round(measured[name]['rejected'] * 100)} %", f"{name}: refused {refused}"
        median, p90 = (round(measured[name][key] / 1e6) for key in ("accepted_macs_median", "accepted_macs_p90"))
        assert macs == f"{median} M / {p90} M", f"{name}: MACs {macs}, measured {median} M / {p90} M"
        assert baseline.strip("`") in space.baselines, f"{name}: no baseline {baseline}"

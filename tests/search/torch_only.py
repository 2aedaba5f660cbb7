"""Run Python with torch but without the project: how an exported standalone file is used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# -I (isolated mode) keeps the working directory and PYTHONPATH off the path; this
# meta-path hook refuses the project's packages even where pip installed them.
_REFUSE_PROJECT = (
    "import sys\n"
    "class Refuse:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('evaluation', 'search', 'spaces'): raise ImportError(name)\n"
    "sys.meta_path.insert(0, Refuse())\n"
    "sys.path.insert(0, '.')\n"
)


def run_without_project(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``script`` run in ``cwd`` (whose modules it may import) by a Python that cannot import the project."""
    return subprocess.run(
        [sys.executable, "-I", "-c", _REFUSE_PROJECT + script], cwd=cwd, capture_output=True, text=True, timeout=120
    )

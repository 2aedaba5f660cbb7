"""Searches run by an older commit's code, for ``search_efficiency.py`` to score beside this code's.

``search_efficiency.py`` compares the methods this code can run. When the
default search itself changes (distinct trials, after commit ``b0848e8``), the
search it replaced exists only in the older code, so the comparison runs that
code: this script checks ``COMMIT`` out in a git worktree (in
``--worktrees``, the temporary folder by default, kept for the next call) and calls that commit's
``search_efficiency.run_method`` for each seed, its method renamed (``--as``)
so that its journals sit beside this code's in ``--out``'s folder, gzipped as
this code commits them. It trains nothing else: this code's
``search_efficiency.py`` then scores them with one retraining rule for both
(``--methods tpe_copies`` runs only from such journals). A killed run resumes
with what is left of its budget, as ``run_method`` does:

    python benchmarks/search_at_commit.py b0848e8 --method tpe --as tpe_copies --seeds 0 1 2 \\
        --out benchmarks/results/default_confirmation.json --threads 1

The commit's ``benchmarks/search_efficiency.py`` must have
``run_method(method, seed, args, log)``, as every commit since the benchmark's
journals were kept per run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from result_cache import pack_journal

ROOT = Path(__file__).resolve().parents[1]
# Runs inside the worktree, on its code: argv[1] is this script's arguments as JSON.
CHILD = """
import argparse, json, pathlib, sys
import torch
import search_efficiency as se
a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
se.METHODS[a["as"]] = dict(se.METHODS[a["method"]])
args = argparse.Namespace(minutes=a["minutes"], out=pathlib.Path(a["out"]), best=a["best"])
for seed in a["seeds"]:
    se.run_method(a["as"], seed, args, lambda message: print(message, file=sys.stderr, flush=True))
"""


def worktree(commit: str, folder: Path) -> Path:
    """A checkout of ``commit`` in ``folder`` (made once, then reused), beside no one's work."""
    full = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{commit}^{{commit}}"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    path = folder / f"densenet-search-{full[:12]}"
    if not (path / "benchmarks" / "search_efficiency.py").is_file():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--force", "--detach", str(path), full],
                       check=True, capture_output=True, text=True)  # fmt: skip
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commit", help="The commit whose search runs (any name git knows).")
    parser.add_argument("--method", required=True, help="Its search_efficiency method, e.g. tpe.")
    parser.add_argument("--as", dest="as_", required=True, metavar="NAME", help="The name its journals take.")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="Seeds, one search each.")
    parser.add_argument("--out", type=Path, required=True, help="search_efficiency.py's --out: the journals' folder.")
    parser.add_argument("--minutes", type=float, default=30.0, help="Wall-clock budget per search (default: 30).")
    parser.add_argument("--best", default="tpe", help="search_efficiency's --best (default: tpe).")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1).")
    parser.add_argument("--worktrees", type=Path, default=Path(tempfile.gettempdir()), help="Where checkouts go.")
    args = parser.parse_args(argv)
    try:
        code = worktree(args.commit, args.worktrees.resolve())
    except subprocess.CalledProcessError as error:
        why = (error.stderr or "").strip().splitlines()[-1:] or [str(error)]
        parser.exit(2, f"error: no worktree of {args.commit}: {why[0]}\n")
    out = args.out.resolve()
    settings = {"method": args.method, "as": args.as_, "seeds": args.seeds, "out": str(out),
                "minutes": args.minutes, "best": args.best, "threads": args.threads}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(code / "benchmarks")])}
    try:
        finished = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings)], cwd=code, env=env)
    finally:  # the older code may not pack its journals; an interrupted one is packed as it stands
        for seed in args.seeds:
            pack_journal(out.with_suffix("") / f"{args.as_}-s{seed}.log")
    return finished.returncode


if __name__ == "__main__":
    raise SystemExit(main())

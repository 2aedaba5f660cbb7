"""What the report's importance and proxy panels say about the committed search-efficiency studies.

For each study of ``benchmarks/results/search_efficiency/`` (journals committed
gzipped), the numbers ``search report`` draws, computed by the same code
(``search.report.collect_report``), training nothing:

- PED-ANOVA importance of each knob for validation accuracy (feasible trials),
  as shares of the total: the transitions' pooling knobs and the stage count,
  with their rank among the knobs that varied, and the five most important;
- Spearman's rho of each zero-cost proxy, the parameter count and the MACs
  with validation accuracy over the trials that trained (a brief 1-epoch
  accuracy, the search's own).

Writes ``benchmarks/results/study_signals.json``.

    python benchmarks/study_signals.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna

from evaluation.atomic import atomic_write
from search.report import collect_report

from result_cache import journal_to_read

RESULTS = Path(__file__).resolve().parent / "results" / "study_signals.json"
STUDIES = RESULTS.parent / "search_efficiency"
KNOBS = ("transition1.pooling", "transition2.pooling", "num_stages")


def signals(study: optuna.Study) -> dict[str, Any]:
    data = collect_report(study)
    accuracy = next(i for i in data.importances if i.objective == "accuracy")
    ranked = list(accuracy.values)  # largest share first
    importance = {
        knob: {"share": accuracy.values[knob], "rank": ranked.index(knob) + 1} for knob in KNOBS if knob in ranked
    }
    return {
        "trials": len(data.trials),
        "importance_note": accuracy.note,
        "knobs_ranked": len(ranked),
        "importance": importance,
        "most_important": {knob: accuracy.values[knob] for knob in ranked[:5]},
        "spearman_with_accuracy": {c.metric: c.rho for c in data.correlations},
        "correlated_trials": {c.metric: len(c.trials) for c in data.correlations},
    }


def main() -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result: dict[str, Any] = {"command": "python benchmarks/study_signals.py", "studies": {}}
    for archive in sorted(STUDIES.glob("*.log.gz")):
        journal = archive.with_suffix("")  # X.log
        name = journal.stem
        with journal_to_read(journal) as path:
            storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
            result["studies"][name] = signals(optuna.load_study(study_name=name, storage=storage))
    with atomic_write(RESULTS) as temporary:
        temporary.write_text(json.dumps(result, indent=1) + "\n")
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The study report: one self-contained HTML page for reviewing a search by eye.

Compute first, draw second: ``collect_report(study)`` reads a study into a
``ReportData`` of plain values (what the tests check); ``render_report(data)``
draws it with plotly into one HTML string. The page embeds plotly.js and a few
lines of our own script, and fetches nothing, so it opens offline and can be
mailed. ``write_report(study, path)`` does both; ``search run`` calls it at the
end of every run, and ``search report`` at any time, also while a run goes on.

``_data`` computes, ``_figures`` draws the plots, ``_final`` the section of
``search finalize``'s results, ``_page`` assembles the page.
"""

# Importable from here as before the split into modules; the tests use them.
from search.report._data import (
    IMPORTANCE_MIN_TRIALS,  # noqa: F401
    Importance,
    ParamAxis,
    ReportData,
    TrialPoint,
    collect_report,
)
from search.report._figures import ABSENT, _knob_codes  # noqa: F401
from search.report._page import render_report, write_report

__all__ = [
    "Importance",
    "ParamAxis",
    "ReportData",
    "TrialPoint",
    "collect_report",
    "render_report",
    "write_report",
]

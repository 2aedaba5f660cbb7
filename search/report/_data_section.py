"""The report's "Data" and "Test errors" sections, drawn from ``DataPanel`` and ``ModelErrors``.

Images go into the page as PNG data URIs (the page fetches nothing): samples
of each class, and each finalised model's most confident mistakes. Thumbnails
larger than ``THUMBNAIL`` px are scaled down first, so a 224 px data set does
not make the page heavy; small ones are shown enlarged without smoothing.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from search.report._data import SAMPLES_PER_CLASS, DataPanel, Misclassified, ModelErrors
from search.report._figures import class_counts_figure, confusion_figure

__all__ = ["THUMBNAIL", "data_section", "errors_section", "png_uri"]

THUMBNAIL = 96  # px: the largest side an image is shown at
_SHOWN = 64  # px: the side small images are enlarged to on the page

Plot = Callable[[str, dict[str, Any]], str]  # registers a figure under an id and returns its div


def png_uri(image: np.ndarray) -> str:
    """A uint8 (C, H, W) image as a PNG data URI, scaled down to at most ``THUMBNAIL`` px."""
    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    picture = Image.fromarray(np.ascontiguousarray(pixels))
    if max(picture.size) > THUMBNAIL:
        picture.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(image: np.ndarray, title: str) -> str:
    side = max(min(THUMBNAIL, max(image.shape[1:])), _SHOWN)
    return f'<img src="{png_uri(image)}" width="{side}" height="{side}" alt="{html.escape(title)}" title="{html.escape(title)}">'


def _samples_table(panel: DataPanel) -> str:
    rows = []
    train = panel.counts.get("train", ())
    for label, (name, images) in enumerate(zip(panel.classes, panel.samples)):
        count = f"{train[label]:,} training images" if label < len(train) else ""
        pictures = "".join(_img(image, f"{name}, sample {k + 1}") for k, image in enumerate(images))
        rows.append(
            f'<tr><th>{html.escape(name)}<div class="note">{count}</div></th><td class="thumbs">{pictures}</td></tr>'
        )
    return f'<table class="samples">{"".join(rows)}</table>'


def _counts_table(panel: DataPanel) -> str:
    splits = list(panel.counts)
    head = "<th>class</th>" + "".join(f"<th>{html.escape(split)}</th>" for split in splits)
    body = []
    for label, name in enumerate(panel.classes):
        cells = "".join(f"<td>{panel.counts[split][label]:,}</td>" for split in splits)
        body.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    totals = "".join(f"<td><b>{sum(panel.counts[split]):,}</b></td>" for split in splits)
    body.append(f"<tr><td><b>all</b></td>{totals}</tr>")
    return f'<table class="counts"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def data_section(panel: DataPanel, plot: Plot) -> str:
    """Where the data came from, images per class and split, and sample training images of each class."""
    where = html.escape(panel.source)
    if not panel.opened:
        return f"<p class=note><code>{where}</code>: {html.escape(panel.note or '')}</p>"
    origin = f" (cache <code>{html.escape(panel.cache)}</code>)" if panel.cache else ""
    skipped = (
        f" {panel.skipped:,} file{'s' if panel.skipped != 1 else ''} could not be decoded and "
        f"{'were' if panel.skipped != 1 else 'was'} left out (listed in the cache's skipped.csv)."
        if panel.skipped
        else ""
    )
    return (
        f"<p class=note>The images the study searched on: <code>{where}</code>{origin}, "
        f"{len(panel.classes)} classes. Searching trains on the training split and ranks on the validation "
        f"split; the test split is read once, by <code>search finalize</code>.{skipped}</p>"
        f'<div class="grid">{plot("data-counts", class_counts_figure(panel))}'
        f'<div class="table-wrap">{_counts_table(panel)}</div></div>'
        f"<h3>Training images, up to {SAMPLES_PER_CLASS} per class, spread over the class</h3>"
        f'<div class="table-wrap">{_samples_table(panel)}</div>'
    )


def _mistake(mistake: Misclassified, classes: tuple[str, ...]) -> str:
    def name(label: int) -> str:
        return classes[label] if 0 <= label < len(classes) else str(label)

    sure = "" if mistake.confidence is None else f" ({mistake.confidence:.0%})"
    caption = f"{name(mistake.label)} → {name(mistake.predicted)}{sure}"
    title = f"test image {mistake.index}: a {name(mistake.label)}, taken for a {name(mistake.predicted)}{sure}"
    picture = "" if mistake.image is None else _img(mistake.image, title)
    return f'<figure title="{html.escape(title)}">{picture}<figcaption>{html.escape(caption)}</figcaption></figure>'


def errors_section(errors: tuple[ModelErrors, ...], panel: DataPanel | None, plot: Plot) -> str:
    """Each finalised model's test confusion matrix and its most confident mistakes."""
    classes = panel.classes if panel is not None else ()
    missing = (
        f"<p class=note>The misclassified images cannot be shown: {html.escape(panel.note or '')}</p>"
        if panel is not None and not panel.opened
        else ""
    )
    parts = []
    for k, model in enumerate(errors):
        shown = "".join(_mistake(m, classes) for m in model.misclassified)
        more = (
            f"{len(model.misclassified)} most confident of its {model.misclassified_total:,} mistakes"
            if model.misclassified_total > len(model.misclassified)
            else f"its {model.misclassified_total:,} mistakes"
        )
        parts.append(
            f"<div>{plot(f'confusion-{k}', confusion_figure(model, classes))}"
            f"<h3>Trial #{model.trial}: {more} (first seed), true class → predicted (confidence)</h3>"
            f'<div class="mistakes">{shown}</div></div>'
        )
    return (
        "<p class=note>Finalised models on the test split: rows are the true class, columns the predicted one; "
        "a cell's colour is its share of the true class, its number a count of images (summed over seeds).</p>"
        f'{missing}<div class="grid">{"".join(parts)}</div>'
    )

"""Human preference annotation (the paper's §5 human study): a SQLite store, a small web app, a CLI.

`python -m lima annotate load|add-annotator|serve|export`; the export (item_id, annotator, prompt_id, prompt,
system_a, system_b, shown_left, choice, created, ...) is what `lima.analysis` reads for human agreement.
"""

from lima.annotate.db import EXPORT_COLUMNS

__all__ = ["EXPORT_COLUMNS"]

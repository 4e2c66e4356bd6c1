"""Human annotation (the paper's §5 human study, Fig. 3 ratings, Fig. 7 per-turn ratings): a SQLite store,
a small web app and a CLI.

`python -m lima annotate load|add-annotator|serve|export|...`; the `labels` export (item_id, annotator,
prompt_id, prompt, system_a, system_b, shown_left, choice, created, ...) is what `lima.analysis` reads for
human preference and agreement. See docs/annotation.md.
"""

from lima.annotate.export import EXPORT_COLUMNS

__all__ = ["EXPORT_COLUMNS"]

"""One import for the annotation store's functions (the CLI, the app and the tests use `db.<name>`).

The store is split by responsibility: `store` (schema, connection, transactions), `people` (annotators,
links, sessions, guidelines), `loading` (responses → items), `queue` (who sees what, claims), `labels`
(labels, history, flags), `export` (tables out), `stats` (admin numbers).
"""

from lima.annotate.export import EXPORT_COLUMNS, TABLES, export_rows, to_csv, to_jsonl
from lima.annotate.labels import (
                                  SHOWN_CHOICES,
                                  assistant_turns,
                                  history,
                                  own_flag,
                                  own_label,
                                  own_labels,
                                  set_flag,
                                  set_label,
)
from lima.annotate.loading import insert_items
from lima.annotate.people import (
                                  add_annotator,
                                  annotator_by_name,
                                  annotator_for_session,
                                  annotator_for_token,
                                  confirm_guidelines,
                                  end_session,
                                  guidelines,
                                  list_annotators,
                                  new_session,
                                  reissue,
                                  revoke,
                                  set_guidelines,
)
from lima.annotate.queue import (
                                  DEFAULT_CLAIM_TTL,
                                  is_visible,
                                  next_item,
                                  open_claims,
                                  progress,
                                  quota,
                                  reassign,
                                  record_view,
                                  release,
                                  skip,
)
from lima.annotate.store import (
                                  FLAGS,
                                  MAX_ID,
                                  RATINGS,
                                  TASKS,
                                  Annotator,
                                  SchemaError,
                                  connect,
                                  get_item,
                                  hash_token,
                                  now,
                                  valid_id,
                                  write_tx,
)

__all__ = [
    "DEFAULT_CLAIM_TTL", "EXPORT_COLUMNS", "FLAGS", "MAX_ID", "RATINGS", "SHOWN_CHOICES", "TABLES", "TASKS",
    "Annotator", "SchemaError", "add_annotator", "annotator_by_name", "annotator_for_session", "annotator_for_token",
    "assistant_turns", "confirm_guidelines", "connect", "end_session", "export_rows", "get_item", "guidelines",
    "hash_token", "history", "insert_items", "is_visible", "list_annotators", "new_session", "next_item", "now",
    "open_claims", "own_flag", "own_label", "own_labels", "progress", "quota", "reassign", "record_view",
    "reissue", "release", "revoke", "set_flag", "set_guidelines", "set_label", "skip", "to_csv", "to_jsonl",
    "valid_id", "write_tx",
]

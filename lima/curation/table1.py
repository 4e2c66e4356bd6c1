"""Table 1 of the paper regenerated from our splits: count and mean input/output length per source.

Token counts use `curation.table1_tokenizer` (an HF tokenizer id or local path) when given; otherwise a
word proxy (runs of word characters, and each punctuation mark, count as one) — the `token_unit` column says
which, because the proxy is not comparable to the paper's LLaMA tokens (roughly 0.75 words per token).
Characters are counted on the same text. Input = all user turns, output = all assistant turns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

# (split, source label, paper count, paper input tokens, paper output tokens)
PAPER_TABLE1 = [
    ("train", "stackexchange_stem", 200, 117, 523),
    ("train", "stackexchange_other", 200, 119, 530),
    ("train", "wikihow", 200, 12, 1811),
    ("train", "writingprompts", 150, 34, 274),
    ("train", "nlp", 50, 236, 92),
    ("train", "authors", 200, 40, 334),
    ("dev", "authors", 50, None, None),
    ("test", "askreddit", 70, None, None),
    ("test", "authors", 230, None, None),
]
WORD_PROXY = "words+punctuation (proxy, not model tokens)"
_WORDS = re.compile(r"\w+|[^\w\s]")


def token_counter(tokenizer: str | None) -> tuple[Callable[[str], int], str]:
    if not tokenizer:
        return (lambda text: len(_WORDS.findall(text))), WORD_PROXY
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)
    return (lambda text: len(tok(text, add_special_tokens=False)["input_ids"])), f"tokens ({tokenizer})"


def table_source(row: dict[str, Any]) -> str:
    if row.get("source") == "stackexchange":
        return f"stackexchange_{(row.get('meta') or {}).get('domain', 'other')}"
    return str(row.get("source"))


def _turns(row: dict[str, Any], role: str) -> str:
    return "\n".join(m["content"] for m in row["messages"] if m["role"] == role)


def table1(splits: dict[str, Sequence[dict[str, Any]]], tokenizer: str | None = None) -> pd.DataFrame:
    count_tokens, unit = token_counter(tokenizer)
    stats: dict[tuple[str, str], dict[str, list[int]]] = {}
    for split, rows in splits.items():
        for row in rows:
            s = stats.setdefault((split, table_source(row)), {"in_tok": [], "out_tok": [], "in_chr": [], "out_chr": []})
            user, assistant = _turns(row, "user"), _turns(row, "assistant")
            s["in_tok"].append(count_tokens(user))
            s["in_chr"].append(len(user))
            if split == "train":
                s["out_tok"].append(count_tokens(assistant))
                s["out_chr"].append(len(assistant))
    paper = {(sp, src): (n, i, o) for sp, src, n, i, o in PAPER_TABLE1}
    keys = [(sp, src) for sp, src, *_ in PAPER_TABLE1] + sorted(set(stats) - set(paper))

    def mean(values: list[int]) -> float | None:
        return round(sum(values) / len(values), 1) if values else None

    records = []
    for key in keys:
        s = stats.get(key, {"in_tok": [], "out_tok": [], "in_chr": [], "out_chr": []})
        p_n, p_in, p_out = paper.get(key, (None, None, None))
        records.append({"split": key[0], "source": key[1], "count": len(s["in_tok"]),
                        "input_tokens": mean(s["in_tok"]), "output_tokens": mean(s["out_tok"]),
                        "input_chars": mean(s["in_chr"]), "output_chars": mean(s["out_chr"]),
                        "paper_count": p_n, "paper_input_tokens": p_in, "paper_output_tokens": p_out,
                        "token_unit": unit})
    df = pd.DataFrame.from_records(records)
    for col in ("paper_count", "paper_input_tokens", "paper_output_tokens"):
        df[col] = df[col].astype("Int64")
    return df


def to_markdown(df: pd.DataFrame, title: str = "") -> str:
    """A plain pipe table (no `tabulate` dependency)."""
    cols = list(df.columns)
    lines = [f"{title}\n" if title else "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join("–" if pd.isna(v) else str(v) for v in row.tolist()) + " |")
    return "\n".join(line for line in lines if line != "") + "\n"

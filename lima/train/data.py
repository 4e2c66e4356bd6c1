"""Conversations → token ids and next-token targets, and (exact) packing into rows.

Training format = inference format by construction: the text is rendered with the tokenizer's own chat
template (the one `lima.model.add_eot_token` saved) and the label spans are found by rendering growing
prefixes of the conversation, so whatever `apply_chat_template` produces at inference is what we train on.

Targets are stored already shifted *within each example* (`targets[t]` is the token at `t + 1`, the last
position has none). A packed row therefore never asks one example to predict the next example's first
token, whatever the tokenizer's BOS habits, and the loss needs no shift across the row.

Trimming: an example longer than `max_length` keeps its beginning and loses its end. The prompt is what
the response is conditioned on, so cutting the start would teach answers to questions the model never
saw; cutting the end only loses the tail of a (very long) response, and its EOT, so the model is never
taught to stop in the middle of an answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lima.io import InputError, read_jsonl

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    targets: list[int]                 # shifted next-token labels, IGNORE where no loss
    trimmed: bool = False

    @property
    def n_trainable(self) -> int:
        return sum(t != IGNORE for t in self.targets)


def load_conversations(path: str | Path) -> list[dict[str, Any]]:
    """Rows in the train.jsonl contract; a row without a trainable assistant turn is an input error."""
    rows = read_jsonl(path)
    for line, row in enumerate(rows, 1):
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and m.get("role") in {"user", "assistant", "system"}
                and isinstance(m.get("content"), str) for m in messages):
            raise InputError(f"{path}:{line}: expected 'messages': a list of {{role, content}} objects")
        if not any(m["role"] == "assistant" for m in messages):
            raise InputError(f"{path}:{line}: conversation {row.get('id')!r} has no assistant turn to train on")
    return rows


def _ids(tokenizer, messages: list[dict[str, str]]) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_conversation(tokenizer, messages: Sequence[dict[str, str]], max_length: int,
                        loss_on: str = "assistant") -> Example:
    """Token ids of the rendered conversation; loss on every assistant turn incl. its EOT (or on all tokens)."""
    messages = [{"role": m["role"], "content": m["content"]} for m in messages]
    ids = _ids(tokenizer, messages)
    trainable = [loss_on == "all"] * len(ids)        # position 0 (BOS) is never a target: targets shift by one
    if loss_on == "assistant":
        previous = 0
        for i, message in enumerate(messages):
            end = len(_ids(tokenizer, messages[: i + 1]))
            if message["role"] == "assistant":
                for t in range(previous, end):
                    trainable[t] = True
            previous = end
        if previous != len(ids):
            raise ValueError("chat template renders prefixes inconsistently; cannot place assistant labels")
    trimmed = len(ids) > max_length
    ids, trainable = ids[:max_length], trainable[:max_length]
    targets = [ids[t + 1] if trainable[t + 1] else IGNORE for t in range(len(ids) - 1)] + [IGNORE]
    return Example(ids, targets, trimmed)


def encode_all(tokenizer, rows: Sequence[dict[str, Any]], max_length: int, loss_on: str) -> list[Example]:
    return [encode_conversation(tokenizer, row["messages"], max_length, loss_on) for row in rows]


def drop_untrainable(examples: Sequence[Example], rows: Sequence[dict[str, Any]]
                     ) -> tuple[list[Example], list[str]]:
    """The examples with at least one trainable token, and the ids of those without.

    A prompt that alone fills `max_length` leaves its response (and EOT) trimmed away: nothing to learn, and a
    step made only of such examples would divide by zero trainable tokens. They are dropped and counted
    (`run.json`: `n_dropped_no_trainable`, `dropped_ids`), never kept as empty weight.
    """
    kept = [ex for ex in examples if ex.n_trainable > 0]
    dropped = [str(row.get("id", i)) for i, (ex, row) in enumerate(zip(examples, rows, strict=True))
               if ex.n_trainable == 0]
    return kept, dropped


def model_context(config: Any) -> int | None:
    """The longest sequence a model's positions cover (`max_position_embeddings` and its older names)."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def pack(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """First-fit decreasing: group example indices into rows of at most `max_length` tokens."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda j: (-lengths[j], j)):
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(max_length - lengths[i])
    return [sorted(r) for r in rows]


def collate(examples: Sequence[Example], rows: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Rows of concatenated examples, padded to the longest row; position ids restart for every example.

    With `attention_mask=None`, transformers (≥4.54) reads restarting position ids as packed sequences and
    builds a block-diagonal causal mask (sdpa/eager) or uses variable-length kernels (flash attention), so
    no token attends across examples. Padding gets its own position run, i.e. its own block.
    """
    width = max(sum(len(examples[i].input_ids) for i in row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    n_real = 0
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            ex = examples[i]
            n = len(ex.input_ids)
            input_ids[r, at: at + n] = torch.tensor(ex.input_ids)
            targets[r, at: at + n] = torch.tensor(ex.targets)
            position_ids[r, at: at + n] = torch.arange(n)
            at += n
        position_ids[r, at:] = torch.arange(width - at)
        n_real += at
    return {"input_ids": input_ids, "targets": targets, "position_ids": position_ids,
            "n_real": torch.tensor(n_real)}


def plan_step(examples: Sequence[Example], packing: bool, micro_batch_size: int, max_length: int,
              pad_id: int, flat: bool = False) -> list[dict[str, torch.Tensor]]:
    """The micro-batches of one optimiser step: its examples packed (or one per row), `micro_batch_size` rows each.

    The step is defined by its examples (the paper's batch of 32), so packing and accumulation change only
    how the same tokens are laid out, never which tokens one optimiser step sees.

    `flat` (packing with variable-length attention, `lima.train.packed_attention`): a micro-batch is one
    row of up to `micro_batch_size × max_length` tokens, the same memory bound as `micro_batch_size` rows
    but with no padding at all; row length does not change the attention cost, only the examples do.
    """
    lengths = [len(ex.input_ids) for ex in examples]
    if packing and flat:
        return [collate(examples, [row], pad_id) for row in pack(lengths, micro_batch_size * max_length)]
    rows = pack(lengths, max_length) if packing else [[i] for i in sorted(range(len(examples)),
                                                                          key=lambda j: -lengths[j])]
    return [collate(examples, rows[k: k + micro_batch_size], pad_id) for k in range(0, len(rows), micro_batch_size)]


def packing_efficiency(batches: Sequence[dict[str, torch.Tensor]]) -> float:
    """Real tokens / computed positions (padding is the waste)."""
    real = sum(int(b["n_real"]) for b in batches)
    return real / max(1, sum(b["input_ids"].numel() for b in batches))


def step_token_count(batches: Sequence[dict[str, torch.Tensor]]) -> int:
    return sum(int((b["targets"] != IGNORE).sum()) for b in batches)

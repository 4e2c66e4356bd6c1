"""The context guard: a prompt and the tokens generated after it must fit the model's context, always.

The paper samples up to 2,048 new tokens (§4.1) from a model with a 2,048-token context, so "keep the prompt,
then leave `max_new_tokens`" leaves no room at all. The rule here, shared by the HF and vLLM backends:

- at most `context − reserve` prompt tokens are kept, `reserve = min(max_new_tokens, context // 2)`: a long
  prompt never squeezes the answer below half the context (or below `max_new_tokens` when that is smaller);
- a prompt longer than that is trimmed **from the same side as training** (lima.train.data keeps an
  example's beginning and loses its end): its beginning is kept and its end dropped, except the last `tail`
  tokens — the template's framing after the user's text (LIMA's EOT), or URIAL's query block — which the
  model needs in order to answer; the framing never takes more than half of what is kept;
- each prompt then gets `min(max_new_tokens, context − len(prompt))` new tokens, so prompt + answer ≤ context.

How many tokens were dropped and the budget a prompt got are returned, and the response rows record them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SENTINEL = "\ue000lima-context-sentinel\ue000"


@dataclass(frozen=True)
class Fitted:
    ids: list[int]
    dropped: int                 # prompt tokens removed by the guard (0: the prompt was kept whole)
    max_new_tokens: int          # this prompt's budget of new tokens


def fit_context(ids: list[int], max_new_tokens: int, context: int | None, tail: int = 0) -> Fitted:
    """Trim one prompt (keep its beginning and its last `tail` tokens) and give it a new-token budget."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not context:
        return Fitted(list(ids), 0, max_new_tokens)
    if context < 2:
        raise ValueError(f"a context of {context} tokens holds no prompt and answer")
    keep = context - min(max_new_tokens, context // 2)
    out = list(ids)
    if len(out) > keep:
        tail = max(0, min(tail, keep // 2))
        out = out[:keep - tail] + (out[len(out) - tail:] if tail else [])
    return Fitted(out, len(ids) - len(out), min(max_new_tokens, context - len(out)))


def tail_tokens(tokenizer: Any, text: str, suffix: str) -> int:
    """How many final tokens of `text` are `suffix` (0 when the text does not end with it)."""
    if not suffix or not text.endswith(suffix):
        return 0
    return len(tokenizer(suffix, add_special_tokens=False)["input_ids"])


def template_suffix(tokenizer: Any, conversation: list[dict[str, str]]) -> str:
    """The chat template's text after the last user message's content (LIMA's template: the EOT)."""
    probe = [*conversation[:-1], {**conversation[-1], "content": SENTINEL}]
    text = tokenizer.apply_chat_template(probe, tokenize=False)
    return text.split(SENTINEL, 1)[1] if SENTINEL in text else ""


def model_context(config: Any) -> int | None:
    """The context length a Hugging Face model config declares (None: unknown, no guard)."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None

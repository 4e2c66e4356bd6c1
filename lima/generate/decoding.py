"""The paper's decoding (§4.1): nucleus p = 0.9, temperature 0.7, repetition penalty 1.2 on generated tokens.

The repetition penalty is CTRL's (Keskar et al., 2019): a token's logit is divided by the penalty when
positive and multiplied by it when negative. LIMA applies it only to tokens *generated so far*. Hugging Face's
built-in `repetition_penalty` penalises every token in `input_ids`, prompt included, which would push the
model away from repeating the user's own words (names, code identifiers) — so we apply our own processor and
leave HF's at 1.0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from transformers import LogitsProcessor


@dataclass
class DecodingConfig:
    """The profile's `generate` section."""

    top_p: float = 0.9
    temperature: float = 0.7
    repetition_penalty: float = 1.2       # CTRL-style, on generated tokens only
    max_new_tokens: int = 2048
    batch_size: int = 8
    seed: int = 42
    backend: str = "hf"                   # hf | vllm
    do_sample: bool = True                # False: greedy (tests, debugging); the paper samples
    dtype: str | None = None              # None: the profile's model.dtype
    systems_file: str = "configs/systems.yaml"
    urial_template: str = "lima/resources/urial_prompt.md"   # URIAL's system prompt + 3 examples
    include_remote: bool = True           # False: endpoint systems are skipped (the smoke default: no spending)

    def as_dict(self) -> dict[str, Any]:
        """The decoding parameters recorded in every response row (not the batching/backend details)."""
        out = asdict(self)
        for key in ("batch_size", "backend", "dtype", "systems_file", "include_remote", "urial_template"):
            out.pop(key)
        return out


class GeneratedTokensRepetitionPenalty(LogitsProcessor):
    """CTRL repetition penalty restricted to positions at or after `prompt_length` in `input_ids`.

    With left padding every row of a batch has the same padded prompt length, so one integer marks where the
    generated tokens start.
    """

    def __init__(self, penalty: float, prompt_length: int) -> None:
        if penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {penalty}")
        self.penalty = float(penalty)
        self.prompt_length = int(prompt_length)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length:]
        if self.penalty == 1.0 or generated.shape[1] == 0:
            return scores
        picked = torch.gather(scores, 1, generated)
        picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores.scatter(1, generated, picked)

"""Generation with the paper's decoding (§4.1) for every system of the evaluation.

`load_generator` gives a batched sampler for a local model directory (HF by default, vLLM when configured);
`generate_responses` writes the responses file contract `{results}/responses/<system>.jsonl`, resumably.
Systems (LIMA, the Alpaca-style baseline, remote providers, URIAL, null, imported files) live in
`lima.generate.systems`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lima.generate.decoding import DecodingConfig, GeneratedTokensRepetitionPenalty
from lima.generate.hf import GenerationResult, HFGenerator
from lima.generate.responses import context_fields

__all__ = ["DecodingConfig", "GeneratedTokensRepetitionPenalty", "GenerationResult", "HFGenerator",
           "generate_responses", "load_generator", "decoding_of"]


def decoding_of(cfg: dict[str, Any]) -> DecodingConfig:
    from lima.config import section

    decoding = section(cfg, "generate", DecodingConfig)
    if decoding.dtype is None:
        decoding.dtype = (cfg.get("model") or {}).get("dtype") or "float32"
    return decoding


def load_generator(model_dir: str | os.PathLike[str], decoding: DecodingConfig) -> Any:
    """A generator with `.generate(conversations, seed=None) -> list[GenerationResult]`."""
    if decoding.backend == "vllm":
        from lima.generate.vllm_backend import VLLMGenerator

        return VLLMGenerator(model_dir, decoding)
    if decoding.backend != "hf":
        raise ValueError(f"generate.backend must be 'hf' or 'vllm', got {decoding.backend!r}")
    return HFGenerator(model_dir, decoding)


def generate_responses(cfg: dict[str, Any], system: str, model_dir: str | os.PathLike[str],
                       prompts: list[dict[str, Any]], output: str | os.PathLike[str],
                       samples_per_prompt: int = 1, generator: Any = None) -> Path:
    """Answer test.jsonl rows with a local model; resumable (see lima.generate.responses)."""
    from lima.generate.responses import resumable_generate

    decoding = decoding_of(cfg)
    state: dict[str, Any] = {"generator": generator}

    def produce(batch: list[tuple[dict[str, Any], int]], seed: int) -> list[dict[str, Any]]:
        if state["generator"] is None:                       # loaded only when something is left to answer
            state["generator"] = load_generator(model_dir, decoding)
        results = state["generator"].generate([p["messages"] for p, _ in batch], seed=seed)
        return [{"response": r.text, "stop_reason": r.stop_reason, "n_tokens": r.n_tokens, **context_fields(r)}
                for r in results]

    return resumable_generate(output, system, prompts, produce, batch_size=decoding.batch_size,
                              samples_per_prompt=samples_per_prompt, seed=decoding.seed, model=str(model_dir),
                              decoding=decoding.as_dict(), config=cfg.get("generate"),
                              sort_key=lambda row: sum(len(m.get("content", "")) for m in row.get("messages", [])))

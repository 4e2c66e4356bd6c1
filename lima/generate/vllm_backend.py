"""vLLM backend (GPU): the same `.generate(conversations, seed)` call as the HF reference, much faster.

The paper's repetition penalty touches generated tokens only. vLLM's own `repetition_penalty` also counts
the prompt, so we pass a per-request logits processor that sees only the output token ids — supported by
vLLM's V0 engine (`SamplingParams.logits_processors`). Where that hook is missing we refuse rather than
silently run a different decoding.
"""

from __future__ import annotations

import os
from typing import Any

from lima.generate.decoding import DecodingConfig
from lima.generate.hf import GenerationResult


class VLLMGenerator:
    def __init__(self, model_dir: str | os.PathLike[str], decoding: DecodingConfig) -> None:
        try:
            import vllm
        except ImportError:
            raise RuntimeError("generate.backend is 'vllm' but vllm is not installed (pip install '.[gpu]' on a "
                               "CUDA machine), or set generate.backend=hf, the reference path") from None
        from transformers import AutoTokenizer

        self.vllm = vllm
        self.decoding = decoding
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.llm = vllm.LLM(model=str(model_dir), dtype=decoding.dtype or "auto", seed=decoding.seed)
        if "logits_processors" not in getattr(vllm.SamplingParams, "__struct_fields__", ()) and \
                not hasattr(vllm.SamplingParams(), "logits_processors"):
            raise RuntimeError("this vllm has no per-request logits processors, so the paper's generated-only "
                               "repetition penalty cannot be applied; use generate.backend=hf")

    def _penalty(self) -> Any:
        penalty = self.decoding.repetition_penalty

        def processor(output_ids: list[int], logits: Any) -> Any:
            if not output_ids or penalty == 1.0:
                return logits
            import torch

            ids = torch.tensor(sorted(set(output_ids)), device=logits.device)
            picked = logits[ids]
            logits[ids] = torch.where(picked < 0, picked * penalty, picked / penalty)
            return logits

        return processor

    def generate(self, conversations: list[list[dict[str, str]]], seed: int | None = None,
                 **_: Any) -> list[GenerationResult]:
        d = self.decoding
        prompts = [self.tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
        params = self.vllm.SamplingParams(
            temperature=d.temperature if d.do_sample else 0.0, top_p=d.top_p, max_tokens=d.max_new_tokens,
            seed=d.seed if seed is None else seed, logits_processors=[self._penalty()], skip_special_tokens=True)
        outputs = self.llm.generate(prompts, params, use_tqdm=True)
        results = []
        for out in outputs:
            choice = out.outputs[0]
            reason = "eot" if choice.finish_reason == "stop" else str(choice.finish_reason)
            results.append(GenerationResult(text=choice.text.strip(), stop_reason=reason,
                                            n_tokens=len(choice.token_ids), prompt_tokens=len(out.prompt_token_ids),
                                            token_ids=list(choice.token_ids)))
        return results

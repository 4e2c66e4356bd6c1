"""vLLM backend (GPU): the same `.generate(conversations, seed)` call as the HF reference, much faster.

The paper's repetition penalty touches generated tokens only. vLLM's own `repetition_penalty` also counts
the prompt, so we pass a per-request logits processor that sees only the output token ids — supported by
vLLM's V0 engine (`SamplingParams.logits_processors`). Where that hook is missing we refuse rather than
silently run a different decoding.

Prompts go in as token ids (one BOS, the template's), each request with its own seed, and through the same
context guard as the HF backend.
"""

from __future__ import annotations

import os
from typing import Any

from lima.generate.context import Fitted, fit_context, tail_tokens, template_suffix
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
        self.context = self._context()

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

    def _context(self) -> int | None:
        """vLLM's max_model_len (what it will accept), else the model config's context."""
        engine = getattr(self.llm, "llm_engine", None)
        length = getattr(getattr(engine, "model_config", None), "max_model_len", None)
        return length if isinstance(length, int) and length > 0 else None

    def encode(self, conversation: list[dict[str, str]], max_new_tokens: int) -> Fitted:
        """The chat template rendered and tokenized *once*, without the tokenizer's own BOS.

        The LIMA template already writes BOS; vLLM given a string would tokenize it with add_special_tokens
        and prepend a second one. Passing token ids (`prompt_token_ids`) makes the prompt exactly the
        training format. The context guard (lima.generate.context) then fits prompt + answer in the context.
        """
        text = self.tokenizer.apply_chat_template(conversation, tokenize=False)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        tail = tail_tokens(self.tokenizer, text, template_suffix(self.tokenizer, conversation))
        return fit_context(ids, max_new_tokens, self.context, tail)

    def generate(self, conversations: list[list[dict[str, str]]], seed: int | None = None,
                 **_: Any) -> list[GenerationResult]:
        """One request per conversation, each with its own seed (`seed + i`) and new-token budget."""
        d = self.decoding
        base_seed = d.seed if seed is None else seed
        fitted = [self.encode(c, d.max_new_tokens) for c in conversations]
        prompts = [{"prompt_token_ids": f.ids} for f in fitted]
        params = [self.vllm.SamplingParams(
            temperature=d.temperature if d.do_sample else 0.0, top_p=d.top_p, max_tokens=f.max_new_tokens,
            seed=base_seed + i, logits_processors=[self._penalty()], skip_special_tokens=True)
            for i, f in enumerate(fitted)]
        outputs = self.llm.generate(prompts, params, use_tqdm=True)
        results = []
        for out, fit in zip(outputs, fitted, strict=True):
            choice = out.outputs[0]
            reason = "eot" if choice.finish_reason == "stop" else str(choice.finish_reason)
            results.append(GenerationResult(text=choice.text.strip(), stop_reason=reason,
                                            n_tokens=len(choice.token_ids), prompt_tokens=len(out.prompt_token_ids),
                                            token_ids=list(choice.token_ids), prompt_tokens_dropped=fit.dropped,
                                            max_new_tokens=fit.max_new_tokens))
        return results

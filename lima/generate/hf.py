"""Batched sampling with Hugging Face transformers: the reference backend (CPU or one GPU).

Prompts are sorted by length and cut into batches, so each batch pads little; padding goes on the left so
every row's next token sits in the last column. Each batch is seeded, so a run is reproducible. Every prompt
goes through the context guard (lima.generate.context) first: prompt + new tokens never exceed the context.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm
from transformers import GenerationConfig, LogitsProcessorList

from lima.generate.context import fit_context, model_context, tail_tokens, template_suffix
from lima.generate.decoding import DecodingConfig, GeneratedTokensRepetitionPenalty


@dataclass
class GenerationResult:
    text: str
    stop_reason: str                       # "eot" (EOT/EOS), "stop" (a stop string), "length" (max_new_tokens)
    n_tokens: int                          # response tokens, the stop token excluded
    prompt_tokens: int = 0
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[dict[str, Any]] | None = None   # per position {"token", "logprob", "top": {token: logprob}}
    prompt_tokens_dropped: int = 0         # the context guard trimmed this many prompt tokens (0: kept whole)
    max_new_tokens: int | None = None      # this prompt's new-token budget after the guard


class HFGenerator:
    """`generate(conversations)` applies the model's chat template; `generate_texts(prompts)` takes raw text."""

    def __init__(self, model_dir: str | os.PathLike[str], decoding: DecodingConfig, dtype: str = "auto",
                 device: str | None = None, loaded: tuple[Any, Any] | None = None) -> None:
        """`loaded` = (model, tokenizer) already in memory (the training model scoring its own checkpoint),
        used as they are instead of loading `model_dir` a second time."""
        from lima.model import load_model

        self.model_dir = str(model_dir)
        self.decoding = decoding
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if loaded is not None:
            self.model, self.tokenizer = loaded
            device = str(next(self.model.parameters()).device)
        else:
            self.model, self.tokenizer = load_model(model_dir, decoding.dtype or dtype, device=device)
        self.device = device
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.stop_ids = self._stop_ids()
        self.context = model_context(self.model.config)

    def _stop_ids(self) -> list[int]:
        """EOT first (the paper's end-of-turn), then whatever EOS ids the model's generation config lists."""
        ids: list[int] = []
        if self.has_chat_template:
            from lima.model import eot_id

            with contextlib.suppress(ValueError):
                ids.append(eot_id(self.tokenizer))
        eos = self.model.generation_config.eos_token_id
        ids += eos if isinstance(eos, list) else [eos]
        ids.append(self.tokenizer.eos_token_id)
        return list(dict.fromkeys(i for i in ids if i is not None))

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render(self, conversation: list[dict[str, str]]) -> str:
        if not self.has_chat_template:
            raise ValueError(f"{self.model_dir} has no chat template (a base model?): fine-tune it with "
                             "`lima train`, or use the URIAL system for an untuned base model")
        if not conversation or conversation[-1].get("role") != "user":
            raise ValueError("a conversation to answer must end with a user turn")
        return self.tokenizer.apply_chat_template(conversation, tokenize=False)

    def generate(self, conversations: list[list[dict[str, str]]], seed: int | None = None,
                 **kwargs: Any) -> list[GenerationResult]:
        texts = [self.render(c) for c in conversations]
        return self.generate_texts(texts, seed=seed, tails=[template_suffix(self.tokenizer, c) for c in conversations],
                                   **kwargs)

    def generate_texts(self, prompts: list[str], seed: int | None = None, *, stop: list[str] | None = None,
                       max_new_tokens: int | None = None, temperature: float | None = None,
                       top_p: float | None = None, do_sample: bool | None = None, top_logprobs: int | None = None,
                       repetition_penalty: float | None = None,
                       add_special_tokens: bool = False, batch_size: int | None = None,
                       progress: bool = False, tails: Sequence[str] | None = None) -> list[GenerationResult]:
        """Sample one continuation per prompt (in input order), batched by length.

        `tails[i]`: the end of prompt i that the context guard must keep when it trims (the template's framing).
        """
        d = self.decoding
        new_tokens = max_new_tokens or d.max_new_tokens
        encoded = [self.tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"] for p in prompts]
        fitted = [fit_context(ids, new_tokens, self.context, tail_tokens(self.tokenizer, text, tail))
                  for ids, text, tail in zip(encoded, prompts, tails or [""] * len(prompts), strict=True)]
        self._report_trimmed(fitted, new_tokens)
        encoded = [f.ids for f in fitted]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        size = max(1, batch_size or d.batch_size)
        batches = [order[i:i + size] for i in range(0, len(order), size)]
        results: list[GenerationResult | None] = [None] * len(prompts)
        base_seed = d.seed if seed is None else seed
        for number, batch in enumerate(tqdm(batches, desc="generate", unit="batch", disable=not progress)):
            torch.manual_seed(base_seed + number)
            outs = self._generate_batch([encoded[i] for i in batch], stop=stop,
                                        budgets=[fitted[i].max_new_tokens for i in batch],
                                        temperature=d.temperature if temperature is None else temperature,
                                        top_p=d.top_p if top_p is None else top_p,
                                        do_sample=d.do_sample if do_sample is None else do_sample,
                                        top_logprobs=top_logprobs,
                                        repetition_penalty=d.repetition_penalty if repetition_penalty is None
                                        else repetition_penalty)
            for i, out in zip(batch, outs, strict=True):
                out.prompt_tokens_dropped = fitted[i].dropped
                out.max_new_tokens = fitted[i].max_new_tokens
                results[i] = out
        return [r for r in results if r is not None]

    def _report_trimmed(self, fitted: list[Any], max_new_tokens: int) -> None:
        cut = [f for f in fitted if f.dropped]
        if cut:
            print(f"{self.model_dir}: {len(cut)} prompt(s) did not fit the {self.context}-token context with "
                  f"{max_new_tokens} new tokens; kept their beginning and template ending, dropped "
                  f"{sum(f.dropped for f in cut)} tokens in all (recorded per response)", file=sys.stderr)

    @torch.no_grad()
    def _generate_batch(self, rows: list[list[int]], *, stop: list[str] | None, budgets: list[int],
                        temperature: float, top_p: float, do_sample: bool,
                        top_logprobs: int | None, repetition_penalty: float) -> list[GenerationResult]:
        pad = self.tokenizer.pad_token_id
        width = max(len(r) for r in rows)
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long, device=self.device)
        attention = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long,
                                 device=self.device)
        sampling = {"temperature": temperature, "top_p": top_p, "top_k": 0} if do_sample and temperature > 0 else {}
        config = GenerationConfig(max_new_tokens=max(budgets), do_sample=bool(sampling), eos_token_id=self.stop_ids,
                                  pad_token_id=pad, repetition_penalty=1.0, stop_strings=stop or None,
                                  return_dict_in_generate=True, output_logits=bool(top_logprobs), **sampling)
        processors = LogitsProcessorList()
        if repetition_penalty != 1.0:
            processors.append(GeneratedTokensRepetitionPenalty(repetition_penalty, width))
        out = self.model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config,
                                  logits_processor=processors, tokenizer=self.tokenizer if stop else None)
        generated = out.sequences[:, width:].tolist()
        logprobs = None
        if top_logprobs:
            logprobs = torch.log_softmax(torch.stack(out.logits, dim=1).float(), dim=-1)   # (batch, steps, vocab)
        # a row whose budget is below the batch's stops at its budget: tokens past it would lie outside the context
        return [self._finish(row, generated[b][:budgets[b]], stop, None if logprobs is None else logprobs[b],
                             top_logprobs) for b, row in enumerate(rows)]

    def _finish(self, prompt: list[int], ids: list[int], stop: list[str] | None, logprobs: torch.Tensor | None,
                top_logprobs: int | None) -> GenerationResult:
        stop_reason = "length"
        for pos, tok in enumerate(ids):
            if tok in self.stop_ids:
                ids, stop_reason = ids[:pos], "eot"
                break
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        if stop and stop_reason == "length":
            cut = min((text.find(s) for s in stop if s in text), default=-1)
            if cut >= 0:
                text, stop_reason = text[:cut], "stop"
        details = None
        if logprobs is not None and top_logprobs:
            details = []
            for pos, tok in enumerate(ids):
                values, indices = logprobs[pos].topk(top_logprobs)
                details.append({"token": self.tokenizer.decode([tok]), "logprob": float(logprobs[pos, tok]),
                                "bytes": token_bytes(self.tokenizer, tok),
                                "top": {self.tokenizer.decode([i]): float(v)
                                        for v, i in zip(values.tolist(), indices.tolist(), strict=True)}})
        return GenerationResult(text=text.strip(), stop_reason=stop_reason, n_tokens=len(ids),
                                prompt_tokens=len(prompt), token_ids=ids, logprobs=details)


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's byte→printable-character table used by byte-level BPE vocabularies."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars, strict=True)}


_BYTE_DECODER = _byte_decoder()


def token_bytes(tokenizer: Any, token_id: int) -> list[int]:
    """The raw UTF-8 bytes of one token: a byte-level token may hold half a character, which decode() mangles."""
    piece = tokenizer.convert_ids_to_tokens(token_id)
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    if type(decoder).__name__ == "ByteLevel" and piece and all(c in _BYTE_DECODER for c in piece):
        return [_BYTE_DECODER[c] for c in piece]
    return list(tokenizer.decode([token_id]).encode("utf-8"))

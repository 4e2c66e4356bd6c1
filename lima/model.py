"""Base model and tokenizer: any Hugging Face causal LM, or the smoke profile's tiny Llama.

The paper adds a new special end-of-turn token (EOT) that ends every utterance, user and assistant alike.
It halts generation like EOS but carries none of EOS's pretrained meaning. `add_eot_token` adds it, resizes
the embeddings (new rows = mean of the existing rows, so the new token starts "average" rather than random)
and saves a Jinja chat template, so `tokenizer.apply_chat_template` at inference renders exactly the
training format:  [bos] user EOT assistant EOT user EOT ...   (no role headers: the paper uses none).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

SMOKE_BASE = "smoke-tiny-llama"
DEFAULT_EOT = "<|eot|>"


@dataclass
class SmokeModelConfig:
    """The embedded default's tiny Llama (random init + a brief pre-training on the synthetic raw corpus)."""

    vocab_size: int = 2048
    hidden_size: int = 128
    intermediate_size: int = 352
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 512
    pretrain_steps: int = 150
    pretrain_learning_rate: float = 3e-3
    pretrain_batch_size: int = 8
    pretrain_seq_len: int = 256
    pretrain_warmup: float = 0.02         # share of the steps with a linear warm-up (world base)
    pretrain_dtype: str = "float32"       # auto | float32 | bfloat16 (lima.train.precision.pick_dtype)
    pretrain_threads: int | None = None   # torch threads while pretraining (None: torch's default)
    pretrain_weight_decay: float = 0.0    # world base: none, pretraining memorises the world


@dataclass
class ModelConfig:
    base: str = SMOKE_BASE            # HF id, local path, or "smoke-tiny-llama"
    eot_token: str = DEFAULT_EOT
    dtype: str = "bfloat16"
    smoke: SmokeModelConfig | None = None


def chat_template(eot_token: str) -> str:
    """Jinja template: optional BOS, then every message's content followed by EOT; no role markers."""
    return (
        "{% if bos_token %}{{ bos_token }}{% endif %}"
        "{% for message in messages %}{{ message['content'] }}" + eot_token + "{% endfor %}"
    )


def train_smoke_tokenizer(texts: Iterable[str], vocab_size: int, max_length: int = 512):
    """A byte-level BPE trained locally on the raw corpus: nothing is downloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   model_max_length=max_length)


def build_smoke_model(cfg: SmokeModelConfig, tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, max_position_embeddings=cfg.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def pretrain(model, tokenizer, texts: Sequence[str], steps: int, learning_rate: float, batch_size: int,
             seq_len: int, seed: int = 0) -> list[float]:
    """A brief causal-LM pre-training so the smoke "base model" has seen its corpus (ours, not the paper's)."""
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text)["input_ids"] + [tokenizer.eos_token_id])
    n_windows = max(1, len(ids) // seq_len)
    data = torch.tensor(ids[: n_windows * seq_len] or ids, dtype=torch.long).view(-1, min(seq_len, len(ids)))
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=0.1)
    losses = []
    model.train()
    for step in range(steps):
        lr = learning_rate * 0.5 * (1 + math.cos(math.pi * step / max(1, steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        batch = data[[rng.randrange(len(data)) for _ in range(batch_size)]]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses


def build_smoke_base(cfg: SmokeModelConfig, corpus: Sequence[str], out_dir: str | Path, seed: int = 0) -> Path:
    """Tokenizer + tiny Llama (+ brief pre-training) saved as an ordinary HF model directory."""
    from lima.io import write_manifest

    out_dir = Path(out_dir)
    tokenizer = train_smoke_tokenizer(corpus, cfg.vocab_size, cfg.max_position_embeddings)
    model = build_smoke_model(cfg, tokenizer, seed)
    losses = pretrain(model, tokenizer, corpus, cfg.pretrain_steps, cfg.pretrain_learning_rate,
                      cfg.pretrain_batch_size, min(cfg.pretrain_seq_len, cfg.max_position_embeddings), seed)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    write_manifest(out_dir, config=cfg, extra={"kind": "smoke base model (random init + brief pre-training)",
                                               "pretrain_loss_first_last": [losses[:1], losses[-1:]]})
    return out_dir


def add_eot_token(tokenizer, model=None, eot_token: str = DEFAULT_EOT) -> int:
    """Add EOT as a new special token, resize embeddings (mean init) and set the chat template."""
    from tokenizers import AddedToken

    added = tokenizer.add_tokens([AddedToken(eot_token, special=True, normalized=False)], special_tokens=True)
    eot_id = tokenizer.convert_tokens_to_ids(eot_token)
    tokenizer.chat_template = chat_template(eot_token)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or eot_token
    if model is not None and (added or len(tokenizer) > model.get_input_embeddings().weight.shape[0]):
        old = model.get_input_embeddings().weight.shape[0]
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            for emb in {id(e): e for e in (model.get_input_embeddings(), model.get_output_embeddings())
                        if e is not None}.values():
                emb.weight[old:] = emb.weight[:old].mean(dim=0, keepdim=True)
    if model is not None:
        set_eot_generation_config(model, tokenizer, eot_id)
    return eot_id


def set_eot_generation_config(model, tokenizer, eot: int) -> None:
    """EOT first among the model's stop ids (then its EOS ids), pad = the tokenizer's pad: generation stops at
    the end of the turn. Also for a model loaded fresh from the base (QLoRA's merge on export)."""
    gen = model.generation_config
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    gen.eos_token_id = [eot] + [e for e in eos if e is not None and e != eot]
    gen.pad_token_id = tokenizer.pad_token_id


_TEMPLATE_EOT = re.compile(r"\{\{ message\['content'\] \}\}(.+?)\{% endfor %\}")


def eot_token_of(tokenizer) -> str:
    """The EOT string of a tokenizer saved by `lima train`, read back from its chat template."""
    match = _TEMPLATE_EOT.search(tokenizer.chat_template or "")
    if not match or tokenizer.convert_tokens_to_ids(match.group(1)) in (None, tokenizer.unk_token_id):
        raise ValueError("tokenizer has no LIMA chat template with an EOT token: was it saved by `lima train`?")
    return match.group(1)


def eot_id(tokenizer) -> int:
    return tokenizer.convert_tokens_to_ids(eot_token_of(tokenizer))


def load_model(path: str | Path, dtype: str | torch.dtype = "float32", device: str | None = None,
               **kwargs: Any):
    """Load (model, tokenizer) from an HF id or directory; `dtype` 'auto' keeps the saved one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    torch_dtype = dtype if isinstance(dtype, torch.dtype) or dtype == "auto" else getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype, **kwargs)
    if device:
        model.to(device)
    model.eval()
    return model, tokenizer

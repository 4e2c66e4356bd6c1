"""What benchmarks/gpu.py's measurements share: model sizes, data, random-init models, timing and memory.

Why a committed data file: the device machine has PyTorch, transformers and peft but not the packages of the
data pipeline (datasketch, markdownify, py7zr, ...), and it cannot download. So the smoke pipeline's own curated
`train.jsonl` (synthetic dumps → collect → curate: LIMA's wide spread of lengths, long wikiHow / Stack Exchange
answers next to short SNI outputs) is made here once (`python benchmarks/gpu.py --make-data`) and read there.
Models are random-init from a config (Llama architecture), never downloaded; their tokenizer is a byte-level BPE
trained on that data, smaller than the model's vocabulary (so token ids always fit).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "smoke_train.jsonl"


@dataclass(frozen=True)
class Arch:
    """A Llama-architecture model size (the `LlamaConfig` fields that set its cost)."""

    name: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int = 32000

    def llama_config(self, max_position: int):
        from transformers import LlamaConfig

        return LlamaConfig(hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
                           num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
                           num_key_value_heads=self.num_key_value_heads, vocab_size=self.vocab_size,
                           max_position_embeddings=max_position, tie_word_embeddings=False,
                           bos_token_id=0, eos_token_id=1, pad_token_id=2)

    def params(self) -> int:
        """Parameter count (embeddings and lm_head included), computed without building the model."""
        h, i, n_layers = self.hidden_size, self.intermediate_size, self.num_hidden_layers
        kv = h * self.num_key_value_heads // self.num_attention_heads
        layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h
        return n_layers * layer + 2 * self.vocab_size * h + h


# GPU sizes: TinyLlama-1.1B, LLaMA-7B, LLaMA-65B (the paper's base). Toy sizes keep the same shapes' roles.
SIZES = {
    "1b": Arch("llama-1.1b", 2048, 5632, 22, 32, 4),
    "7b": Arch("llama-7b", 4096, 11008, 32, 32, 32),
    "65b": Arch("llama-65b", 8192, 22016, 80, 64, 64),
}
TOY_SIZES = {
    "1b": Arch("toy-1b-shape", 64, 176, 2, 4, 2, vocab_size=640),
    "7b": Arch("toy-7b-shape", 96, 256, 2, 4, 4, vocab_size=640),
    "65b": Arch("toy-65b-shape", 128, 344, 3, 4, 4, vocab_size=640),
}


def make_data(out: Path = DATA) -> Path:
    """Run the smoke pipeline (synthetic dumps → collect → curate) in a temp root; keep its train.jsonl."""
    import tempfile

    from lima.config import load_profile, resolve
    from lima.curation import curate
    from lima.data import collect_all
    from lima.data.synthetic import generate_dumps
    from lima.io import read_jsonl, write_jsonl

    with tempfile.TemporaryDirectory(prefix="lima-gpu-data-") as tmp:
        cfg = load_profile("smoke", {"paths.root": tmp})
        generate_dumps(cfg)
        collect_all(cfg)
        curate(cfg)
        rows = read_jsonl(resolve(cfg["paths"]["processed"]) / "train.jsonl")
    write_jsonl(out, rows, config={"profile": "smoke", "made_by": "benchmarks/gpu.py --make-data"})
    return out


def load_rows(path: Path = DATA) -> list[dict[str, Any]]:
    from lima.io import read_jsonl

    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; make it with `python benchmarks/gpu.py --make-data`")
    return read_jsonl(path)


def make_tokenizer(rows: list[dict[str, Any]], vocab: int, max_length: int, eot: str = "<|eot|>"):
    """A BPE trained on the rows (nothing downloaded), EOT already added so loading never resizes the model."""
    from lima.model import add_eot_token, train_smoke_tokenizer

    texts = [m["content"] for r in rows for m in r["messages"]]
    tokenizer = train_smoke_tokenizer(texts, vocab, max_length)
    add_eot_token(tokenizer, None, eot)
    return tokenizer


def random_model(arch: Arch, max_position: int, device: str, dtype: torch.dtype):
    """A random-init Llama built directly on `device` in `dtype` (no fp32 copy on the host for big sizes)."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(arch.llama_config(max_position))
    finally:
        torch.set_default_dtype(previous)
    return model


def save_start(arch: Arch, tokenizer, out: Path, max_position: int, device: str) -> Path:
    """A start directory for `finetune` / `HFGenerator`: random-init weights (bf16) + our tokenizer with EOT."""
    model = random_model(arch, max_position, device, torch.bfloat16)
    eot = tokenizer.convert_tokens_to_ids("<|eot|>")
    model.config.bos_token_id, model.config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = [eot, tokenizer.eos_token_id]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    free()
    return out


def free() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> dict[str, float | None]:
    """`torch.cuda.max_memory_allocated` in GiB (None on CPU, where it does not exist)."""
    if not torch.cuda.is_available():
        return {"peak_allocated_gib": None, "peak_reserved_gib": None}
    return {"peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3)}


@contextlib.contextmanager
def measured(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Fill `record` with wall seconds and peak memory of the block; an exception is recorded, not raised,
    so one failing measurement in a device run does not lose the others."""
    free()
    reset_peak()
    start = time.perf_counter()
    try:
        yield record
        record.setdefault("status", "measured")
    except Exception as exc:  # noqa: BLE001 — recorded in the JSON, the run goes on
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        sync()
        record["seconds"] = round(time.perf_counter() - start, 4)
        record.update(peak_memory())
        free()


def matmul_rate(n: int, device: str, repeats: int = 10, warmup: int = 3) -> dict[str, Any]:
    """The chip's measured bf16 matmul rate (2·n³ FLOP per n×n×n product), the MFU denominator."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(warmup):
        a @ b
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    seconds = (time.perf_counter() - start) / repeats
    return {"n": n, "dtype": "bfloat16", "repeats": repeats, "warmup": warmup, "seconds_per_matmul": seconds,
            "tflops": 2 * n**3 / seconds / 1e12}


def timed_steps(step: Callable[[int], int], warmup: int, steps: int) -> dict[str, float]:
    """Run `warmup` untimed then `steps` timed calls of `step(i) -> tokens`; tokens/s over the timed ones."""
    for i in range(warmup):
        step(i)
    sync()
    start = time.perf_counter()
    tokens = sum(step(warmup + i) for i in range(steps))
    sync()
    seconds = time.perf_counter() - start
    return {"tokens": tokens, "timed_seconds": seconds, "tokens_per_s": tokens / seconds}


def arch_dict(arch: Arch) -> dict[str, Any]:
    return {**asdict(arch), "params": arch.params()}

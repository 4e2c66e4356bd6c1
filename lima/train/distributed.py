"""One process on a CPU/GPU, or many under `accelerate launch` (FSDP / DeepSpeed ZeRO-3): the same loop.

Single-process runs use plain torch, which keeps them exact and easy to read. When launched with
WORLD_SIZE > 1, `accelerate.Accelerator` wraps the model and optimiser; every rank builds the same
optimiser step (the data order is a pure function of seed and epoch) and takes every world_size-th row of
it. Ranks with fewer rows run a zero-weight copy of one, so FSDP's collectives stay in step, and the loss
of every rank is divided by the step's *global* trainable-token count times world_size⁻¹, so the averaged
gradient is exactly the single-process one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch


class Runtime:
    def __init__(self) -> None:
        self.accelerator = None
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = 0
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.world_size > 1:
            from accelerate import Accelerator

            self.accelerator = Accelerator()
            self.rank = self.accelerator.process_index
            self.device = self.accelerator.device

    @property
    def distributed(self) -> bool:
        return self.accelerator is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def prepare(self, model, optimizer):
        if self.accelerator is None:
            return model.to(self.device), optimizer
        return self.accelerator.prepare(model, optimizer)

    def shard(self, batches: Sequence[Any]) -> Iterator[tuple[Any, float]]:
        """This rank's micro-batches with their weight (0.0 for padding copies)."""
        mine = list(batches[self.rank:: self.world_size])
        rounds = -(-len(batches) // self.world_size)
        yield from ((b, 1.0) for b in mine)
        yield from ((batches[0], 0.0) for _ in range(rounds - len(mine)))

    def backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is None:
            loss.backward()
        else:
            self.accelerator.backward(loss * self.world_size)   # DDP/FSDP average; we want the global sum

    def clip(self, model, max_norm: float | None) -> float:
        params = [p for p in model.parameters() if p.requires_grad]
        limit = max_norm if max_norm is not None else float("inf")
        if self.accelerator is not None:
            return float(self.accelerator.clip_grad_norm_(params, limit))
        return float(torch.nn.utils.clip_grad_norm_(params, limit))

    def unwrap(self, model):
        return model if self.accelerator is None else self.accelerator.unwrap_model(model)

    def state_dict(self, model) -> dict | None:
        return None if self.accelerator is None else self.accelerator.get_state_dict(model)

    def barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    @property
    def kind(self) -> str:
        """accelerate's distributed type (MULTI_CPU, MULTI_GPU, FSDP, DEEPSPEED, ...), or NO for one process."""
        return "NO" if self.accelerator is None else self.accelerator.distributed_type.name

    @property
    def sharded(self) -> bool:
        """FSDP / DeepSpeed: no rank holds the whole model, so a forward pass needs every rank."""
        return self.kind in {"FSDP", "DEEPSPEED"}

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (a picklable object), e.g. the dev-quality score only rank 0 computes."""
        if self.accelerator is None:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]

    def autocast(self, dtype: torch.dtype) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA or CPU (fp32 master weights); fp32 runs as it is. The context is entered per
        micro-batch, so autocast's weight-cast cache never outlives an optimiser step."""
        if dtype in (torch.bfloat16, torch.float16):
            return torch.autocast(self.device.type, dtype=dtype)
        return contextlib.nullcontext()

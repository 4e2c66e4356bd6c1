"""Per-request state of `lima serve`'s engine: rows, jobs, the per-row sampler and stopping criterion, the
running batch's cache, and the seed rules — what one row of a shared forward pass needs to stay its own
(see `lima.serving.engine` for how the worker runs them)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from transformers import LogitsProcessor, StoppingCriteria

from lima.serving.protocol import Sampling

if TYPE_CHECKING:
    from lima.serving.engine import Engine

@dataclass
class Row:
    """One sequence to generate: one choice of one prompt of one request."""

    job: Job
    index: int                        # the choice's index in the response
    prompt_ids: list[int]
    sampling: Sampling
    max_tokens: int
    seed: int
    strip: bool                       # chat replies are stripped of surrounding whitespace (as `lima generate`)
    prefix: str = ""                  # completions with echo: the prompt text, sent before the completion
    ids: list[int] = field(default_factory=list)
    entries: list[tuple[int, float, list[int], list[float]]] = field(default_factory=list)
    pending: tuple[int, float, list[int], list[float]] | None = None
    finished: bool = False
    emitted: str = ""                 # text already streamed
    emitted_entries: int = 0
    generator: torch.Generator | None = None


class Job:
    """One HTTP request: its rows, the event queue its handler reads, and its cancellation flag."""

    def __init__(self, rows_spec: list[dict[str, Any]], loop: asyncio.AbstractEventLoop, stream: bool,
                 guided_choice: list[str] | None = None) -> None:
        self.loop = loop
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.stream = stream
        self.guided_choice = guided_choice
        self.cancelled = threading.Event()
        self.rows = [Row(job=self, **spec) for spec in rows_spec]
        self.submitted = time.monotonic()

    def cancel(self) -> None:
        self.cancelled.set()

    def emit(self, event: dict[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):            # the server's loop is gone: nobody is listening
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)


class RowSampler(LogitsProcessor):
    """Per-row sampling inside one batched forward pass (see the module docstring)."""

    def __init__(self, engine: Engine, rows: list[Row]) -> None:
        self.engine, self.rows = engine, rows
        for row in rows:
            if row.generator is None:                 # seeded once, when the row enters its first batch
                row.generator = torch.Generator().manual_seed(row.seed % 2**64)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """The `generate()` hook: the chosen token of every row as a one-hot score row."""
        chosen = self.choose(scores)
        # generate() hands us its own copy of the logits, so the one-hot row can be written in place
        scores.fill_(float("-inf"))
        scores[torch.arange(scores.shape[0], device=scores.device), chosen.to(scores.device)] = 0.0
        return scores

    def choose(self, scores: torch.Tensor) -> torch.Tensor:
        """The next token of every unfinished row (finished rows get 0), on the CPU; logprobs go to `pending`."""
        batch, vocab = scores.shape
        chosen = torch.zeros(batch, dtype=torch.long)
        active = [b for b, row in enumerate(self.rows) if not row.finished]
        stop_ids = self.engine.stop_ids
        edits = any(self.rows[b].sampling.repetition_penalty != 1.0 or self.rows[b].sampling.ignore_eos
                    or self.rows[b].sampling.min_tokens for b in active)
        # `scores` itself stays untouched (logprobs read it below); advanced indexing copies
        work = (scores.clone() if edits else scores) if len(active) == batch else scores[active]
        for i, b in enumerate(active):
            row = self.rows[b]
            s = row.sampling
            if s.repetition_penalty != 1.0 and row.ids:
                ids = torch.tensor(sorted(set(row.ids)), device=work.device)
                picked = work[i, ids]
                work[i, ids] = torch.where(picked < 0, picked * s.repetition_penalty, picked / s.repetition_penalty)
            if stop_ids and (s.ignore_eos or len(row.ids) < s.min_tokens):
                work[i, stop_ids] = float("-inf")
        greedy = [i for i, b in enumerate(active) if self.rows[b].sampling.temperature == 0]
        sampled = [i for i, b in enumerate(active) if self.rows[b].sampling.temperature > 0]
        picks = torch.zeros(len(active), dtype=torch.long)
        if greedy:
            picks[greedy] = work[greedy].argmax(-1).cpu()
        if sampled:
            picks[sampled] = self._sample(work[sampled], [self.rows[active[i]] for i in sampled]).cpu()
        if active:
            chosen[active] = picks
        want = [(i, b) for i, b in enumerate(active) if self.rows[b].sampling.logprobs is not None]
        if want:
            k = max(max(self.rows[b].sampling.logprobs or 0 for _, b in want), 1)
            logp = torch.log_softmax(scores[[b for _, b in want]].float(), dim=-1)
            top_v, top_i = logp.topk(min(k, vocab), dim=-1)
            mine = logp.gather(1, picks[[i for i, _ in want]].to(logp.device)[:, None])[:, 0]
            top_v, top_i, mine = top_v.tolist(), top_i.tolist(), mine.tolist()
            for j, (i, b) in enumerate(want):
                self.rows[b].pending = (int(picks[i]), float(mine[j]), top_i[j], top_v[j])
        return chosen

    @staticmethod
    def _sample(logits: torch.Tensor, rows: list[Row]) -> torch.Tensor:
        """Temperature, top-k, top-p, then inverse-CDF sampling with one uniform per row from its own generator."""
        temps = torch.tensor([r.sampling.temperature for r in rows], device=logits.device)
        logits = logits / temps[:, None]
        top_k = [r.sampling.top_k for r in rows]
        if any(top_k):
            for i, k in enumerate(top_k):
                if 0 < k < logits.shape[1]:
                    kth = logits[i].topk(k).values[-1]
                    logits[i] = logits[i].masked_fill(logits[i] < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        top_p = torch.tensor([r.sampling.top_p for r in rows], device=logits.device)
        if bool((top_p < 1.0).any()):
            sorted_p, order = probs.sort(dim=-1, descending=True)
            before = sorted_p.cumsum(-1) - sorted_p              # mass of the tokens ranked above each token
            limit = torch.where(top_p >= 1.0, torch.full_like(top_p, float("inf")), top_p)
            sorted_p = sorted_p * (before < limit[:, None])
        else:
            sorted_p, order = probs, None
        cdf = sorted_p.cumsum(-1)
        uniform = torch.tensor([float(torch.rand(1, generator=r.generator)) for r in rows], device=logits.device)
        target = (uniform * cdf[:, -1])[:, None]
        pos = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[1] - 1)
        return (order.gather(1, pos) if order is not None else pos)[:, 0]


class RowMonitor(StoppingCriteria):
    """Per-row stopping, streaming and early answers (see the module docstring)."""

    def __init__(self, engine: Engine, rows: list[Row]) -> None:
        self.engine, self.rows = engine, rows

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        last = input_ids[:, -1].tolist()
        flags = []
        for b, row in enumerate(self.rows):
            if not row.finished:
                if row.job.cancelled.is_set():
                    self.engine.finish(row, "cancelled")
                else:
                    self.engine.advance(row, int(last[b]))
            flags.append(row.finished)
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)


@dataclass
class _Batch:
    """The running rows' key/value cache, attention mask, last positions and last tokens (continuous mode).

    Rows are aligned on the right: a row's tokens fill the last columns, left padding is masked out, and each
    row has its own position ids, so rows of different lengths share one cache.
    """

    cache: Any
    mask: torch.Tensor          # (rows, columns) 1 where the column holds one of the row's tokens
    pos: torch.Tensor           # (rows,) position of each row's last token
    last: torch.Tensor          # (rows,) the token each row feeds next (CPU)

    def _layers(self) -> list[Any]:
        return list(self.cache.layers)

    def merge(self, other: _Batch) -> _Batch:
        """Both batches left-padded to the same number of columns, then stacked."""
        import torch.nn.functional as F

        width = max(self.mask.shape[1], other.mask.shape[1])
        grow_a, grow_b = width - self.mask.shape[1], width - other.mask.shape[1]
        for mine, theirs in zip(self._layers(), other._layers(), strict=True):
            mine.keys = torch.cat([F.pad(mine.keys, (0, 0, grow_a, 0)), F.pad(theirs.keys, (0, 0, grow_b, 0))])
            mine.values = torch.cat([F.pad(mine.values, (0, 0, grow_a, 0)),
                                     F.pad(theirs.values, (0, 0, grow_b, 0))])
        self.mask = torch.cat([F.pad(self.mask, (grow_a, 0)), F.pad(other.mask, (grow_b, 0))])
        self.pos = torch.cat([self.pos, other.pos])
        self.last = torch.cat([self.last, other.last])
        return self

    def select(self, keep: torch.Tensor) -> None:
        """Keep the rows `keep`, and drop the leading columns none of them uses any more."""
        self.mask = self.mask.index_select(0, keep)
        used = self.mask.any(0).nonzero()
        first = int(used[0]) if len(used) else 0
        for layer in self._layers():
            layer.keys = layer.keys.index_select(0, keep)[:, :, first:]
            layer.values = layer.values.index_select(0, keep)[:, :, first:]
        self.mask = self.mask[:, first:]
        self.pos = self.pos.index_select(0, keep)
        self.last = self.last.index_select(0, keep.cpu())


def random_seed() -> int:
    return random.randrange(2**63)


def choice_seed(seed: int, index: int) -> int:
    """Choice 0 of n uses the request's seed (so n=1 and choice 0 of n=2 agree); the others derive from it."""
    return seed if index == 0 else (seed + index * 0x9E3779B97F4A7C15) % 2**64

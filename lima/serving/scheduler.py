"""The engine's queue: submitting and closing, the stats counters, and which queued requests run next.

Kept apart from engine.py because choosing the next batch (the windowed take, the continuous take that fills
the room beside running rows, guided-choice jobs run alone, cancelled jobs dropped before they start) is
plain locking and bookkeeping with no model or torch in it; `Engine` mixes `_Scheduler` in, and engine.py
keeps the worker loops and the forward passes.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lima.serving.rows import Job, Row


class _Scheduler:
    """The queue half of `Engine` (mixed into it; the attributes are set in `Engine.__init__`)."""

    max_batch_size: int
    batch_window: float
    stats: dict[str, int]
    _pending: collections.deque[Job]
    _running: list[Job]
    _active: list[Row]
    _cond: threading.Condition
    _closed: bool
    _stats_lock: threading.Lock
    _thread: threading.Thread

    # ---- the queue ---------------------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the engine is closed")
            self._pending.append(job)
            self.count(requests=1)
            self._cond.notify()

    def close(self) -> None:
        """Stop the worker: queued and running requests are cancelled (their rows stop at the next token)."""
        with self._cond:
            self._closed = True
            for job in [*self._pending, *self._running]:
                job.cancel()
            for job in self._pending:                 # never started: nobody else will answer them
                job.emit({"type": "cancelled"})
            self._pending.clear()
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def count(self, **deltas: int) -> None:
        with self._stats_lock:
            for key, value in deltas.items():
                self.stats[key] = self.stats.get(key, 0) + value

    def _take(self) -> list[Job] | None:
        with self._cond:
            while True:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return None
                self._drop_cancelled()
                if self._pending:
                    break
            if self._pending[0].guided_choice is not None:
                self._running = [self._pending.popleft()]
                return self._running
            deadline = time.monotonic() + self.batch_window
            while sum(len(j.rows) for j in self._pending if j.guided_choice is None) < self.max_batch_size:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    break
                self._cond.wait(left)
            self._drop_cancelled()
            batch: list[Job] = []
            size = 0
            for job in list(self._pending):
                if job.guided_choice is not None:
                    continue
                if batch and size + len(job.rows) > self.max_batch_size:
                    break
                batch.append(job)
                size += len(job.rows)
            for job in batch:
                self._pending.remove(job)
            self._running = batch
            return batch

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._pending if j.cancelled.is_set()]:
            self._pending.remove(job)
            self.count(dropped_before_start=1)
            job.emit({"type": "cancelled"})

    def _take_continuous(self, running: int) -> tuple[list[Job], list[Job]] | None:
        """(generation jobs that fit beside `running` rows, guided-choice jobs); None once closed."""
        room = self.max_batch_size - running
        with self._cond:
            if not running:
                while not self._pending and not self._closed:
                    self._cond.wait()
            if self._closed:
                return None
            self._drop_cancelled()
            guided = [j for j in self._pending if j.guided_choice is not None]
            for job in guided:
                self._pending.remove(job)
            if not running and not guided and self._pending:      # idle: let companions arrive
                deadline = time.monotonic() + self.batch_window
                while sum(len(j.rows) for j in self._pending) < room and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                self._drop_cancelled()
            jobs: list[Job] = []
            size = 0
            for job in list(self._pending):
                if job.guided_choice is not None:
                    continue
                if size + len(job.rows) > room and (jobs or running):
                    break
                jobs.append(job)
                size += len(job.rows)
            for job in jobs:
                self._pending.remove(job)
            self._running = [*{id(r.job): r.job for r in self._active}.values(), *jobs, *guided]
            return jobs, guided

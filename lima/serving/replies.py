"""What a row's tokens become: the token appended, stop strings and `max_tokens` checked, the visible text,
streamed deltas, the finish (or cancelled) event and the logprob entries.

Kept apart from engine.py because this per-row bookkeeping is the same whichever way the tokens were made
(a continuous-batching decode step, `model.generate` through `RowMonitor`) and needs no torch; `Engine`
mixes `_Replies` in, and engine.py keeps the worker loops and the forward passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lima.serving.rows import Row


class _Replies:
    """The reply half of `Engine` (mixed into it; the attributes are set in `Engine.__init__`)."""

    tokenizer: Any
    stop_ids: list[int]
    _token_bytes: Any

    if TYPE_CHECKING:                          # provided by Engine and _Scheduler
        def decode(self, ids: list[int]) -> str: ...

        def decode_one(self, token: int) -> str: ...

        def count(self, **deltas: int) -> None: ...

    def advance(self, row: Row, token: int) -> None:
        s = row.sampling
        masked = s.ignore_eos or len(row.ids) < s.min_tokens
        if token in self.stop_ids and not masked:
            self.finish(row, "stop")
            return
        row.ids.append(token)
        if row.pending is not None:
            row.entries.append(row.pending)
            row.pending = None
        self.count(generated_tokens=1)
        if s.stop and self._tail_has_stop(row):
            self.finish(row, "stop")
        elif len(row.ids) >= row.max_tokens:
            self.finish(row, "length")
        elif row.job.stream:
            self._stream(row, self.visible(row, final=False))

    def _tail_has_stop(self, row: Row) -> bool:
        longest = max(len(s) for s in row.sampling.stop)
        tail = self.decode(row.ids[-(4 * longest + 4):])
        return any(s in tail for s in row.sampling.stop)

    def visible(self, row: Row, final: bool) -> str:
        """The reply text as far as it is certain: cut at a stop string, stripped, minus what may still change."""
        text = self.decode(row.ids)
        stop = row.sampling.stop
        cut = min((text.find(s) for s in stop if s in text), default=-1)
        found = cut >= 0
        if found:
            text = text[:cut]
        if row.strip:
            text = text.lstrip()
        if not final and not found:
            hold = max((len(s) for s in stop), default=1) - 1     # may be the start of a stop string
            if hold:
                text = text[:max(0, len(text) - hold)]
            text = text.rstrip("\ufffd")                         # half a UTF-8 character
        if row.strip:
            text = text.rstrip()
        return row.prefix + text

    def _stream(self, row: Row, text: str) -> None:
        if len(text) > len(row.emitted) and text.startswith(row.emitted):
            piece = text[len(row.emitted):]
            row.emitted = text
            entries = row.entries[row.emitted_entries:]
            row.emitted_entries = len(row.entries)
            row.job.emit({"type": "delta", "index": row.index, "text": piece,
                          "entries": self.entries(entries, row.sampling.logprobs)})

    def finish(self, row: Row, reason: str) -> None:
        row.finished = True
        if reason == "cancelled":
            self.count(cancelled_rows=1)
            row.job.emit({"type": "cancelled"})
            return
        text = self.visible(row, final=True)
        if row.job.stream:
            self._stream(row, text)
        row.job.emit({"type": "finish", "index": row.index, "text": text, "finish_reason": reason,
                      "n_tokens": len(row.ids), "entries": self.entries(row.entries, row.sampling.logprobs),
                      "tail_entries": self.entries(row.entries[row.emitted_entries:], row.sampling.logprobs)})

    def entries(self, raw: list[tuple[int, float, list[int], list[float]]], k: int | None) -> list[dict[str, Any]]:
        """(token id, logprob, top ids, top logprobs) → {"token", "logprob", "bytes", "top": [(t, lp, bytes)]}."""
        if k is None:
            return []
        out = []
        for token, logprob, top_ids, top_vals in raw:
            out.append({"token": self.decode_one(token), "logprob": logprob, "bytes": self._token_bytes(
                self.tokenizer, token), "top": [(self.decode_one(t), v, self._token_bytes(self.tokenizer, t))
                                                for t, v in zip(top_ids[:k], top_vals[:k], strict=True)]})
        return out

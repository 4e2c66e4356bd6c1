"""Completions-API systems: text-davinci-003 was a completions model, not a chat model.

The paper's DaVinci003 baseline answered a bare prompt through OpenAI's `/v1/completions`; sending it chat
messages (which a retired model's archive or a compatible server may not even accept) would be a different
system. So an endpoint system with `api: completions` sends the prompt text, a blank line after it, and
reads `choices[0].text`. Requests run `concurrency` at a time; the `openai` SDK retries 429/5xx with backoff;
resumability comes from the responses file (lima.generate.responses), which is appended batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lima.llm_client import EndpointConfig, api_key_for

PROMPT_SUFFIX = "\n\n"           # the prompt, then a blank line: where the model's answer starts


def completion_prompt(prompt: str) -> str:
    return prompt.strip() + PROMPT_SUFFIX


def completions_producer(endpoint: EndpointConfig, params: dict[str, Any],
                         prompt_of: Callable[[dict[str, Any]], str]) -> tuple[Callable[..., list[dict[str, Any]]],
                                                                                Callable[[], None]]:
    """A batch producer for `resumable_generate` that calls `/v1/completions`, and a close function."""
    from openai import OpenAI

    client = OpenAI(base_url=endpoint.base_url, api_key=api_key_for(endpoint), timeout=endpoint.timeout,
                    max_retries=endpoint.max_retries)
    pool = ThreadPoolExecutor(max_workers=max(1, endpoint.concurrency))

    def one(prompt: dict[str, Any], sample: int) -> dict[str, Any]:
        extra = dict(params)
        if sample and extra.get("seed") is not None:
            extra["seed"] = int(extra["seed"]) + sample       # another sample of the same prompt, reproducibly
        reply = client.completions.create(model=endpoint.model, prompt=completion_prompt(prompt_of(prompt)),
                                          **extra)
        choice = reply.choices[0]
        usage = getattr(reply, "usage", None)
        return {"response": (choice.text or "").strip(),
                "stop_reason": "eot" if choice.finish_reason == "stop" else choice.finish_reason,
                "n_tokens": getattr(usage, "completion_tokens", None)}

    def produce(batch: list[tuple[dict[str, Any], int]], _seed: int) -> list[dict[str, Any]]:
        return list(pool.map(lambda item: one(*item), batch))

    def close() -> None:
        pool.shutdown(wait=True)
        client.close()

    return produce, close

"""The LLM judge: pairwise (paper Fig. 2), absolute Fail/Pass/Excellent (Fig. 3) and 1–6 helpfulness.

All three protocols go through `lima.llm_client.LLMClient`, so any OpenAI-compatible endpoint works (GPT-4 as
in the paper, vLLM, llama.cpp, `lima serve`) with the same concurrency limit, retries and SQLite cache.
`judge_endpoint(cfg)` decides which endpoint: a local model directory (`judge.local_model`, the smoke and
test profiles) served on loopback for the duration of the block, or the configured remote endpoint — one
is never substituted for the other, so a missing local model or API key is an error, not a silent switch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima.config import resolve, section
from lima.io import selected_checkpoint


@dataclass
class JudgeConfig:
    """The `judge` section of a profile."""

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4"
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 6
    timeout: float = 120.0
    backoff_initial: float = 1.0              # seconds before the first retry, doubling (ours)
    price_prompt_per_1k: float = 0.0
    price_completion_per_1k: float = 0.0
    both_orders: bool = True                  # judge (A,B) and (B,A); a verdict that flips is a tie
    logprobs: bool = False                    # ask for the label alone and read its top_logprobs
    top_logprobs: int = 20                    # OpenAI allows at most 20
    guided_choice: bool = False               # logprob mode: constrain the reply to the labels (vLLM, lima serve)
    max_tokens: int = 512                     # text mode (reasoning, then the label line)
    logprob_max_tokens: int = 3               # logprob mode: the label (and maybe a leading space)
    temperature: float = 0.0
    cache: str | None = None                  # SQLite response cache; None disables caching
    seed: int = 0                             # order randomisation when both_orders is false
    helpfulness_model: str | None = None      # the ablations' grader (None: same as `model`)
    helpfulness_samples: int = 1
    helpfulness_temperature: float = 0.7      # used when several samples per response are drawn
    local_model: str | None = None            # a model dir (or run dir with selected.json) to serve locally,
                                              # or "reference": the LIMA world's rubric judge (lima.world.judge)
    dev_local_model: str | None = None        # the dev-quality judge served locally while LIMA trains (smoke)
    max_response_chars: int | None = None     # truncate responses in the judge prompt (tiny-context models)


REFERENCE_JUDGE = "reference"


def judge_config(cfg: dict[str, Any]) -> JudgeConfig:
    return section(cfg, "judge", JudgeConfig)


def local_model_dir(path: str | Path) -> Path:
    """A run dir holding `selected.json` → the selected checkpoint; any other dir is taken as the model."""
    path = resolve(path)
    path = selected_checkpoint(path) or path
    if not path.is_dir():
        raise FileNotFoundError(f"judge.local_model: no model directory at {path} (train the smoke model "
                                f"first: notebook 03 / `python -m lima train`)")
    return path


@contextlib.contextmanager
def judge_endpoint(cfg: dict[str, Any], model: str | None = None) -> Iterator[Any]:
    """Yield the judge's `EndpointConfig`; with `judge.local_model` set, serve that model on loopback."""
    from lima.llm_client import EndpointConfig

    jc = judge_config(cfg)
    common = {"concurrency": jc.concurrency, "max_retries": jc.max_retries, "timeout": jc.timeout,
              "price_prompt_per_1k": jc.price_prompt_per_1k,
              "price_completion_per_1k": jc.price_completion_per_1k, "backoff_initial": jc.backoff_initial}
    if jc.local_model == REFERENCE_JUDGE:
        from lima.world.judge import serve_reference_judge

        with serve_reference_judge(cfg) as (url, identity):
            yield EndpointConfig(base_url=url, model=model or jc.model, api_key_env=None, identity=identity,
                                 **{**common, "backoff_initial": 0.05})
    elif jc.local_model:
        from lima.serve import serve_in_background

        # the tiny local judge's context is shorter than the judge templates: cut prompts from the left
        with serve_in_background(local_model_dir(jc.local_model), model_name=model or jc.model,
                                 truncate_prompts=True) as url:
            yield EndpointConfig(base_url=url, model=model or jc.model, api_key_env=None, **common)
    else:
        yield EndpointConfig(base_url=jc.base_url, model=model or jc.model, api_key_env=jc.api_key_env, **common)


from lima.judge.protocols import grade_helpfulness, judge_pairwise, rate_absolute  # noqa: E402

__all__ = ["REFERENCE_JUDGE", "JudgeConfig", "grade_helpfulness", "judge_config", "judge_endpoint", "judge_pairwise",
           "local_model_dir", "rate_absolute"]

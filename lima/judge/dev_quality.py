"""A judge-based dev score per checkpoint: the paper's hand pick between epochs 5 and 10, made a rule.

The paper found that held-out perplexity does not track quality (Fig. 9), so it chose its checkpoint by
reading dev-set answers. Plugged in as `train.dev_quality: "lima.judge.dev_quality:score_checkpoint"`, this
answers the dev prompts with the checkpoint (the paper's decoding) and has the judge grade each answer for
helpfulness (1–6, the ablations' protocol); the mean is the checkpoint's `dev_quality` in `checkpoints.json`,
which `train.select: best_dev_quality` then uses.

While LIMA is still training there is no fine-tuned model to serve as the smoke profile's local judge, so
the dev judge is its own setting, `judge.dev_local_model` (smoke: the smoke base model); with it unset, the
configured judge endpoint grades (at paper scale: GPT-4, as for everything else).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from lima.judge import judge_config, judge_endpoint
from lima.judge.protocols import grade_helpfulness


def _dev_judge_cfg(cfg: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    jc = judge_config(cfg)
    if not jc.dev_local_model:
        return cfg, None
    name = f"{jc.helpfulness_model or jc.model}-dev"   # its own name, so its verdicts never share cache keys
    out = copy.deepcopy(cfg)
    out["judge"].update(local_model=jc.dev_local_model, model=name, helpfulness_model=name)
    return out, name


def score_checkpoint(cfg: dict[str, Any], checkpoint_dir: str | Path, dev_rows: list[dict[str, Any]], *,
                     model: Any = None, tokenizer: Any = None) -> float | None:
    """Mean judge helpfulness (1–6) of the checkpoint's answers to the dev prompts; None if none parsed.

    `model`/`tokenizer` (the trainer passes them on rank 0 when that rank holds the whole model): answer with
    the model in memory — the weights just saved to `checkpoint_dir` — instead of loading a second full copy.
    The model is switched to eval mode, stock SDPA attention and a KV cache for the answers, and put back.
    Without them (sharded training, the vLLM backend, a call from outside the trainer) it loads the checkpoint.
    """
    from lima.generate import HFGenerator, decoding_of, load_generator

    if not dev_rows:
        return None
    decoding = decoding_of(cfg)
    prompts = [[m for m in row["messages"] if m["role"] == "user"][:1] for row in dev_rows]
    with torch.random.fork_rng(devices=[]):          # scoring must not move the training run's RNG
        if model is not None and decoding.backend == "hf":
            with _answering(model):
                generator = HFGenerator(checkpoint_dir, decoding, loaded=(model, copy.copy(tokenizer)))
                results = generator.generate(prompts, seed=int(cfg.get("seed", 0)))
        else:
            generator = load_generator(checkpoint_dir, decoding)
            results = generator.generate(prompts, seed=int(cfg.get("seed", 0)))
        del generator
        rows = [{"prompt_id": str(row.get("id", i)), "prompt": p[0]["content"], "response": r.text,
                 "system": Path(checkpoint_dir).name}
                for i, (row, p, r) in enumerate(zip(dev_rows, prompts, results, strict=True))]
        judge_cfg, model_name = _dev_judge_cfg(cfg)
        with judge_endpoint(judge_cfg, model=model_name) as endpoint:
            graded = grade_helpfulness(judge_cfg, rows, endpoint=endpoint, desc=f"dev quality {Path(checkpoint_dir).name}")
    scores = [g["score"] for g in graded if g.get("score") is not None]
    return sum(scores) / len(scores) if scores else None


@contextlib.contextmanager
def _answering(model: Any) -> Iterator[None]:
    """The training model set up for generation (eval: no dropout; sdpa: the packed-row attention ignores
    padding masks; KV cache on), restored afterwards so training continues exactly as it would have."""
    from lima.train.packed_attention import use_attention

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    was_training, attention, cache = model.training, base.config._attn_implementation, base.config.use_cache
    model.eval()
    use_attention(model, "sdpa")
    base.config.use_cache = True
    try:
        yield
    finally:
        base.config.use_cache = cache
        use_attention(model, attention)
        model.train(was_training)

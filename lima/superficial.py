"""A direct test of the Superficial Alignment Hypothesis: token distribution shift (beyond the paper).

LIMA argues that alignment mostly teaches *style*: the knowledge is already in the base model. URIAL (Lin et
al., 2023) measured this directly: for each token an aligned model wrote, ask where that token ranks in the
*base* model's next-token distribution given the same context. Rank 1 = "unshifted" (the base model would
have said it too), rank 2–3 = "marginal", rank > 3 = "shifted". If the hypothesis holds, most positions are
unshifted and the shifted ones are style tokens (openings, transitions, formatting), not content.

What is scored (issue 10): by default the aligned model's *greedy* decode of each test prompt
(`superficial.decode: greedy`; `responses` scores the sampled responses file instead), each token put in a
class — EOT, style, fact, other (lima.superficial_classes) — and the shift reported by class and by position.
The world's base pretrained on web.jsonl only, so it never saw the fine-tuning text.

Context: the aligned model saw `[bos] prompt EOT response`. The base model has no EOT (the fine-tuned
tokenizer has one extra token), so in the base model's context EOT is replaced by `eot_as` ("\\n\\n" by
default — a neutral turn break the base model knows); response tokens are scored only where their id is
in the base vocabulary, and positions with an id outside it are counted, not dropped silently. With
`rank_eot_as_eos` the aligned model's EOT is ranked as the base's end-of-document token instead.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from lima.config import ConfigError, resolve, section
from lima.io import InputError, atomic_write, read_jsonl, selected_checkpoint, write_json, write_manifest
from lima.superficial_classes import class_summary, findings, world_fact_values

CATEGORIES = ("unshifted", "marginal", "shifted")


@dataclass
class SuperficialConfig:
    """The `superficial` section of a profile."""

    max_responses: int | None = None     # None: every response
    eot_as: str = "\n\n"
    system: str = "lima"
    decode: str = "greedy"               # greedy: decode the aligned model here | responses: the sampled file
    max_new_tokens: int | None = None    # greedy length cap; None: generate.max_new_tokens
    early_tokens: int = 8                # "early" = the first this many response tokens


def category(rank: int) -> str:
    return "unshifted" if rank == 1 else "marginal" if rank <= 3 else "shifted"


def token_ranks(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1-based rank of each target under its logits row, ties broken like argmax (lower id first).

    With this convention rank 1 ⇔ the target is exactly what greedy decoding picks.
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    target = logits.gather(-1, targets[:, None])
    greater = (logits > target).sum(-1)
    ids = torch.arange(logits.shape[-1], device=logits.device)
    ties_before = ((logits == target) & (ids[None, :] < targets[:, None])).sum(-1)
    return 1 + greater + ties_before


def shared_vocab_size(base_tok, aligned_tok) -> int:
    """Ids below the returned size mean the same token in both tokenizers; raises if they disagree."""
    base_vocab, aligned_vocab = base_tok.get_vocab(), aligned_tok.get_vocab()
    for token, idx in base_vocab.items():
        if aligned_vocab.get(token) != idx:
            raise ValueError(f"tokenizers disagree: base maps {token!r} to {idx}, aligned to "
                             f"{aligned_vocab.get(token)}; the aligned model must be fine-tuned from this base")
    return len(base_tok)


@dataclass
class ShiftAnalyzer:
    """Scores responses of an aligned model under the base model (one forward pass per response)."""

    base_model: Any
    base_tok: Any
    aligned_tok: Any
    eot_as: str = "\n\n"
    rank_eot_as_eos: bool = False        # rank the aligned EOT as the base's EOS (else: out of base vocab)
    n_shared: int = field(init=False)
    eot_token: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.n_shared = shared_vocab_size(self.base_tok, self.aligned_tok)
        try:
            from lima.model import eot_token_of

            self.eot_token = eot_token_of(self.aligned_tok)
        except ValueError:
            self.eot_token = None  # an aligned tokenizer without the LIMA template: contexts have no EOT
        self.eot_id = (self.aligned_tok.convert_tokens_to_ids(self.eot_token) if self.eot_token else None)
        # generation stops at EOT or EOS (lima.model.set_eot_generation_config): both end the turn
        self.stop_ids = [i for i in (self.eot_id, self.aligned_tok.eos_token_id) if i is not None]
        self.max_len = int(getattr(self.base_model.config, "max_position_embeddings", 4096) or 4096)

    def context_ids(self, prompt: str | Sequence[Mapping[str, str]]) -> list[int]:
        """The base model's context: the aligned chat rendering with EOT replaced by `eot_as`."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if self.eot_token and self.aligned_tok.chat_template:
            text = self.aligned_tok.apply_chat_template(messages, tokenize=False)
            text = text.replace(self.eot_token, self.eot_as)
        else:
            bos = self.base_tok.bos_token or ""
            text = bos + "".join(m["content"] + self.eot_as for m in messages)
        return self.base_tok(text, add_special_tokens=False)["input_ids"]

    def aligned_context_ids(self, prompt: str | Sequence[Mapping[str, str]]) -> list[int]:
        """The aligned model's own context: its chat template up to the response (what generation feeds)."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if self.aligned_tok.chat_template:
            text = self.aligned_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return self.aligned_tok(text, add_special_tokens=False)["input_ids"]
        return self.context_ids(prompt)

    def response_ids(self, response: str) -> list[int]:
        return self.aligned_tok(response, add_special_tokens=False)["input_ids"]

    @torch.inference_mode()
    def score(self, context: list[int], response: list[int]) -> list[dict[str, Any]]:
        """One row per response position: base rank, base top-1, base probability, category."""
        keep = max(0, min(len(response), self.max_len - len(context)))
        response = response[:keep]
        if not response or not context:
            return []
        # ids outside the base vocabulary (the aligned model's EOT) cannot be fed to the base model
        fed = [t if t < self.n_shared else self.base_tok.eos_token_id for t in context + response]
        device = next(self.base_model.parameters()).device
        logits = self.base_model(input_ids=torch.tensor([fed], device=device)).logits[0]
        logits = logits[len(context) - 1: len(context) - 1 + len(response), : self.n_shared]
        targets = torch.tensor(response, device=device)
        if self.rank_eot_as_eos and self.eot_id is not None:
            targets = torch.where(targets == self.eot_id, self.base_tok.eos_token_id, targets)
        in_vocab = targets < self.n_shared
        ranks = torch.zeros_like(targets)
        ranks[in_vocab] = token_ranks(logits[in_vocab], targets[in_vocab])
        probs = torch.softmax(logits.float(), -1)
        top1 = logits.argmax(-1)
        rows = []
        for pos, tok in enumerate(response):
            ok = bool(in_vocab[pos])
            rank = int(ranks[pos]) if ok else None
            rows.append({
                "position": pos, "token_id": tok, "token": self.show(tok, aligned=True),
                "base_rank": rank, "base_prob": float(probs[pos, int(targets[pos])]) if ok else None,
                "base_top1_id": int(top1[pos]), "base_top1": self.show(int(top1[pos])),
                "category": category(rank) if ok else "out_of_base_vocab",
            })
        return rows

    def show(self, token_id: int, aligned: bool = False) -> str:
        """A readable token: visible spaces and newlines, so tables of whitespace tokens still read."""
        text = (self.aligned_tok if aligned else self.base_tok).decode([token_id])
        return text.replace(" ", "␣").replace("\n", "⏎") or f"<{token_id}>"


def analyze_responses(analyzer: ShiftAnalyzer, rows: Sequence[Mapping[str, Any]],
                      max_responses: int | None = None, aligned_model: Any = None, max_new_tokens: int = 64,
                      fact_values: Sequence[str] = ()) -> pd.DataFrame:
    """The token table for up to `max_responses` prompts (responses JSONL rows).

    With `aligned_model` each prompt is greedy-decoded here (the row's `response` is ignored); without it the
    row's response text is scored. Every row gets its `token_class` (lima.superficial_classes).
    """
    from lima.superficial_classes import classify_tokens, greedy_decode

    rows = list(rows)[: max_responses] if max_responses else list(rows)
    out: list[dict[str, Any]] = []
    for row in tqdm(rows, desc="token shift", disable=len(rows) < 5):
        context = analyzer.context_ids(row["prompt"])
        if aligned_model is not None:
            aligned_context = analyzer.aligned_context_ids(row["prompt"])
            response = greedy_decode(aligned_model, aligned_context, max_new_tokens, analyzer.stop_ids)
        else:
            response = analyzer.response_ids(row["response"])
        scored = analyzer.score(context, response)
        classes = classify_tokens(analyzer.aligned_tok, response[: len(scored)], analyzer.stop_ids, fact_values)
        for item, cls in zip(scored, classes, strict=True):
            out.append({"prompt_id": row.get("prompt_id"), **item, "token_class": cls})
    columns = ["prompt_id", "position", "token_id", "token", "base_rank", "base_prob", "base_top1_id",
               "base_top1", "category", "token_class"]
    return pd.DataFrame(out, columns=columns)


def shifted_tokens(df: pd.DataFrame, top: int = 20) -> pd.DataFrame:
    """The tokens most often shifted (rank > 3), with how often each occurs and its shift rate."""
    scored = df[df["category"] != "out_of_base_vocab"]
    grouped = scored.groupby("token").agg(n_total=("category", "size"),
                                          n_shifted=("category", lambda c: int((c == "shifted").sum())))
    grouped["shift_rate"] = grouped["n_shifted"] / grouped["n_total"]
    grouped = grouped[grouped["n_shifted"] > 0].sort_values(["n_shifted", "shift_rate"], ascending=False)
    return grouped.head(top).reset_index()


def position_rates(df: pd.DataFrame, n_bins: int = 16) -> pd.DataFrame:
    """Shift rate by position in the response (binned), to see whether shifts cluster at the start."""
    scored = df[df["category"] != "out_of_base_vocab"]
    if scored.empty:
        return pd.DataFrame(columns=["bin_start", "bin_end", "n", "shifted_rate", "unshifted_rate"])
    width = max(1, -(-int(scored["position"].max() + 1) // n_bins))
    bins = (scored["position"] // width).astype(int)
    table = scored.groupby(bins).agg(n=("category", "size"),
                                     shifted_rate=("category", lambda c: float((c == "shifted").mean())),
                                     unshifted_rate=("category", lambda c: float((c == "unshifted").mean())))
    table.insert(0, "bin_start", table.index * width)
    table.insert(1, "bin_end", table.index * width + width - 1)
    return table.reset_index(drop=True)


def summarize(df: pd.DataFrame, top: int = 20) -> dict[str, Any]:
    scored = df[df["category"] != "out_of_base_vocab"]
    n = len(scored)
    shares = {c: (float((scored["category"] == c).mean()) if n else None) for c in CATEGORIES}
    return {
        "n_responses": int(df["prompt_id"].nunique()) if len(df) else 0,
        "n_positions": n,
        "n_out_of_base_vocab": int((df["category"] == "out_of_base_vocab").sum()),
        "shares": shares,
        "top1_agreement": shares["unshifted"],
        "top3_agreement": None if n == 0 else float((scored["base_rank"] <= 3).mean()),
        "mean_base_prob": None if n == 0 else float(scored["base_prob"].mean()),
        "top_shifted_tokens": shifted_tokens(df, top).to_dict("records"),
        "position_shift_rate": position_rates(df).to_dict("records"),
    }


def urial_vs_sft(responses_dir: str | Path, sft: str = "lima", urial: str = "urial",
                 n_examples: int = 3, max_chars: int = 400) -> dict[str, Any]:
    """Lengths and a few side-by-side examples of URIAL (base + in-context examples) and SFT responses."""
    responses_dir = Path(responses_dir)
    systems: dict[str, list[dict[str, Any]]] = {}
    for name in (sft, urial):
        path = responses_dir / f"{name}.jsonl"
        if path.exists():
            systems[name] = read_jsonl(path)
    stats = {}
    for name, rows in systems.items():
        chars = [len(r.get("response") or "") for r in rows]
        stats[name] = {"n": len(rows), "mean_chars": statistics.fmean(chars) if chars else None,
                       "median_chars": statistics.median(chars) if chars else None,
                       "mean_tokens": statistics.fmean([r.get("n_tokens") or 0 for r in rows]) if rows else None,
                       "stop_reasons": dict(pd.Series([r.get("stop_reason") for r in rows]).value_counts())}
    examples = []
    if sft in systems and urial in systems:
        by_prompt = {r["prompt_id"]: r for r in systems[urial] if r.get("sample", 0) == 0}
        for row in systems[sft]:
            other = by_prompt.get(row["prompt_id"])
            if other is None or row.get("sample", 0) != 0:
                continue
            examples.append({"prompt_id": row["prompt_id"], "prompt": row["prompt"][:max_chars],
                             sft: row["response"][:max_chars], urial: other["response"][:max_chars]})
            if len(examples) >= n_examples:
                break
    missing = [name for name in (sft, urial) if name not in systems]
    return {"systems": stats, "examples": examples, "missing": missing,
            "lengths": {name: [len(r.get("response") or "") for r in rows] for name, rows in systems.items()}}


def model_dirs(cfg: Mapping[str, Any], run_name: str = "lima") -> tuple[str, Path]:
    """(base model path or id, selected aligned checkpoint dir) for a loaded profile."""
    models = resolve(cfg["paths"]["models"])
    from lima.train.base import ensure_base

    base_dir = ensure_base(dict(cfg))
    selected_path = models / run_name / "selected.json"
    if not selected_path.exists():
        raise InputError(f"{selected_path}: file not found (run notebook 03 / `python -m lima train` first)")
    try:
        return base_dir, selected_checkpoint(models / run_name)
    except FileNotFoundError as err:
        raise InputError(str(err)) from None


def world_values(cfg: Mapping[str, Any]) -> list[str]:
    """The world's attribute values (fact tokens) when the profile has a world; none otherwise."""
    from lima.world import load_world, world_config

    if not world_config(dict(cfg)).enabled:
        return []
    try:
        return world_fact_values(load_world(dict(cfg)))
    except FileNotFoundError as err:
        raise InputError(str(err)) from None


def run_token_shift(cfg: Mapping[str, Any], max_responses: int | None = None) -> dict[str, Any]:
    """Load the pair, score `{results}/responses/<system>.jsonl`, write token_shift.csv + summary JSON.

    `max_responses` None takes `superficial.max_responses` from the profile.
    """
    from lima.model import load_model

    scfg = section(cfg, "superficial", SuperficialConfig)
    max_responses = max_responses if max_responses is not None else scfg.max_responses
    system, eot_as = scfg.system, scfg.eot_as
    base_dir, aligned_dir = model_dirs(cfg)
    results = resolve(cfg["paths"]["results"])
    responses = results / "responses" / f"{system}.jsonl"
    rows = [r for r in read_jsonl(responses) if r.get("sample", 0) == 0]
    dtype = str((cfg.get("model") or {}).get("dtype", "float32"))
    device = "cuda" if torch.cuda.is_available() else None
    base_model, base_tok = load_model(base_dir, dtype if device else "float32", device=device)
    from transformers import AutoTokenizer

    aligned_tok = AutoTokenizer.from_pretrained(str(aligned_dir))
    analyzer = ShiftAnalyzer(base_model, base_tok, aligned_tok, eot_as=eot_as, rank_eot_as_eos=True)
    aligned_model = None
    if scfg.decode == "greedy":
        aligned_model, _ = load_model(aligned_dir, dtype if device else "float32", device=device)
    elif scfg.decode != "responses":
        raise ConfigError(f"superficial.decode must be 'greedy' or 'responses', got {scfg.decode!r}")
    max_new = scfg.max_new_tokens or int((cfg.get("generate") or {}).get("max_new_tokens", 64))
    df = analyze_responses(analyzer, rows, max_responses, aligned_model=aligned_model, max_new_tokens=max_new,
                           fact_values=world_values(cfg))
    summary = summarize(df)
    classes = class_summary(df, early=scfg.early_tokens,
                            n_boot=int((cfg.get("analysis") or {}).get("bootstrap", 1000)),
                            seed=int(cfg.get("seed", 0)))
    summary.update({"base_model": base_dir, "aligned_model": str(aligned_dir), "responses": str(responses),
                    "eot_as": eot_as, "max_responses": max_responses, "decode": scfg.decode,
                    "max_new_tokens": max_new if aligned_model is not None else None, "classes": classes,
                    "findings": findings(summary, classes)})
    out = results / "superficial"
    with atomic_write(out / "token_shift.csv") as handle:
        df.to_csv(handle, index=False)
    write_manifest(out / "token_shift.csv", config=dict(cfg), inputs=[responses], extra={"rows": len(df)})
    with atomic_write(out / "shifted_tokens.csv") as handle:
        shifted_tokens(df, 50).to_csv(handle, index=False)
    write_manifest(out / "shifted_tokens.csv", config=dict(cfg), inputs=[out / "token_shift.csv"])
    comparison = urial_vs_sft(results / "responses", sft=system)
    summary["urial_vs_sft"] = {k: comparison[k] for k in ("systems", "examples", "missing")}
    write_json(out / "summary.json", summary, config=dict(cfg), inputs=[responses])
    return {"tokens": df, "summary": summary, "comparison": comparison, "out_dir": out}

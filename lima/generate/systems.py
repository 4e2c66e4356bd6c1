"""The systems compared in the paper (and two of ours), declared in `configs/systems.yaml`.

Each row says how a system's responses are obtained (`kind`):
  local     a fine-tuned model directory (LIMA; the unfiltered-pool model trained by the same pipeline)
  endpoint  an OpenAI-compatible provider through `lima.llm_client` (`api: chat`), or a completions model
            such as text-davinci-003 through `/v1/completions` (`api: completions`); an endpoint system with
            no endpoint configured but a `path` imports that file instead
  file      responses imported from JSONL or an AlpacaEval `model_outputs.json`
  urial     the untuned base model with a system prompt + 3 stylistic in-context examples (Lin et al., 2023)
  null      a fixed answer to every prompt: a sanity baseline any real system must beat
A system that cannot run here (no endpoint, no key, no model yet) raises `SystemSkipped` with the reason;
it is never replaced by another system.

A system is named by the model it calls. It stands in one of the paper's rows (Figs. 1/2: "Alpaca 65B",
"DaVinci003", "Bard (April)", "Claude (April)", "GPT-4 (April)") only if it declares that row with
`paper_row:` (an exact key of `PAPER_ROWS`), and only the model that row was can declare it: `load_systems`
refuses a declaration by any other model (gemini-1.5-pro is not Bard (April), gpt-4 today is not the GPT-4
of April 2023). Every other system is a row of its own in the report.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lima.config import ConfigError, from_dict, resolve
from lima.io import InputError, selected_checkpoint
from lima.llm_client import EndpointConfig, LLMClient, has_api_key

KINDS = ("local", "endpoint", "file", "urial", "null")
APIS = ("chat", "completions")
DECODINGS = ("paper", "provider_default")


@dataclass(frozen=True)
class PaperRow:
    """One of the paper's baseline rows and the only models that may stand in it."""

    label: str
    models: tuple[str, ...] = ()           # endpoint/file systems: the exact model ids that row was
    trained_on: tuple[str, ...] = ()       # local systems: the training file names that row was trained on
    note: str = ""


PAPER_ROWS: dict[str, PaperRow] = {
    "alpaca_65b": PaperRow("Alpaca 65B", trained_on=("alpaca_data.json",),
                           note="the base fine-tuned on the 52k Alpaca training set with the same recipe"),
    "davinci003": PaperRow("DaVinci003", models=("text-davinci-003",), note="a completions model, retired 2024"),
    "bard": PaperRow("Bard (April)", models=("bard-2023-04",),
                     note="no API served it; only responses archived in April 2023 (kind: file)"),
    "claude": PaperRow("Claude (April)", models=("claude-v1", "claude-v1.0", "claude-v1.2", "claude-v1.3"),
                       note="Anthropic's Claude v1 API of April 2023; archived responses (kind: file)"),
    "gpt4": PaperRow("GPT-4 (April)", models=("gpt-4-0314",), note="the only GPT-4 snapshot served in April 2023"),
}
URIAL_PROMPT = Path(__file__).resolve().parent.parent / "resources" / "urial_prompt.md"
URIAL_STOP = ["# Query:", "\n# Query"]


class SystemSkipped(RuntimeError):
    """This system cannot produce responses here; the message says why and what would enable it."""


@dataclass
class SystemSpec:
    kind: str
    paper_row: str | None = None           # the paper's row this system *is* (a PAPER_ROWS key); None: its own row
    description: str | None = None
    model: str | None = None               # local/urial: a run dir, checkpoint dir or HF id; endpoint: model name
    base_url: str | None = None            # endpoint
    api: str = "chat"                      # endpoint: chat | completions (text-davinci-003)
    decoding: str = "paper"                # endpoint: paper (T, top_p, max_tokens, seed of `generate`) | provider_default
    trained_on: str | None = None          # local: the training file this model was fine-tuned on
    api_key_env: str | None = None
    concurrency: int = 8
    max_retries: int = 6
    timeout: float = 120.0
    price_prompt_per_1k: float = 0.0
    price_completion_per_1k: float = 0.0
    system_prompt: str | None = None       # endpoint: an optional system message
    path: str | None = None                # file: JSONL or AlpacaEval model_outputs.json
    response: str | None = None            # null: the fixed answer
    template: str | None = None            # urial: the prompt file (default lima/resources/urial_prompt.md)
    name: str = ""

    @property
    def paper_name(self) -> str | None:
        """The label of the paper row this system declares (None: a row of its own)."""
        return PAPER_ROWS[self.paper_row].label if self.paper_row else None


def systems_file(cfg: dict[str, Any]) -> Path:
    return resolve((cfg.get("generate") or {}).get("systems_file") or "configs/systems.yaml")


def load_systems(cfg: dict[str, Any], path: str | os.PathLike[str] | None = None) -> dict[str, SystemSpec]:
    """All declared systems, `{paths.*}` / `{model.*}` references filled in from the profile."""
    from lima.config import interpolate

    path = Path(path) if path else systems_file(cfg)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    rows = interpolate(data.get("systems") or {}, cfg)
    out = {}
    for name, row in rows.items():
        if isinstance(row, dict) and "paper_name" in row:
            raise ConfigError(f"{path}:{name}: 'paper_name' is gone; declare the paper's row with paper_row: "
                              f"one of {sorted(PAPER_ROWS)} (only the model that row was), or leave it out")
        spec = from_dict(SystemSpec, {**row, "name": name}, where=f"{path.name}:{name}")
        for field_name, value, allowed in (("kind", spec.kind, KINDS), ("api", spec.api, APIS),
                                           ("decoding", spec.decoding, DECODINGS)):
            if value not in allowed:
                raise ConfigError(f"{path.name}:{name}: {field_name} {value!r} is not one of {allowed}")
        check_paper_row(spec, where=f"{path}:{name}")
        out[name] = spec
    return out


def check_paper_row(spec: SystemSpec, where: str) -> None:
    """ConfigError unless `spec` is the model its declared paper row was (no row declared: nothing to check)."""
    if spec.paper_row is None:
        return
    row = PAPER_ROWS.get(spec.paper_row)
    if row is None:
        raise ConfigError(f"{where}: paper_row {spec.paper_row!r} is not one of {sorted(PAPER_ROWS)}")
    if spec.kind == "local":
        trained = Path(spec.trained_on).name if spec.trained_on else None
        if trained in row.trained_on:
            return
        raise ConfigError(f"{where}: declares the paper's {row.label!r} row ({row.note}) but is trained on "
                          f"{spec.trained_on!r}; only a model trained on {list(row.trained_on)} may stand in it "
                          "(set trained_on, or drop paper_row so it is a row of its own)")
    if spec.kind in ("endpoint", "file") and spec.model in row.models:
        return
    raise ConfigError(f"{where}: declares the paper's {row.label!r} row ({row.note}) but is {spec.kind} "
                      f"model {spec.model!r}; only {list(row.models) or list(row.trained_on)} may stand in it — "
                      "drop paper_row so it appears as its own row")


def declared_paper_rows(cfg: dict[str, Any], path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """system name → the paper row it declares (validated); systems without a declaration are left out."""
    return {name: spec.paper_row for name, spec in load_systems(cfg, path).items() if spec.paper_row}


def resolve_model_dir(model: str) -> Path:
    """A run dir (→ its selected.json checkpoint) or a checkpoint dir; FileNotFoundError when neither."""
    path = resolve(model)
    chosen = selected_checkpoint(path)
    if chosen is not None:
        if (chosen / "config.json").exists():
            return chosen
        raise FileNotFoundError(f"{path / 'selected.json'} points to {chosen}, which holds no model")
    if (path / "config.json").exists():
        return path
    raise FileNotFoundError(f"no model at {path} (neither selected.json nor config.json)")


def urial_base(cfg: dict[str, Any], spec: SystemSpec) -> str:
    """The untuned base: the row's model, else the profile's (a local tiny base is built on demand)."""
    if spec.model:
        return spec.model
    from lima.train.base import ensure_base

    return ensure_base(cfg)


def urial_query(prompt: str) -> str:
    """The new query block and the opened answer block that end a URIAL prompt."""
    return f"# Query:\n```\n{prompt.strip()}\n```\n\n# Answer:\n```\n"


def render_urial(prompt: str, template: str | os.PathLike[str] | None = None) -> str:
    """The URIAL prefix (system prompt + 3 examples), then the new query and an opened answer block."""
    prefix = Path(template or URIAL_PROMPT).read_text(encoding="utf-8").rstrip()
    return f"{prefix}\n\n{urial_query(prompt)}"


def clean_urial(text: str) -> str:
    """Cut at the next query marker and drop the closing fence of the answer block."""
    for marker in URIAL_STOP:
        text = text.split(marker, 1)[0]
    text = text.rstrip()
    return text[:-3].rstrip() if text.endswith("```") else text


def check_available(cfg: dict[str, Any], spec: SystemSpec) -> str:
    """'' when the system can run here, else the reason it is skipped."""
    if spec.kind == "endpoint":
        if not spec.base_url or not spec.model:
            if spec.path and resolve(spec.path).exists():
                return ""                                  # imported from its file (see run_system)
            hint = f", or its responses at path {spec.path}" if spec.path else ""
            return f"{spec.name}: no endpoint configured (base_url and model in configs/systems.yaml{hint})"
        endpoint = endpoint_of(spec)
        if not has_api_key(endpoint):
            return (f"{spec.name}: environment variable {spec.api_key_env} is not set (the API key for "
                    f"{spec.model} at {spec.base_url}); export it to include this system")
        if not (cfg.get("generate") or {}).get("include_remote", True):
            return (f"{spec.name}: remote systems are off in profile {cfg.get('profile')!r} "
                    "(generate.include_remote: false)")
    if spec.kind == "local":
        try:
            resolve_model_dir(spec.model or "")
        except FileNotFoundError as err:
            return f"{spec.name}: {err} (train it first: notebook 03 / `python -m lima train`)"
    if spec.kind == "file" and not (spec.path and resolve(spec.path).exists()):
        return f"{spec.name}: response file {spec.path} not found"
    return ""


def endpoint_of(spec: SystemSpec) -> EndpointConfig:
    return EndpointConfig(base_url=spec.base_url or "", model=spec.model or "", api_key_env=spec.api_key_env,
                          concurrency=spec.concurrency, max_retries=spec.max_retries, timeout=spec.timeout,
                          price_prompt_per_1k=spec.price_prompt_per_1k,
                          price_completion_per_1k=spec.price_completion_per_1k)


def response_path(cfg: dict[str, Any], name: str) -> Path:
    return resolve(cfg["paths"]["results"]) / "responses" / f"{name}.jsonl"


def run_system(cfg: dict[str, Any], name: str, prompts: list[dict[str, Any]],
               output: str | os.PathLike[str] | None = None, samples_per_prompt: int = 1,
               spec: SystemSpec | None = None, model: str | None = None) -> Path:
    """Write `{results}/responses/<name>.jsonl` for one system (resumable); SystemSkipped when it cannot run."""
    from lima.generate import decoding_of, generate_responses

    systems = load_systems(cfg) if spec is None else {name: spec}
    if name not in systems:
        raise ConfigError(f"unknown system {name!r}; configured: {sorted(systems)} ({systems_file(cfg)})")
    spec = systems[name]
    if model:
        spec.model = model
    if reason := check_available(cfg, spec):
        raise SystemSkipped(reason)
    output = Path(output) if output else response_path(cfg, name)
    decoding = decoding_of(cfg)
    if spec.kind == "local":
        return generate_responses(cfg, name, resolve_model_dir(spec.model or ""), prompts, output,
                                  samples_per_prompt=samples_per_prompt)
    from lima.generate.responses import resumable_generate

    common = {"batch_size": decoding.batch_size, "samples_per_prompt": samples_per_prompt, "seed": decoding.seed,
              "config": {"system": spec.__dict__, "generate": cfg.get("generate")}}
    if spec.kind == "null":
        answer = spec.response or "I cannot help with that."

        def produce_null(batch: list[tuple[dict[str, Any], int]], _seed: int) -> list[dict[str, Any]]:
            return [{"response": answer, "stop_reason": "fixed", "n_tokens": None} for _ in batch]

        return resumable_generate(output, name, prompts, produce_null, model="null (fixed answer)",
                                  decoding={"fixed_answer": answer}, **common)
    if spec.kind == "file" or (spec.kind == "endpoint" and not spec.base_url):
        from lima.generate.importers import import_responses

        return import_responses(resolve(spec.path or ""), name, prompts, output)
    if spec.kind == "endpoint":
        return _run_endpoint(cfg, spec, prompts, output, decoding, common)
    return _run_urial(cfg, spec, prompts, output, decoding, common)


def _run_endpoint(cfg: dict[str, Any], spec: SystemSpec, prompts: list[dict[str, Any]], output: Path,
                  decoding: Any, common: dict[str, Any]) -> Path:
    from lima.generate.responses import resumable_generate

    params = endpoint_params(spec, decoding)
    if spec.api == "completions":
        return _run_completions(spec, prompts, output, params, common)
    cache = resolve(cfg["paths"]["results"]) / "generation_cache.sqlite"
    client = LLMClient(endpoint_of(spec), cache_path=cache)

    def produce(batch: list[tuple[dict[str, Any], int]], _seed: int) -> list[dict[str, Any]]:
        requests = []
        for prompt, sample in batch:
            messages = list(prompt["messages"])
            if spec.system_prompt:
                messages = [{"role": "system", "content": spec.system_prompt}, *messages]
            requests.append({"messages": messages, **params, "cache_extra": {"sample": sample} if sample else None})
        results = client.chat_many(requests, desc=False)
        return [{"response": r.text, "stop_reason": "eot" if r.finish_reason == "stop" else r.finish_reason,
                 "n_tokens": r.usage.get("completion_tokens")} for r in results]

    common = {**common, "batch_size": max(common["batch_size"], spec.concurrency * 4)}
    try:
        return resumable_generate(output, spec.name, prompts, produce, model=f"{spec.model} @ {spec.base_url}",
                                  decoding=params, **common)
    finally:
        print(f"{spec.name}: {client.stats}")
        client.close()


def endpoint_params(spec: SystemSpec, decoding: Any) -> dict[str, Any]:
    """`decoding: paper`: LIMA's nucleus sampling (p, T, seed) and max_new_tokens; `provider_default`: only
    the length cap, the provider's own sampling otherwise. No provider applies the paper's repetition penalty."""
    if spec.decoding == "provider_default":
        return {"max_tokens": decoding.max_new_tokens}
    return {"temperature": decoding.temperature, "top_p": decoding.top_p, "max_tokens": decoding.max_new_tokens,
            "seed": decoding.seed}


def _run_completions(spec: SystemSpec, prompts: list[dict[str, Any]], output: Path, params: dict[str, Any],
                     common: dict[str, Any]) -> Path:
    from lima.generate.completions import PROMPT_SUFFIX, completions_producer
    from lima.generate.responses import prompt_text, resumable_generate

    produce, close = completions_producer(endpoint_of(spec), params, prompt_text)
    try:
        return resumable_generate(output, spec.name, prompts, produce,
                                  model=f"{spec.model} @ {spec.base_url} (completions)",
                                  decoding={**params, "prompt_suffix": PROMPT_SUFFIX},
                                  **{**common, "batch_size": max(common["batch_size"], spec.concurrency * 4)})
    finally:
        close()


def _run_urial(cfg: dict[str, Any], spec: SystemSpec, prompts: list[dict[str, Any]], output: Path,
               decoding: Any, common: dict[str, Any]) -> Path:
    from lima.generate.hf import HFGenerator
    from lima.generate.responses import context_fields, prompt_text, resumable_generate

    base = urial_base(cfg, spec)
    template = resolve(spec.template or decoding.urial_template)
    state: dict[str, Any] = {}

    def produce(batch: list[tuple[dict[str, Any], int]], seed: int) -> list[dict[str, Any]]:
        if "gen" not in state:
            state["gen"] = HFGenerator(base, decoding)
        texts = [render_urial(prompt_text(p), template) for p, _ in batch]
        # a prompt too long for the context loses in-context examples, never its own query (the protected tail)
        results = state["gen"].generate_texts(texts, seed=seed, stop=URIAL_STOP, add_special_tokens=True,
                                              tails=[urial_query(prompt_text(p)) for p, _ in batch])
        return [{"response": clean_urial(r.text), "stop_reason": r.stop_reason, "n_tokens": r.n_tokens,
                 **context_fields(r)} for r in results]

    return resumable_generate(output, spec.name, prompts, produce, model=f"{base} (untuned, URIAL prompt)",
                              decoding={**decoding.as_dict(), "stop": URIAL_STOP, "template": str(template)}, **common)


def load_alpaca_json(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """`alpaca_data.json` (a JSON list of {instruction, input, output}) → rows in the train.jsonl format."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of {{instruction, input, output}} objects")
    rows = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("instruction"), str) \
                or not isinstance(item.get("output"), str):
            raise InputError(f"{path}: item {i}: needs string 'instruction' and 'output' fields")
        extra = item.get("input") or ""
        prompt = item["instruction"].strip() + (f"\n\n{extra.strip()}" if extra.strip() else "")
        rows.append({"id": f"alpaca:{i}", "messages": [{"role": "user", "content": prompt},
                                                       {"role": "assistant", "content": item["output"].strip()}],
                     "source": "alpaca", "meta": {"index": i}})
    return rows

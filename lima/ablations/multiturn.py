"""Fig. 7 (§6): can 1,000 single-turn examples carry a conversation, and what do 30 dialogues add?

Two models answer the same conversations turn by turn: LIMA as trained (zero-shot on dialogue) and LIMA
trained on the same set plus the dialogue chains (`{processed}/train_multiturn.jsonl`, run `lima_multiturn`).
The paper had authors chat live (10 conversations); here the user turns are scripted from the authored dialogue
rows (tag `multi_turn` in `{interim}/authored.jsonl`), each model's own previous answers stay in the history,
and every assistant turn is rated Fail / Pass / Excellent. The paper: 45.2 / 19.1 / 35.7 % Excellent / Pass /
Fail zero-shot (42 turns), 76.1 / 21.7 / 2.2 % with the dialogues (46 turns).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lima.ablations.common import Stages, ablation_config, ablation_seed, path_of, results_dir
from lima.config import resolve
from lima.io import InputError, read_jsonl, write_csv, write_jsonl
from lima.io import selected_checkpoint as read_selection

CONDITIONS: list[tuple[str, str]] = [("zero_shot", "LIMA (zero-shot)"), ("dialogues", "LIMA + dialogues")]
COLUMNS = ["condition", "turns", "excellent", "pass", "fail"]
LABELS = ("excellent", "pass", "fail")
DIALOGUE_RUN = "lima_multiturn"


def table_path(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "multiturn.csv"


def transcripts_path(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "multiturn_transcripts.jsonl"


def conversation_scripts(cfg: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """User-turn scripts from the authored dialogues, and whether they are also training dialogues.

    The paper chatted live with the models; we replay scripted user turns. Held-out scripts
    (`ablations.multiturn_scripts`, user turns only, never trained on) come first; otherwise held-out (dev/test)
    authored dialogues; otherwise the training dialogues, which flatters the "+ dialogues" model (it has seen
    these user turns) — the caller reports that.
    """
    limit = ablation_config(cfg).multiturn_conversations
    if script_file := ablation_config(cfg).multiturn_scripts:
        scripts = [{"id": r.get("id"), "split": r.get("split", "test"), "user_turns": list(r["user_turns"])}
                   for r in read_jsonl(resolve(script_file)) if r.get("user_turns")]
        if not scripts:
            raise InputError(f"{script_file}: no rows with 'user_turns'")
        return scripts[:limit], False
    path = path_of(cfg, "interim") / "authored.jsonl"
    rows = [r for r in read_jsonl(path) if "multi_turn" in (r.get("tags") or [])]
    held_out = [r for r in rows if r.get("split") != "train"]
    chosen, overlap = (held_out, False) if held_out else (rows, True)
    scripts = []
    for row in chosen:
        users = [m.get("content", "") for m in row.get("messages") or [] if m.get("role") == "user"]
        if users:
            scripts.append({"id": row.get("id"), "split": row.get("split"), "user_turns": users})
    if not scripts:
        raise InputError(f"{path}: no authored rows tagged 'multi_turn' with a user turn; "
                         "the multi-turn ablation needs scripted conversations")
    return scripts[:limit], overlap


def drive(generator: Any, scripts: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Play every script against the model: its own answers stay in the history of the next turn.

    Conversations advance in lock step, one batched `generate` call per turn index.
    """
    histories: list[list[dict[str, str]]] = [[] for _ in scripts]
    stops: list[list[str]] = [[] for _ in scripts]
    longest = max(len(s["user_turns"]) for s in scripts)
    for turn in tqdm(range(longest), desc="turns", unit="turn"):
        active = [i for i, s in enumerate(scripts) if turn < len(s["user_turns"])]
        for i in active:
            histories[i].append({"role": "user", "content": scripts[i]["user_turns"][turn]})
        results = generator.generate([histories[i] for i in active], seed=seed + turn)
        if len(results) != len(active):
            raise RuntimeError(f"generator returned {len(results)} answers for {len(active)} conversations")
        for i, res in zip(active, results, strict=True):
            histories[i].append({"role": "assistant", "content": res.text})
            stops[i].append(res.stop_reason)
    return [{"id": s["id"], "messages": h, "stop_reasons": st} for s, h, st in zip(scripts, histories, stops,
                                                                                   strict=True)]


def render_context(messages: list[dict[str, str]]) -> str:
    """The conversation so far as plain text, for a judge that sees one prompt and one response."""
    names = {"user": "User", "assistant": "Assistant"}
    return "\n\n".join(f"{names.get(m['role'], m['role'])}: {m['content']}" for m in messages)


def turn_rows(condition: str, transcripts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per assistant turn, carrying the history that led to it."""
    rows = []
    for tr in transcripts:
        msgs = tr["messages"]
        for pos, msg in enumerate(msgs):
            if msg["role"] != "assistant":
                continue
            context = msgs[:pos]
            turn = sum(1 for m in context if m["role"] == "user")
            rows.append({"system": condition, "condition": condition, "conversation_id": tr["id"], "turn": turn,
                         "prompt_id": f"{tr['id']}#turn{turn}",
                         "prompt": render_context(context), "messages": context, "response": msg["content"]})
    return rows


def summarise_labels(condition: str, labels: list[str | None]) -> dict[str, Any]:
    """Percentages over the turns the judge could rate; unrated turns are counted in their own column."""
    counts = Counter(lab for lab in labels if lab in LABELS)
    rated = sum(counts.values())
    pct = {lab: (100.0 * counts[lab] / rated if rated else float("nan")) for lab in LABELS}
    return {"condition": condition, "turns": len(labels), **pct, "unrated": len(labels) - rated}


def selected_checkpoint(cfg: dict[str, Any], run: str) -> Path:
    """The checkpoint a training run selected (`{models}/<run>/selected.json`)."""
    path = path_of(cfg, "models") / run / "selected.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: train the {run!r} model first (notebook 03)")
    return read_selection(path.parent)


def dialogue_recipe(cfg: dict[str, Any]) -> dict[str, Any]:
    """LIMA's own recipe (the paper retrains the 65B model); `ablations.multiturn_epochs` may shorten it."""
    epochs = ablation_config(cfg).multiturn_epochs
    return cfg if epochs is None else {**cfg, "train": {**cfg.get("train", {}), "epochs": epochs}}


def count_dialogues(cfg: dict[str, Any]) -> tuple[Path, int]:
    path = path_of(cfg, "processed") / "train_multiturn.jsonl"
    return path, sum(1 for r in read_jsonl(path) if r.get("source") == "multi_turn")


def run(cfg: dict[str, Any], stages: Stages | None = None) -> dict[str, Any]:
    """Drive both models through the scripts, rate every assistant turn, write the table and transcripts."""
    stages = stages or Stages()
    scripts, overlap = conversation_scripts(cfg)
    train_file, dialogues = count_dialogues(cfg)
    models = {"zero_shot": selected_checkpoint(cfg, "lima"),
              "dialogues": Path(stages.finetune(dialogue_recipe(cfg), train_file, DIALOGUE_RUN))}
    gen_cfg = dict(cfg)
    max_new = ablation_config(cfg).max_new_tokens
    if max_new is not None:
        gen_cfg = {**cfg, "generate": {**cfg.get("generate", {}), "max_new_tokens": max_new}}
    table, transcripts = [], []
    for condition, label in CONDITIONS:
        generator = stages.load_generator(models[condition], gen_cfg)
        played = drive(generator, scripts, seed=ablation_seed(cfg))
        del generator
        rows = turn_rows(condition, played)
        rated = stages.rate_absolute(cfg, rows)
        labels = [r.get("label") for r in rated]
        by_id = {r["prompt_id"]: r.get("label") for r in rated}
        for tr in played:
            tr_labels = [by_id.get(r["prompt_id"]) for r in rows if r["conversation_id"] == tr["id"]]
            transcripts.append({"condition": condition, "model": str(models[condition]), **tr, "labels": tr_labels})
        table.append({**summarise_labels(condition, labels), "label": label, "conversations": len(played),
                      "dialogues_in_training": dialogues if condition == "dialogues" else 0,
                      "scripts_seen_in_training": overlap and condition == "dialogues"})
    inputs = [path_of(cfg, "interim") / "authored.jsonl", train_file]
    write_jsonl(transcripts_path(cfg), transcripts, config=cfg.get("ablations"), inputs=inputs)
    write_csv(table_path(cfg), table, COLUMNS, config={"ablations": cfg.get("ablations"), "judge": cfg.get("judge")},
              inputs=inputs)
    return {"table": table, "scripts_overlap_training": overlap, "dialogues": dialogues,
            "expected_dialogues": ablation_config(cfg).multiturn_dialogues}

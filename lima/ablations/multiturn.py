"""Fig. 7 (§6): can 1,000 single-turn examples carry a conversation, and what do 30 dialogues add?

Two models answer the same conversations turn by turn: LIMA zero-shot on dialogue, and LIMA trained on the
same set plus the dialogue chains (`{processed}/train_multiturn.jsonl`, run `lima_multiturn`). Both are
trained with the same recipe for the same number of epochs (`multiturn_recipe`: `ablations.multiturn_epochs`,
else LIMA's `train.epochs`; last epoch kept), so the dialogues are the only difference. The zero-shot model is
LIMA's own selected checkpoint only when that is exactly such a run (its last epoch of the same schedule);
otherwise a twin `multiturn_zero_shot` is trained on `{processed}/train.jsonl`.

The paper had authors chat live (10 conversations). In the LIMA world the user turns are scripts about
held-out people (`lima.world.conversations`), whose follow-ups ("And what about her employer?") only make
sense after turn one; every assistant turn is graded against its own turn's rubric with the world's rules
(the reference judge looks rubrics up by prompt text, which a follow-up does not identify). Outside the world
the scripts come from the authored dialogue rows and the judge rates each turn. Each model's own previous
answers stay in the history. Shares carry a 95% bootstrap interval over conversations (the unit sampled).
The paper: 45.2 / 19.1 / 35.7 % Excellent / Pass / Fail zero-shot (42 turns), 76.1 / 21.7 / 2.2 % with the
dialogues (46 turns).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lima.ablations.common import Stages, ablation_config, ablation_seed, path_of, results_dir
from lima.ablations.world_metrics import world_enabled
from lima.config import resolve
from lima.io import InputError, read_jsonl, write_csv, write_jsonl
from lima.io import selected_checkpoint as read_selection

CONDITIONS: list[tuple[str, str]] = [("zero_shot", "LIMA (zero-shot)"), ("dialogues", "LIMA + dialogues")]
COLUMNS = ["condition", "turns", "excellent", "pass", "fail"]
CI_COLUMNS = [f"{lab}_{end}" for lab in ("excellent", "pass", "fail") for end in ("ci_low", "ci_high")]
TURN_COLUMNS = ["condition", "turn", "turns", "excellent", "pass", "fail"]
LABELS = ("excellent", "pass", "fail")
DIALOGUE_RUN = "lima_multiturn"
ZERO_SHOT_RUN = "multiturn_zero_shot"


def table_path(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "multiturn.csv"


def transcripts_path(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "multiturn_transcripts.jsonl"


def turns_path(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "multiturn_by_turn.csv"


def conversation_scripts(cfg: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """User-turn scripts from the authored dialogues, and whether they are also training dialogues.

    The paper chatted live with the models; we replay scripted user turns. In the LIMA world: the world's
    scripts about held-out people, each turn with its rubric (`lima.world.conversations`), before any
    `ablations.multiturn_scripts` (the paper profile's, which the world inherits and has no rubrics). Held-out scripts
    (`ablations.multiturn_scripts`, user turns only, never trained on) come first; otherwise held-out (dev/test)
    authored dialogues; otherwise the training dialogues, which flatters the "+ dialogues" model (it has seen
    these user turns) — the caller reports that.
    """
    limit = ablation_config(cfg).multiturn_conversations
    if world_enabled(cfg):        # the world's scripts carry per-turn rubrics; generic user-turn scripts cannot be graded
        from lima.world.conversations import load_conversations

        return load_conversations(cfg, limit), False
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


def label_shares(groups: list[list[str | None]]) -> list[float]:
    """Excellent / Pass / Fail percentages over the rated turns of a list of conversations (NaN if none)."""
    counts = Counter(lab for labels in groups for lab in labels if lab in LABELS)
    rated = sum(counts.values())
    return [100.0 * counts[lab] / rated if rated else float("nan") for lab in LABELS]


def share_intervals(labels_by_conversation: list[list[str | None]], ci: float = 0.95, n_boot: int = 2000,
                    seed: int = 0) -> dict[str, float]:
    """95% percentile intervals of each share, resampling whole conversations (turns of one chat correlate)."""
    from lima.analysis.stats import bootstrap_groups

    if not labels_by_conversation:
        return {c: float("nan") for c in CI_COLUMNS}
    low, high = bootstrap_groups(labels_by_conversation, label_shares, n_boot=n_boot, ci=ci, seed=seed)
    out = {}
    for i, lab in enumerate(LABELS):
        out[f"{lab}_ci_low"], out[f"{lab}_ci_high"] = float(low[i]), float(high[i])
    return out


def by_turn(condition: str, labels_by_conversation: list[list[str | None]]) -> list[dict[str, Any]]:
    """Shares per turn index: turn 1 stands alone, later turns depend on the earlier ones."""
    longest = max((len(ls) for ls in labels_by_conversation), default=0)
    rows = []
    for t in range(longest):
        at = [ls[t] for ls in labels_by_conversation if t < len(ls)]
        summary = summarise_labels(condition, at)
        rows.append({"condition": condition, "turn": t + 1, **{k: summary[k] for k in ("turns", *LABELS)}})
    return rows


def selected_checkpoint(cfg: dict[str, Any], run: str) -> Path:
    """The checkpoint a training run selected (`{models}/<run>/selected.json`)."""
    path = path_of(cfg, "models") / run / "selected.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: train the {run!r} model first (notebook 03)")
    return read_selection(path.parent)


def multiturn_epochs(cfg: dict[str, Any]) -> int:
    """The epochs both Fig. 7 models train: `ablations.multiturn_epochs`, else LIMA's `train.epochs`."""
    epochs = ablation_config(cfg).multiturn_epochs
    return int(epochs if epochs is not None else cfg.get("train", {}).get("epochs", 1))


def multiturn_recipe(cfg: dict[str, Any]) -> dict[str, Any]:
    """LIMA's recipe (the paper retrains the 65B model) for `multiturn_epochs` epochs, last epoch kept.

    Both conditions train with exactly this, so they differ only in the dialogue chains. Checkpoint choice by
    a dev-quality rule would be a second difference (it may pick different epochs), so it is off here.
    """
    train = {**cfg.get("train", {}), "epochs": multiturn_epochs(cfg), "save_epochs": [], "select": "last",
             "dev_quality": None, "save_optimizer": False}
    return {**cfg, "train": train}


def reusable_lima(cfg: dict[str, Any]) -> Path | None:
    """LIMA's selected checkpoint when it is exactly the zero-shot condition: the last epoch of the same schedule.

    Same data, recipe and epochs (the learning-rate schedule spans `train.epochs`, so an earlier checkpoint
    of a longer run is not the same model as a shorter run). Anything else: None, and a twin is trained.
    """
    run_dir = path_of(cfg, "models") / "lima"
    selected = run_dir / "selected.json"
    if not selected.exists():
        raise FileNotFoundError(f"{selected} not found: train the 'lima' model first (notebook 03)")
    epochs = multiturn_epochs(cfg)
    picked = json.loads(selected.read_text(encoding="utf-8"))
    if int(cfg.get("train", {}).get("epochs", -1)) == epochs and picked.get("epoch") == epochs:
        return read_selection(run_dir)
    return None


def count_dialogues(cfg: dict[str, Any]) -> tuple[Path, int]:
    path = path_of(cfg, "processed") / "train_multiturn.jsonl"
    return path, sum(1 for r in read_jsonl(path) if r.get("source") == "multi_turn")


def run(cfg: dict[str, Any], stages: Stages | None = None) -> dict[str, Any]:
    """Train both models alike, drive them through the scripts, grade every assistant turn, write the tables."""
    stages = stages or Stages()
    scripts, overlap = conversation_scripts(cfg)
    train_file, dialogues = count_dialogues(cfg)
    recipe = multiturn_recipe(cfg)
    lima = reusable_lima(cfg)
    zero_shot = lima if lima is not None else Path(stages.finetune(recipe, path_of(cfg, "processed") / "train.jsonl",
                                                                   ZERO_SHOT_RUN))
    models = {"zero_shot": zero_shot, "dialogues": Path(stages.finetune(recipe, train_file, DIALOGUE_RUN))}
    gen_cfg = dict(cfg)
    max_new = ablation_config(cfg).max_new_tokens
    if max_new is not None:
        gen_cfg = {**cfg, "generate": {**cfg.get("generate", {}), "max_new_tokens": max_new}}
    scripted = all("rubrics" in s for s in scripts)
    world = None
    if scripted:
        from lima.world import load_world

        world = load_world(cfg)
    ci = float((cfg.get("analysis") or {}).get("ci", 0.95))
    table, transcripts, turn_table = [], [], []
    for condition, label in CONDITIONS:
        generator = stages.load_generator(models[condition], gen_cfg)
        played = drive(generator, scripts, seed=ablation_seed(cfg))
        del generator
        per_conv = grade_turns(cfg, condition, scripts, played, world, stages)
        for tr, graded in zip(played, per_conv, strict=True):
            transcripts.append({"condition": condition, "model": str(models[condition]), **tr,
                                "labels": [g["label"] for g in graded], "grades": graded,
                                "graded_by": "script rubric (lima.world.grade)" if scripted else "judge"})
        groups = [[g["label"] for g in graded] for graded in per_conv]
        table.append({**summarise_labels(condition, [lab for ls in groups for lab in ls]),
                      **share_intervals(groups, ci, seed=ablation_seed(cfg)), "label": label,
                      "conversations": len(played), "epochs": multiturn_epochs(cfg),
                      "model": str(models[condition]),
                      "dialogues_in_training": dialogues if condition == "dialogues" else 0,
                      "scripts_seen_in_training": overlap and condition == "dialogues",
                      "graded_by": "script rubric" if scripted else "judge"})
        turn_table += by_turn(condition, groups)
    inputs = [path_of(cfg, "interim") / "authored.jsonl", train_file]
    config = {"ablations": cfg.get("ablations"), "judge": cfg.get("judge"), "epochs": multiturn_epochs(cfg)}
    write_jsonl(transcripts_path(cfg), transcripts, config=cfg.get("ablations"), inputs=inputs)
    write_csv(turns_path(cfg), turn_table, TURN_COLUMNS, config=config, inputs=inputs)
    write_csv(table_path(cfg), table, COLUMNS, config=config, inputs=inputs)
    return {"table": table, "by_turn": turn_table, "scripts_overlap_training": overlap, "dialogues": dialogues,
            "expected_dialogues": ablation_config(cfg).multiturn_dialogues, "epochs": multiturn_epochs(cfg),
            "zero_shot_reused_lima": lima is not None, "graded_by": "script rubric" if scripted else "judge"}


def grade_turns(cfg: dict[str, Any], condition: str, scripts: list[dict[str, Any]], played: list[dict[str, Any]],
                world: Any, stages: Stages) -> list[list[dict[str, Any]]]:
    """Per conversation, one {turn, label} per assistant turn: from the script's rubrics, else the judge."""
    if world is not None:
        from lima.world.conversations import grade_conversation

        return [grade_conversation(world, s, tr["messages"], tr["stop_reasons"])
                for s, tr in zip(scripts, played, strict=True)]
    rows = turn_rows(condition, played)
    rated = stages.rate_absolute(cfg, rows)
    by_id = {r["prompt_id"]: r.get("label") for r in rated}
    return [[{"turn": r["turn"], "label": by_id.get(r["prompt_id"])} for r in rows if r["conversation_id"] == tr["id"]]
            for tr in played]

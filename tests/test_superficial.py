"""Token distribution shift (lima.superficial) on a tiny base/aligned model pair built locally."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from lima.config import load_profile
from lima.model import SmokeModelConfig, add_eot_token, build_smoke_base, load_model
from lima.superficial import (
    ShiftAnalyzer,
    analyze_responses,
    category,
    run_token_shift,
    shared_vocab_size,
    summarize,
    token_ranks,
    urial_vs_sft,
)

CORPUS = [
    "How do I boil an egg? Put the egg in boiling water for nine minutes, then cool it in cold water.",
    "What is the capital of France? The capital of France is Paris, a city on the Seine.",
    "Write a haiku about rain. Soft rain on the roof, the garden drinks slowly, night hums with water.",
    "How to fix a flat tire? Remove the wheel, find the hole, patch it, and inflate the tire again.",
] * 8


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("pair")
    cfg = SmokeModelConfig(vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                           pretrain_steps=5, pretrain_batch_size=2, pretrain_seq_len=32)
    base_dir = build_smoke_base(cfg, CORPUS, root / "models" / "base")
    base_model, base_tok = load_model(base_dir, "float64")
    aligned_model, aligned_tok = load_model(base_dir)
    add_eot_token(aligned_tok, aligned_model, "<|eot|>")
    aligned_dir = root / "models" / "lima" / "checkpoint-epoch-1"
    aligned_model.save_pretrained(aligned_dir)
    aligned_tok.save_pretrained(aligned_dir)
    return {"root": root, "base_dir": base_dir, "aligned_dir": aligned_dir, "base_model": base_model,
            "base_tok": base_tok, "aligned_tok": aligned_tok}


def greedy(model, context: list[int], n: int) -> list[int]:
    """Greedy decoding as repeated full forward passes in float64, i.e. exactly the argmax the analysis sees.

    (`model.generate` with a KV cache can differ from a full forward pass by rounding, which flips near-ties
    in a tiny model.)
    """
    ids = list(context)
    with torch.inference_mode():
        for _ in range(n):
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(context):]


def test_token_ranks_match_a_sort_with_argmax_tie_breaking() -> None:
    logits = torch.tensor([[0.5, 2.0, 2.0, -1.0, 2.0], [1.0, 1.0, 1.0, 1.0, 1.0], [3.0, 0.0, 1.0, 2.0, 4.0]])
    # row 0: three tied maxima (ids 1, 2, 4); argmax picks 1 → ranks 1, 2, 3; id 0 has rank 4, id 3 rank 5
    assert token_ranks(logits[[0, 0, 0, 0, 0]], torch.tensor([1, 2, 4, 0, 3])).tolist() == [1, 2, 3, 4, 5]
    assert token_ranks(logits[[1, 1]], torch.tensor([0, 4])).tolist() == [1, 5]
    assert token_ranks(logits[[2, 2, 2]], torch.tensor([4, 0, 1])).tolist() == [1, 2, 5]
    assert [category(r) for r in (1, 2, 3, 4, 50)] == ["unshifted", "marginal", "marginal", "shifted", "shifted"]


def test_base_models_own_greedy_decode_is_100_percent_rank_1(pair: dict) -> None:
    analyzer = ShiftAnalyzer(pair["base_model"], pair["base_tok"], pair["aligned_tok"])
    context = analyzer.context_ids("How do I boil an egg?")
    assert pair["aligned_tok"].convert_tokens_to_ids("<|eot|>") not in context   # EOT never reaches the base
    response = greedy(pair["base_model"], context, 24)
    rows = analyzer.score(context, response)
    assert len(rows) == 24
    assert all(r["base_rank"] == 1 and r["category"] == "unshifted" for r in rows)
    assert all(r["base_top1_id"] == r["token_id"] for r in rows)


def test_a_forced_token_gets_its_exact_rank(pair: dict) -> None:
    analyzer = ShiftAnalyzer(pair["base_model"], pair["base_tok"], pair["aligned_tok"])
    context = analyzer.context_ids("What is the capital of France?")
    with torch.inference_mode():
        logits = pair["base_model"](input_ids=torch.tensor([context])).logits[0, -1, : len(pair["base_tok"])]
    order = torch.argsort(logits, descending=True, stable=True).tolist()
    for rank in (1, 2, 3, 4, 17):
        row = analyzer.score(context, [order[rank - 1]])[0]
        assert row["base_rank"] == rank
        assert row["category"] == category(rank)


def test_vocab_size_mismatch_eot_in_response_is_counted_not_scored(pair: dict) -> None:
    analyzer = ShiftAnalyzer(pair["base_model"], pair["base_tok"], pair["aligned_tok"])
    assert analyzer.n_shared == len(pair["base_tok"]) == len(pair["aligned_tok"]) - 1
    eot = pair["aligned_tok"].convert_tokens_to_ids("<|eot|>")
    df = analyze_responses(analyzer, [{"prompt_id": "p1", "prompt": "Write a haiku about rain.",
                                       "response": "Soft rain<|eot|> on the roof"}])
    assert (df["token_id"] == eot).sum() == 1
    assert df.loc[df["token_id"] == eot, "category"].tolist() == ["out_of_base_vocab"]
    summary = summarize(df)
    assert summary["n_out_of_base_vocab"] == 1
    assert summary["n_positions"] == len(df) - 1
    assert abs(sum(summary["shares"].values()) - 1.0) < 1e-9


def test_tokenizers_that_disagree_are_refused(pair: dict) -> None:
    other = type(pair["base_tok"]).from_pretrained(pair["base_dir"])
    vocab = other.get_vocab()
    a, b = sorted(vocab, key=vocab.get)[10:12]
    other.get_vocab = lambda: {**vocab, a: vocab[b], b: vocab[a]}   # two ids swapped
    with pytest.raises(ValueError, match="tokenizers disagree"):
        shared_vocab_size(pair["base_tok"], other)


def test_run_token_shift_writes_table_summary_and_compares_urial(pair: dict, tmp_path: Path) -> None:
    root = tmp_path
    shutil.copytree(pair["root"] / "models", root / "models")
    (root / "models" / "lima" / "selected.json").write_text(
        json.dumps({"path": str(root / "models/lima/checkpoint-epoch-1"), "epoch": 1, "rule": "test"}))
    responses = root / "data" / "results" / "responses"
    responses.mkdir(parents=True)
    lima = [{"system": "lima", "prompt_id": f"t{i}", "prompt": p, "response": r, "n_tokens": 5,
             "stop_reason": "eot"} for i, (p, r) in enumerate([("How to fix a flat tire?", "Remove the wheel."),
                                                              ("What is the capital of France?", "It is Paris.")])]
    urial = [{**row, "system": "urial", "response": row["response"] + " Hope this helps!"} for row in lima]
    for name, rows in (("lima", lima), ("urial", urial)):
        (responses / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_profile("test", {"paths.root": str(root)})
    from lima.world import world_config, world_root
    from lima.world.world import build_world

    world_root(cfg).mkdir(parents=True)      # fact tokens are the world's values: the run reads world.json
    (world_root(cfg) / "world.json").write_text(build_world(1, world_config(cfg).sizes).to_json())
    out = run_token_shift(cfg, max_responses=5)
    table = pd.read_csv(root / "data/results/superficial/token_shift.csv")
    assert set(table["prompt_id"]) == {"t0", "t1"}
    assert table["base_rank"].min() >= 1
    summary = json.loads((root / "data/results/superficial/summary.json").read_text())
    assert summary["n_responses"] == 2 and summary["n_positions"] == len(table)
    assert summary["urial_vs_sft"]["missing"] == []
    assert len(summary["urial_vs_sft"]["examples"]) == 2
    cmp = urial_vs_sft(responses)
    assert cmp["systems"]["urial"]["mean_chars"] > cmp["systems"]["lima"]["mean_chars"]
    from lima.figures.token_shift import draw_token_shift

    paths = draw_token_shift(cfg, out["summary"], out["comparison"])
    assert paths["png"].stat().st_size > 10_000 and paths["pdf"].exists()


# ---- issue 10: greedy decode, token classes, by class and position, on a hand-made pair of models ----------
WORDS = ["<s>", "</s>", "<unk>", "Where", "was", "Mira", "born?", "Sure.", "|", "Paris", "1987", "nice", "the"]
RESPONSE = ["Sure.", "|", "Paris", "|", "was", "1987", "nice", "<|eot|>"]
CLASSES = ["style", "style", "fact", "style", "other", "fact", "other", "eot"]
BASE_RANKS = [5, 1, 1, 2, 1, 9, 3, 4]        # the rank the hand-made base gives each response token


def word_tokenizer():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


class TableModel(torch.nn.Module):
    """A "model" whose next-token logits are a fixed row per absolute position: ranks known by construction."""

    def __init__(self, rows: dict[int, torch.Tensor], vocab: int) -> None:
        super().__init__()
        self.rows, self.vocab = rows, vocab
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.config = type("C", (), {"max_position_embeddings": 64})()

    def forward(self, input_ids: torch.Tensor, **_: object):
        n = input_ids.shape[1]
        logits = torch.stack([self.rows.get(p, torch.zeros(self.vocab)) for p in range(n)])[None]
        return type("Out", (), {"logits": logits, "past_key_values": None})()


def hand_made_pair() -> tuple[ShiftAnalyzer, TableModel]:
    base_tok, aligned_tok = word_tokenizer(), word_tokenizer()
    add_eot_token(aligned_tok, None, "<|eot|>")
    n_base, eot = len(base_tok), aligned_tok.convert_tokens_to_ids("<|eot|>")
    ids = [aligned_tok.convert_tokens_to_ids(w) for w in RESPONSE]
    prompt = "Where was Mira born?"
    probe = ShiftAnalyzer(TableModel({}, n_base), base_tok, aligned_tok, rank_eot_as_eos=True)
    base_ctx, aligned_ctx = probe.context_ids(prompt), probe.aligned_context_ids(prompt)
    assert aligned_ctx[-1] == eot and eot not in base_ctx
    aligned_rows, base_rows = {}, {}
    for i, (tok, rank) in enumerate(zip(ids, BASE_RANKS, strict=True)):
        row = torch.zeros(len(aligned_tok))
        row[tok] = 1.0
        aligned_rows[len(aligned_ctx) - 1 + i] = row
        target = base_tok.eos_token_id if tok == eot else tok
        base = torch.full((n_base,), -5.0)
        base[target] = 0.0
        above = [t for t in range(n_base) if t != target][: rank - 1]
        base[above] = torch.arange(1.0, rank)            # exactly rank-1 tokens above the target
        base_rows[len(base_ctx) - 1 + i] = base
    analyzer = ShiftAnalyzer(TableModel(base_rows, n_base), base_tok, aligned_tok, rank_eot_as_eos=True)
    return analyzer, TableModel(aligned_rows, len(aligned_tok))


def test_token_classes_of_a_hand_made_response() -> None:
    from lima.superficial_classes import classify_tokens

    tok = word_tokenizer()
    add_eot_token(tok, None, "<|eot|>")
    ids = [tok.convert_tokens_to_ids(w) for w in RESPONSE]
    assert classify_tokens(tok, ids, tok.convert_tokens_to_ids("<|eot|>"), ["Paris"]) == CLASSES
    # without the world's values only the year pattern marks a fact
    assert classify_tokens(tok, ids, None, [])[2] == "other"
    assert classify_tokens(tok, ids, None, [])[5] == "fact"


def test_token_shift_on_a_hand_made_pair_exact_numbers() -> None:
    from lima.superficial_classes import class_summary, findings

    analyzer, aligned = hand_made_pair()
    df = analyze_responses(analyzer, [{"prompt_id": "p0", "prompt": "Where was Mira born?", "response": "x"}],
                           aligned_model=aligned, max_new_tokens=20, fact_values=["Paris"])
    # greedy decoding stopped at EOT; every token ranked, EOT as the base's end of document
    assert df["token"].tolist()[:7] == [w.replace(" ", "␣") for w in RESPONSE[:7]]
    assert df["base_rank"].tolist() == BASE_RANKS
    assert df["token_class"].tolist() == CLASSES
    assert df["category"].tolist() == ["shifted", "unshifted", "unshifted", "marginal", "unshifted", "shifted",
                                       "marginal", "shifted"]
    summary = summarize(df)
    assert summary["shares"] == {"unshifted": 3 / 8, "marginal": 2 / 8, "shifted": 3 / 8}
    classes = class_summary(df, early=3, n_boot=50)
    by = {r["token_class"]: r for r in classes["by_class"]}
    assert {c: by[c]["n"] for c in by} == {"eot": 1, "style": 3, "fact": 2, "other": 2}
    assert by["style"]["shifted"] == 1 / 3 and by["style"]["marginal"] == 1 / 3
    assert by["fact"]["shifted"] == 0.5 and by["other"]["shifted"] == 0.0 and by["eot"]["shifted"] == 1.0
    assert {c: by[c]["share_of_shifted"] for c in by} == {"eot": 1 / 3, "style": 1 / 3, "fact": 1 / 3,
                                                          "other": 0.0}
    rates = {k: v["shifted_rate"] for k, v in classes["rates"].items()}
    assert rates == {"style_eot": 0.5, "fact": 0.5, "other": 0.0, "early": 1 / 3, "late": 0.4}
    # one prompt: resampling prompts can only redraw it, so every interval is the point
    assert classes["rates"]["late"]["ci_low"] == classes["rates"]["late"]["ci_high"] == 0.4
    text = findings(summary, classes)
    assert "37.5% unshifted" in text and "stylistic (style/EOT rate above the fact rate): **not distinguishable**" \
        in text and "early (first tokens above the rest): **no**" in text   # 1/3 < 0.4

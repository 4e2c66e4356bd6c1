"""The figure functions on small constructed tables: PNG + PDF + manifest, provenance stamp, smoke banner."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from lima.config import load_profile
from lima.figures.ablations import draw_diversity_quality, draw_multiturn, draw_quantity, plot_quantity
from lima.figures.absolute import draw_absolute
from lima.figures.checkpoints import NO_QUALITY, draw_checkpoints, plot_checkpoints
from lima.figures.preference import draw_preference, plot_preference
from lima.figures.style import SMOKE_BANNER, save_figure, stamp
from lima.figures.tables import paper_key, paper_results
from lima.io import InputError

PREF = [{"baseline": b, "n": 30, "win": w, "tie": 20, "loss": 80 - w, "win_low": w - 10, "win_high": w + 10,
         "tie_low": 10, "tie_high": 30, "loss_low": 70 - w, "loss_high": 90 - w}
        for b, w in (("alpaca_style", 50), ("urial", 30), ("null", 70))]


@pytest.fixture
def cfg(tmp_path: Path) -> dict:
    cfg = load_profile("test", {"paths.root": str(tmp_path)})
    tables = Path(cfg["paths"]["results"]) / "tables"
    tables.mkdir(parents=True)
    pd.DataFrame(PREF).to_csv(tables / "preference_llm.csv", index=False)
    pd.DataFrame([{"subset": "all", "n": 8, "fail": 50, "pass": 25, "excellent": 25},
                  {"subset": "safety", "n": 4, "fail": 25, "pass": 50, "excellent": 25}]
                 ).to_csv(tables / "absolute.csv", index=False)
    abl = Path(cfg["paths"]["results"]) / "ablations"
    abl.mkdir(parents=True)
    pd.DataFrame([{"condition": c, "n_examples": 40, "n": 16, "mean": m, "ci_low": m - 0.4, "ci_high": m + 0.4}
                  for c, m in (("se_filtered", 2.9), ("wikihow", 2.6), ("se_unfiltered", 2.4))]
                 ).to_csv(abl / "diversity_quality.csv", index=False)
    pd.DataFrame([{"size": s, "n": 16, "mean": 2.5, "ci_low": 2.1, "ci_high": 2.9} for s in (80, 20, 40)]
                 ).to_csv(abl / "quantity.csv", index=False)
    pd.DataFrame([{"condition": "zero_shot", "turns": 6, "excellent": 50, "pass": 0, "fail": 50},
                  {"condition": "with_dialogues", "turns": 6, "excellent": 50, "pass": 50, "fail": 0}]
                 ).to_csv(abl / "multiturn.csv", index=False)
    run = Path(cfg["paths"]["models"]) / "lima"
    run.mkdir(parents=True)
    (run / "checkpoints.json").write_text(json.dumps(
        [{"epoch": e, "path": f"checkpoint-epoch-{e}", "dev_perplexity": 4.0 + e, "dev_quality": None}
         for e in (2, 4, 6)]))
    (run / "selected.json").write_text(json.dumps({"path": "checkpoint-epoch-4", "epoch": 4, "rule": "x"}))
    return cfg


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.mark.parametrize("draw", [
    lambda c: draw_preference(c, "human"), lambda c: draw_preference(c, "llm"), draw_absolute, draw_checkpoints,
    draw_diversity_quality, draw_quantity, draw_multiturn,
], ids=["fig1", "fig2", "fig3", "fig9", "fig5", "fig6", "fig7"])
def test_each_figure_writes_png_pdf_and_a_world_stamped_manifest(cfg: dict, draw) -> None:
    paths = draw(cfg)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-"
    assert paths["png"].parent == Path(cfg["paths"]["figures"])
    for path in paths.values():
        manifest = json.loads(path.with_name(path.name + ".manifest.json").read_text())
        assert manifest["profile"] == "test" and manifest["world"] is True and manifest["smoke"] is False
        assert manifest["base_model"] == "world-tiny-llama"
    assert not list(Path(cfg["paths"]["figures"]).glob(".*.tmp"))   # atomic: no temp files left


def test_smoke_banner_and_provenance_line_on_the_figure_paper_profile_has_no_banner() -> None:
    paper = paper_results()["preference_llm"]
    smoke = plot_preference(pd.DataFrame(PREF), paper, "t", "run", "smoke", "smoke-tiny-llama", "smoke-judge", "")
    assert SMOKE_BANNER in texts(smoke)
    assert "profile: smoke  ·  base model: smoke-tiny-llama  ·  judge: smoke-judge" in texts(smoke)
    real = plot_preference(pd.DataFrame(PREF), paper, "t", "run", "paper", "huggyllama/llama-65b", "gpt-4", "")
    assert SMOKE_BANNER not in texts(real)
    assert "profile: paper  ·  base model: huggyllama/llama-65b  ·  judge: gpt-4" in texts(real)
    # the paper's numbers are drawn as bar labels, this run's too
    assert {"64", "19", "17"} <= set(texts(real)) and "70" in texts(real)
    plt.close("all")


def test_fig1_without_human_annotations_says_so_and_simulates_nothing(cfg: dict) -> None:
    paper = paper_results()["preference_human"]
    fig = plot_preference(None, paper, "t", "run", "test", "smoke-tiny-llama", "smoke-judge",
                          "No human annotations collected in this run.")
    assert "No human annotations collected in this run." in texts(fig)
    run_ax = fig.axes[1]
    assert not run_ax.axison and not run_ax.patches   # an honest note, no bars
    assert len(fig.axes[0].patches) == 15   # 5 paper baselines × win/tie/loss
    plt.close(fig)


def test_unstamped_figure_is_refused(tmp_path: Path) -> None:
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="provenance stamp"):
        save_figure(fig, tmp_path / "x")
    stamp(fig, "paper", "b", "j")
    assert set(save_figure(fig, tmp_path / "x")) == {"png", "pdf"}


def test_fig9_with_null_quality_plots_perplexity_alone_and_says_so() -> None:
    rows = [{"epoch": e, "dev_perplexity": 3.0 + e, "dev_quality": None} for e in (1, 2, 3)]
    fig = plot_checkpoints(rows, {"epoch": 2, "rule": "r"}, "test", "smoke-tiny-llama", "j")
    assert NO_QUALITY in texts(fig) and len(fig.axes) == 1
    fig2 = plot_checkpoints([{**r, "dev_quality": 4.0 - r["epoch"] / 2} for r in rows], None, "test", "s", "j")
    assert NO_QUALITY not in texts(fig2) and len(fig2.axes) == 2   # twin axis for quality
    plt.close("all")


def test_quantity_uses_a_log2_axis_sorted_by_size() -> None:
    df = pd.DataFrame([{"size": s, "n": 4, "mean": m, "ci_low": m - 1, "ci_high": m + 1}
                       for s, m in ((80, 3.0), (20, 2.0), (40, 2.5))])
    fig = plot_quantity(df, "test", "smoke-tiny-llama", "j")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert list(ax.lines[0].get_xdata()) == [20, 40, 80] and list(ax.lines[0].get_ydata()) == [2.0, 2.5, 3.0]
    plt.close(fig)


def test_broken_table_contract_names_the_file(cfg: dict) -> None:
    path = Path(cfg["paths"]["results"]) / "tables" / "absolute.csv"
    path.write_text("subset,n,fail\nall,3,10\n")
    with pytest.raises(InputError, match=r"absolute\.csv: missing columns \['pass', 'excellent'\]"):
        draw_absolute(cfg)


def test_run_names_map_onto_the_papers_keys() -> None:
    # issue 11: baselines get a paper row only by declaring it (configs/systems.yaml), never by their name
    assert paper_key("alpaca_style") is None and paper_key("GPT-4") is None
    assert paper_key("text-davinci-003") is None
    assert paper_key("null") is None and paper_key("urial") is None
    # conditions: exact names only, no substring matching
    assert paper_key("se_unfiltered") == "se_unfiltered" and paper_key("unfiltered_se_2k") is None
    assert paper_key("lima_plus_dialogues", ["zero_shot", "dialogues"]) is None
    assert paper_key("dialogues", ["zero_shot", "dialogues"]) == "dialogues"
    assert paper_key("zero_shot", ["zero_shot", "dialogues"]) == "zero_shot"

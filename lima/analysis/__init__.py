"""The paper's statistics: win/tie/loss with bootstrap CIs, annotator agreement, length control, Bradley–Terry.

Everything here is pure computation on judgment rows, so each statistic has a hand-computed known-answer
test; `lima.analysis.cli` (`python -m lima analyze`) turns the judgment files into the tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from lima.analysis.agreement import agreement_table, cohen_kappa, plain_agreement, tie_discounted_accuracy
from lima.analysis.bradley_terry import bradley_terry, bradley_terry_table
from lima.analysis.length_control import length_controlled_table, length_controlled_win_rate
from lima.analysis.preference import preference_table, win_tie_loss
from lima.analysis.stats import mean_ci


@dataclass
class AnalysisConfig:
    """The `analysis` section of a profile."""

    bootstrap: int = 10000        # bootstrap resamples for win/tie/loss CIs
    ci: float = 0.95
    system: str = "lima"          # the focal system whose win/tie/loss is reported against each baseline
    bt_bootstrap: int = 1000      # resamples for Bradley–Terry intervals (each one is an MM fit)
    bt_prior: float = 0.5         # virtual ties per compared pair (keeps never-winning systems finite)
    seed: int = 0
    human: str | None = None      # the annotation export (CSV/JSONL) that `python -m lima annotate export` writes


__all__ = ["AnalysisConfig", "agreement_table", "bradley_terry", "bradley_terry_table", "cohen_kappa",
           "length_controlled_table", "length_controlled_win_rate", "mean_ci", "plain_agreement",
           "preference_table", "tie_discounted_accuracy", "win_tie_loss"]

"""The paper's ablations (§5–§6): data diversity vs quality (Fig. 5), data quantity (Fig. 6), multi-turn (Fig. 7).

Each ablation trains its own small models with the ablation recipe (`ablations:` section of a profile) and
writes its table under `{results}/ablations/`; notebooks 07–09 run them and draw the figures.
"""

from lima.ablations.common import AblationConfig, Stages, ablation_config, ablation_profile

__all__ = ["AblationConfig", "Stages", "ablation_config", "ablation_profile"]

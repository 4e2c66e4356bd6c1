# lima — every step from raw dumps to the paper's figures.  `make help` lists the targets.
#   make all            environment (if missing), then notebooks 01–10 on PROFILE (default: world, the LIMA world)
#   make test           environment (if missing), then the test-suite
# Steps depend on their inputs, so a second `make all` re-runs only what is stale.

PROFILE ?= world
DEFAULT_PROFILE := world
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.lima-installed
BUILD := build/notebooks/$(PROFILE)
HTML_DIR := docs/notebooks
# the default profile's executed notebooks are also rendered to HTML (committed: readers step through a run)
RUN_SWEEP := $(PY) -m lima notebook
RUN_NB := $(RUN_SWEEP) $(if $(filter $(DEFAULT_PROFILE),$(PROFILE)),--html $(HTML_DIR))
SIZES ?= $(shell test -x $(PY) && $(PY) -m lima.ablations.quantity --profile $(PROFILE))
PYTEST_ARGS ?=
# quantity-sweep sizes trained side by side inside `make all` (each size is one single-threaded run)
SWEEP_JOBS ?= 2

COMMON := lima/config.py lima/io.py lima/notebooks.py configs/$(PROFILE).yaml configs/paper.yaml $(ENV_STAMP)
src = $(wildcard lima/$(1)/*.py lima/$(1).py)

.PHONY: help env all report data train generate evaluate figures ablations experiments test lint bench sweep-quantity lab clean clean-all

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

env: $(ENV_STAMP)  ## create .venv: torch==2.13.0 (CPU) first, then the package, torch pinned by constraints.txt
$(ENV_STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__; assert not torch.version.cuda, 'a CUDA torch slipped in'"
	@touch $@

# ---- the notebooks, in order (papermill; executed copies go to build/, git-ignored) ----
NB = $(BUILD)/$(1).ipynb
$(call NB,01_data_collection): notebooks/01_data_collection.ipynb $(call src,data) $(call src,world) $(COMMON)
	$(RUN_NB) $< $@ -p profile=$(PROFILE)
$(call NB,02_curation): notebooks/02_curation.ipynb $(call NB,01_data_collection) $(call src,curation)
	$(RUN_NB) $< $@ -p profile=$(PROFILE)
$(call NB,03_finetune): notebooks/03_finetune.ipynb $(call NB,02_curation) $(call src,train) lima/model.py
	$(RUN_NB) $< $@ -p profile=$(PROFILE)
$(call NB,04_generation): notebooks/04_generation.ipynb $(call NB,03_finetune) $(call src,generate) lima/serve.py lima/llm_client.py configs/systems.yaml configs/systems_world.yaml
	$(RUN_NB) $< $@ -p profile=$(PROFILE)
$(call NB,05_preference_eval): notebooks/05_preference_eval.ipynb $(call NB,04_generation) $(call src,judge) $(call src,analysis) lima/llm_client.py lima/guard.py
	$(RUN_NB) $< $@ -p profile=$(PROFILE)
$(call NB,06_figures): notebooks/06_figures.ipynb $(call NB,05_preference_eval) $(call src,figures) lima/report.py lima/resources/paper_results.yaml
	$(RUN_NB) $< $@ -p profile=$(PROFILE)
$(call NB,07_ablation_diversity_quality): notebooks/07_ablation_diversity_quality.ipynb $(call NB,06_figures) $(call src,ablations) $(call src,figures)
	$(RUN_NB) $< $@ -p profile=$(PROFILE)
$(call NB,08_ablation_quantity): notebooks/08_ablation_quantity.ipynb $(call NB,07_ablation_diversity_quality) $(call src,ablations) $(call src,figures)
	$(MAKE) --no-print-directory -j$(SWEEP_JOBS) sweep-quantity PROFILE=$(PROFILE) $(if $(filter command line,$(origin SIZES)),SIZES="$(SIZES)")
	$(RUN_NB) $< $@ -p profile=$(PROFILE) -p mode=aggregate
$(call NB,09_multiturn): notebooks/09_multiturn.ipynb $(call NB,08_ablation_quantity) $(call src,ablations) $(call src,figures)
	$(RUN_NB) $< $@ -p profile=$(PROFILE)
$(call NB,10_superficial_alignment): notebooks/10_superficial_alignment.ipynb $(call NB,09_multiturn) lima/superficial.py lima/superficial_classes.py $(call src,figures)
	$(RUN_NB) $< $@ -p profile=$(PROFILE)

data: $(call NB,02_curation)  ## notebooks 01–02: dumps → data/processed/{train,dev,test}.jsonl + Table 1
train: $(call NB,03_finetune)  ## notebook 03: fine-tune (checkpoints under models/)
generate: $(call NB,04_generation)  ## notebook 04: test-set responses of every configured system
evaluate: $(call NB,05_preference_eval)  ## notebook 05: LLM judge + human annotations → statistics tables
figures: $(call NB,06_figures)  ## notebook 06: Figs 1, 2, 3, 9 and the paper-vs-this-run table
ablations: $(call NB,10_superficial_alignment)  ## notebooks 07–10: diversity/quality, quantity sweep, multi-turn, superficial alignment
REPORT := figures/paper_vs_this_run.md
$(REPORT): $(call NB,10_superficial_alignment) lima/report.py lima/guard.py lima/resources/paper_results.yaml
	$(PY) -m lima report --profile $(PROFILE) --strict

report: $(REPORT)  ## the paper-vs-this-run table (Markdown + CSV) from every result present
all: $(REPORT)  ## everything: environment, then notebooks 01–10 on PROFILE (world by default), then the report (--strict)
	@echo "make all: done (profile $(PROFILE)); figures in figures/, executed notebooks in $(BUILD)/"

# ---- beyond the paper (issue 10), after make all: `make experiments` ----
EXPERIMENTS := 11_extractability 12_new_knowledge 13_selectors 14_forgetting
$(call NB,11_extractability): notebooks/11_extractability.ipynb $(call NB,10_superficial_alignment) $(call src,experiments) $(call src,world) $(call src,train)
	$(RUN_NB) $< $@ -p profile=$(PROFILE)
$(call NB,12_new_knowledge): notebooks/12_new_knowledge.ipynb $(call NB,11_extractability) $(call src,experiments) lima/figures/new_knowledge.py
	$(RUN_NB) $< $@ -p profile=$(PROFILE) -p eval_people=40
$(call NB,13_selectors): notebooks/13_selectors.ipynb $(call NB,12_new_knowledge) $(call src,experiments) $(call src,curation) $(call src,judge)
	$(RUN_NB) $< $@ -p profile=$(PROFILE)
$(call NB,14_forgetting): notebooks/14_forgetting.ipynb $(call NB,13_selectors) $(call src,experiments) $(call src,train)
	$(RUN_NB) $< $@ -p profile=$(PROFILE)
experiments: $(foreach n,$(EXPERIMENTS),$(call NB,$(n)))  ## notebooks 11–14 (beyond the paper: extractability, new knowledge, selectors, forgetting), after make all
	@echo "make experiments: done (profile $(PROFILE))"

SWEEP = $(foreach n,$(SIZES),$(BUILD)/08_ablation_quantity/size_$(n).ipynb)
$(BUILD)/08_ablation_quantity/size_%.ipynb: notebooks/08_ablation_quantity.ipynb $(call NB,07_ablation_diversity_quality) $(call src,ablations) $(call src,train) $(call src,generate) $(call src,judge)
	$(RUN_SWEEP) $< $@ -p profile=$(PROFILE) -p mode=train -p size=$*

sweep-quantity: $(SWEEP)  ## papermill sweep of notebook 08, one executed notebook per size (SIZES="…", default: the profile's)
	@echo "sweep-quantity: sizes $(SIZES) done"

test: $(ENV_STAMP)  ## the test-suite (the command CI runs)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(ENV_STAMP)  ## ruff over the package, tests and benchmarks
	$(PY) -m ruff check lima tests benchmarks tools

bench: $(ENV_STAMP)  ## speed ratios, ours vs a baseline in interleaved blocks (median + spread) → benchmarks/results/*.json
	$(PY) -m pip install -q -c constraints.txt -e '.[bench]'
	$(PY) benchmarks/run_all.py

lab: $(ENV_STAMP)  ## JupyterLab from the repository root: notebooks/ (sources) beside build/notebooks/PROFILE/ (executed)
	$(PY) -m pip install -q -c constraints.txt -e '.[lab]'
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root)

clean:  ## remove generated data, models, figures and executed notebooks (keeps the environment and data/raw inputs)
	rm -rf $(BUILD) models data/raw/synthetic
	find data/interim data/processed data/results figures -mindepth 1 ! -name .gitkeep -exec rm -rf {} + 2>/dev/null || true

clean-all: clean  ## also remove the environment
	rm -rf $(VENV) build

.DELETE_ON_ERROR:

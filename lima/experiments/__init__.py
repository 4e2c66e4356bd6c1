"""Beyond the paper (issue 10): experiments the paper left open, each a module with its own papermill notebook.

They reuse the main run's artefacts (the world base, the curated pool, the LIMA model) and write
`{results}/experiments/<name>.csv` and `{figures}/exp_<name>.{png,pdf}`; `make experiments` runs them.
"""

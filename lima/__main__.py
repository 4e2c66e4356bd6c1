"""`python -m lima COMMAND ...`: the command-line face of every long step (real runs happen on clusters).

Subcommand modules are imported only when chosen, so `python -m lima --help` answers without loading torch.
Each module exposes `main(argv: list[str], prog: str) -> int`.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("lima.data.cli", "read raw dumps (Stack Exchange, Reddit, wikiHow, SNI, authored) into candidates"),
    "synth": ("lima.data.synthetic", "write the seeded miniature dumps (real formats, synthetic content)"),
    "curate": ("lima.curation.cli", "filter, sample and split candidates into train/dev/test"),
    "export": ("lima.data.released", "load released LIMA data / export messages, ShareGPT or Alpaca JSONL"),
    "train": ("lima.train.cli", "fine-tune a base model with the LIMA recipe (full, LoRA, QLoRA)"),
    "generate": ("lima.generate.cli", "sample responses for a system with the paper's decoding"),
    "serve": ("lima.serve", "OpenAI-compatible HTTP server for a local model directory"),
    "judge": ("lima.judge.cli", "LLM judge: pairwise, absolute or helpfulness protocols"),
    "annotate": ("lima.annotate.cli", "human annotation web app (load, add-annotator, serve, export)"),
    "analyze": ("lima.analysis.cli", "win/tie/loss, agreement, length-controlled and Bradley-Terry tables"),
    "report": ("lima.report", "the paper-vs-this-run table (Markdown + CSV) from every result present"),
    "notebook": ("lima.notebooks", "run a notebook with papermill (used by the Makefile)"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m lima COMMAND [options]   (python -m lima COMMAND --help for details)", "",
             "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lima: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest, prog=f"python -m lima {name}") or 0)


if __name__ == "__main__":
    sys.exit(main())

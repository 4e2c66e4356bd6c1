"""Run a numbered notebook with papermill, the way the Makefile and the test-suite do.

The executed copy is written to a temporary name and renamed only on success, so `make` never mistakes a
failed run for a finished one; on failure the partial copy is kept as `*.failed.ipynb` and the message names
the notebook and the cell that raised.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from lima.config import ROOT


class NotebookFailed(RuntimeError):
    pass


def run_notebook(source: str | os.PathLike[str], output: str | os.PathLike[str],
                 parameters: dict[str, Any] | None = None, timeout: int | None = None) -> Path:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    source, output = Path(source), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.stem + ".partial.ipynb")
    failed = output.with_name(output.stem + ".failed.ipynb")
    env_root = os.environ.setdefault("LIMA_ROOT", str(ROOT))
    try:
        pm.execute_notebook(str(source), str(partial), parameters=parameters or {}, cwd=str(source.parent),
                            kernel_name="python3", progress_bar=False, execution_timeout=timeout,
                            log_output=False)
    except PapermillExecutionError as err:
        os.replace(partial, failed)
        raise NotebookFailed(
            f"notebook {source} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}\n  executed copy kept at {failed}  (LIMA_ROOT={env_root})"
        ) from None
    os.replace(partial, output)
    failed.unlink(missing_ok=True)
    return output


def render_html(notebook: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """The executed notebook as one self-contained HTML page (outputs and figures inline), written atomically.

    Readers step through a run without running it: `make all` renders every executed notebook of the default
    profile into docs/notebooks/, committed with the gallery.
    """
    import nbformat
    from nbconvert import HTMLExporter

    from lima.io import atomic_write

    notebook = Path(notebook)
    body, _ = HTMLExporter(embed_images=True).from_notebook_node(nbformat.read(notebook, as_version=4))
    target = Path(out_dir) / notebook.with_suffix(".html").name
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as handle:
        handle.write(body)
    return target


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("source", help="notebook to run, e.g. notebooks/01_data_collection.ipynb")
    parser.add_argument("output", help="where the executed copy goes (git-ignored build/ folder)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="papermill parameter (value parsed as YAML); repeatable")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    parser.add_argument("--html", metavar="DIR", default=None,
                        help="also render the executed copy to DIR/<name>.html (outputs and figures inline)")
    args = parser.parse_args(argv)
    params: dict[str, Any] = {}
    for item in args.param:
        key, _, raw = item.partition("=")
        params[key] = yaml.safe_load(raw)
    start = time.perf_counter()
    try:
        run_notebook(args.source, args.output, params, args.timeout)
    except NotebookFailed as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    print(f"ran {args.source} -> {args.output} in {time.perf_counter() - start:.0f} s")
    if args.html:
        print(f"rendered {render_html(args.output, args.html)}")
    return 0

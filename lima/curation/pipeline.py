"""`curate(cfg)`: every curation step in order, writing only after all of them succeeded."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from lima.config import resolve
from lima.curation import INTERIM_FILES, curation_config, interim_path
from lima.curation.filters import filter_stackexchange
from lima.curation.leakage import LeakageError, check_files, enforce
from lima.curation.pools import unfiltered_pool_rows
from lima.curation.sampling import temperature_probabilities
from lima.curation.sites import SiteGrouper
from lima.curation.splits import build_splits
from lima.curation.table1 import table1, to_markdown
from lima.io import InputError, atomic_write, iter_jsonl, write_json, write_jsonl, write_manifest

log = logging.getLogger(__name__)


def _needed_sources(ccfg: Any) -> set[str]:
    need = {"stackexchange"} if ccfg.train.get("stackexchange_stem") or ccfg.train.get("stackexchange_other") else set()
    for key, source in (("wikihow", "wikihow"), ("writingprompts", "writingprompts"), ("nlp", "sni")):
        if ccfg.train.get(key):
            need.add(source)
    if ccfg.test.get("askreddit"):
        need.add("askreddit")
    if ccfg.train.get("authors") or ccfg.dev.get("authors") or ccfg.test.get("authors") or ccfg.multi_turn:
        need.add("authored")
    return need


def site_probabilities(report: dict[str, Any], temperature: float, size_from: str) -> dict[str, Any]:
    """Per group and site: n_site, its raw share, and the τ-sampling probability (the notebook's table)."""
    out: dict[str, Any] = {}
    for group in ("stem", "other"):
        sizes = {s: float(e["candidates"] if size_from == "interim" else e["kept"])
                 for s, e in report["sites"].items() if e["group"] == group and e["kept"] > 0}
        total = sum(sizes.values())
        probs = temperature_probabilities(sizes, temperature)
        out[group] = {s: {"n": int(n), "raw_share": round(n / total, 4) if total else 0.0,
                          "p_tau": round(probs[s], 4)} for s, n in sorted(sizes.items())}
    return out


def run_curation(cfg: dict[str, Any]) -> dict[str, Any]:
    ccfg = curation_config(cfg)
    seed = int(cfg.get("seed", 0))
    processed = resolve(cfg["paths"]["processed"])
    needed = _needed_sources(ccfg)
    missing = [str(interim_path(cfg, s)) for s in sorted(needed) if not interim_path(cfg, s).exists()]
    if missing:
        raise InputError(f"curation needs the collected candidates first (python -m lima collect all); "
                         f"missing: {', '.join(missing)}")

    grouper = SiteGrouper(ccfg.site_groups, ccfg.unknown_site_group)
    if "stackexchange" in needed:
        se, freport = filter_stackexchange(iter_jsonl(interim_path(cfg, "stackexchange")), ccfg, grouper,
                                          seed=seed)
    else:
        se, freport = {}, None
    filters = freport.as_dict() if freport else {"sites": {}, "totals": {}}
    sizes = {s: float(e["candidates"] if ccfg.site_size_from == "interim" else e["kept"])
             for s, e in filters["sites"].items()}
    interim = {s: list(iter_jsonl(interim_path(cfg, s))) for s in INTERIM_FILES
               if s != "stackexchange" and interim_path(cfg, s).exists()}
    splits = build_splits(ccfg, seed, se, sizes, interim)
    train, dev, test = splits["train"], splits["dev"], splits["test"]

    pool = unfiltered_pool_rows(cfg, ccfg.pool_unfiltered_size, seed)
    # every file a model trains on, every user turn, before anything is written (leakage_action: fail stops here)
    leakage = check_files(dev + test, {"train.jsonl": train, "train_multiturn.jsonl": splits["train_multiturn"],
                                       "pool_unfiltered.jsonl": pool}, ccfg.leakage_ngram, ccfg.leakage_jaccard)
    enforce(leakage, ccfg.leakage_action, "curation")
    table = table1({"train": train, "dev": dev, "test": test}, ccfg.table1_tokenizer)

    counts = {"train": len(train), "dev": len(dev), "test": len(test),
              "train_multiturn": len(splits["train_multiturn"]), "pool_unfiltered": len(pool),
              "by_source": {f"{split}/{src}": int(n) for split, src, n in
                            table[["split", "source", "count"]].itertuples(index=False) if n}}
    report = {"profile": cfg.get("profile"), "seed": seed, "selector": ccfg.selector,
              "synthetic": bool((cfg.get("data") or {}).get("synthetic", False)),
              "parameters": dataclasses.asdict(ccfg), "filters": filters,
              "unknown_sites": sorted(grouper.unknown_sites),
              "site_probabilities": site_probabilities(filters, ccfg.temperature, ccfg.site_size_from),
              "selection": splits["info"], "shortfalls": splits["info"]["shortfalls"], "counts": counts,
              "leakage_hits": leakage["hits"], "leakage_action": ccfg.leakage_action,
              "site_groups_note": "project's own site mapping (lima/resources/se_site_groups.csv); the paper's "
                                  "75/99/5 list is unpublished"}

    inputs = [interim_path(cfg, s) for s in INTERIM_FILES if interim_path(cfg, s).exists()]
    config = {"curation": dataclasses.asdict(ccfg), "seed": seed, "profile": cfg.get("profile")}
    paths = {name: processed / name for name in ("train.jsonl", "dev.jsonl", "test.jsonl", "train_multiturn.jsonl",
                                                 "pool_unfiltered.jsonl", "table1.csv", "table1.md",
                                                 "curation_report.json", "leakage_report.json")}
    for name, rows in (("train.jsonl", train), ("dev.jsonl", dev), ("test.jsonl", test),
                       ("train_multiturn.jsonl", splits["train_multiturn"]), ("pool_unfiltered.jsonl", pool)):
        write_jsonl(paths[name], rows, config=config, inputs=inputs)
    with atomic_write(paths["table1.csv"]) as handle:
        table.to_csv(handle, index=False)
    write_manifest(paths["table1.csv"], config=config, inputs=[paths["train.jsonl"]])
    label = f"Table 1 (profile {cfg.get('profile')}{', SYNTHETIC data' if report['synthetic'] else ''})"
    with atomic_write(paths["table1.md"]) as handle:
        handle.write(to_markdown(table, f"## {label}"))
    write_json(paths["curation_report.json"], report, config=config, inputs=inputs)
    write_json(paths["leakage_report.json"], leakage, config=config,
               inputs=[paths[n] for n in ("train.jsonl", "train_multiturn.jsonl", "pool_unfiltered.jsonl",
                                          "dev.jsonl", "test.jsonl")])
    log.info("curation: %s", counts)
    return {"counts": counts, "report": report, "leakage": leakage, "table1": table,
            "paths": {k: str(v) for k, v in paths.items()}}


__all__ = ["LeakageError", "run_curation", "site_probabilities"]

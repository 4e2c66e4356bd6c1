"""Candidate pools for the ablations (§5) and the unfiltered pool beside the splits.

`make_pool(cfg, kind, n, seed)` returns n rows in the train.jsonl format:
- `se_filtered`: Stack Exchange after every filter, sites drawn with temperature τ (both STEM and Other);
- `se_unfiltered`: Stack Exchange rows with an answer, no quality filter (Markdown conversion only), sites
  drawn with the same τ, so the ablation isolates quality rather than site mix;
- `wikihow`: category-then-article.
Raw rows are held in per-site seeded reservoirs, so memory is bounded by sites × n even on the full dumps.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from lima.curation import INTERIM_FILES, curation_config, interim_path
from lima.curation.filters import SECandidate, filter_stackexchange, se_meta
from lima.curation.leakage import guard_pool
from lima.curation.markdown import html_to_markdown, language_from_tags
from lima.curation.sampling import ShortfallError, category_then_article, rng_for, temperature_sample
from lima.curation.sites import SiteGrouper
from lima.curation.splits import se_row, sni_row, wikihow_row, writingprompts_row
from lima.io import InputError, iter_jsonl

POOL_KINDS = ("se_filtered", "se_unfiltered", "wikihow")


def _reservoir(stream: Iterable[Any], k: int | None, rng: random.Random) -> list[Any]:
    """Uniform sample of k items from a stream of unknown length (Algorithm R); k None keeps everything."""
    out: list[Any] = []
    for i, item in enumerate(stream):
        if k is None or len(out) < k:
            out.append(item)
        else:
            j = rng.randrange(i + 1)
            if j < k:
                out[j] = item
    return out


def _unfiltered_candidate(row: Mapping[str, Any], group: str) -> SECandidate:
    tags = list(row.get("tags") or [])
    site = str(row.get("site"))
    return SECandidate(id=str(row.get("id") or f"se:{site}:{row.get('question_id')}"), site=site, group=group,
                       question_score=int(row.get("question_score") or 0),
                       answer_score=int(row.get("answer_score") or 0), title=str(row.get("title") or ""),
                       question_html=str(row.get("question_html") or ""),
                       answer_markdown=html_to_markdown(str(row["answer_html"]), language_from_tags(tags)),
                       tags=tags, meta={**se_meta(row, group), "unfiltered": True})


def unfiltered_se(cfg: dict[str, Any], per_site: int | None, seed: int) -> tuple[dict[str, list[SECandidate]],
                                                                                    dict[str, int]]:
    """Per site: a seeded uniform sample of `per_site` answered, non-discarded rows; and each site's size."""
    ccfg = curation_config(cfg)
    grouper = SiteGrouper(ccfg.site_groups, ccfg.unknown_site_group)
    path = interim_path(cfg, "stackexchange")
    raw: dict[str, list[dict[str, Any]]] = {}
    sizes: dict[str, int] = {}
    seen: dict[str, int] = {}
    rng = rng_for(seed, "unfiltered")
    for row in iter_jsonl(path):
        site = str(row.get("site") or "unknown")
        sizes[site] = sizes.get(site, 0) + 1
        if grouper.group(site) == "discarded" or not row.get("answer_html"):
            continue
        bucket = raw.setdefault(site, [])
        i = seen[site] = seen.get(site, 0) + 1
        if per_site is None or len(bucket) < per_site:
            bucket.append(row)
        elif (j := rng.randrange(i)) < per_site:
            bucket[j] = row
    out = {site: sorted((_unfiltered_candidate(r, grouper.group(site)) for r in rows),
                        key=lambda c: c.rank_key, reverse=True) for site, rows in sorted(raw.items())}
    return out, sizes


def make_pool(cfg: dict[str, Any], kind: str, n: int, seed: int) -> list[dict[str, Any]]:
    """n rows of one ablation condition; raises ShortfallError naming the pool when fewer candidates exist.

    The pool is checked for dev/test leakage before it is returned (`lima.curation.leakage.guard_pool`)."""
    rows = _draw_pool(cfg, kind, n, seed)
    guard_pool(cfg, rows, f"{kind}-n{n}-seed{seed}")
    return rows


def _draw_pool(cfg: dict[str, Any], kind: str, n: int, seed: int) -> list[dict[str, Any]]:
    ccfg = curation_config(cfg)
    if kind not in POOL_KINDS:
        raise ValueError(f"pool kind must be one of {POOL_KINDS}, got {kind!r}")
    rng = rng_for(seed, "pool", kind)
    if kind == "wikihow":
        rows = list(iter_jsonl(interim_path(cfg, "wikihow")))
        by_cat: dict[str, list[dict[str, Any]]] = {}
        for r in sorted(rows, key=lambda r: str(r["id"])):
            by_cat.setdefault(str(r.get("category") or "uncategorised"), []).append(r)
        return [wikihow_row(r) for r in category_then_article(by_cat, n, rng, source="wikihow pool")]
    if kind == "se_filtered":
        grouper = SiteGrouper(ccfg.site_groups, ccfg.unknown_site_group)
        groups, report = filter_stackexchange(iter_jsonl(interim_path(cfg, "stackexchange")), ccfg, grouper,
                                              seed=seed)
        pools = {site: cands for by_site in groups.values() for site, cands in by_site.items()}
        sizes = {s: e["candidates"] if ccfg.site_size_from == "interim" else e["kept"] for s, e in report.sites.items()}
    else:
        pools, sizes = unfiltered_se(cfg, n, seed)
    drawn = temperature_sample(pools, n, ccfg.temperature, rng, sizes={k: float(v) for k, v in sizes.items()},
                               source=f"{kind} pool")
    return [se_row(cand, ccfg.prompt_from, seed) for _, cand in drawn]


def unfiltered_pool_rows(cfg: dict[str, Any], size: int | None, seed: int) -> list[dict[str, Any]]:
    """The larger unfiltered pool (an "Alpaca-style" baseline's training data in smoke): every answered
    Stack Exchange row, every wikiHow article, every WritingPrompts pair (accepted or not) and every SNI
    instance; a seeded uniform sample of `size` of them when a size is set."""
    ccfg = curation_config(cfg)
    grouper = SiteGrouper(ccfg.site_groups, ccfg.unknown_site_group)

    def stream() -> Iterable[tuple[str, dict[str, Any]]]:
        for source in ("stackexchange", "wikihow", "writingprompts", "sni"):
            path = interim_path(cfg, source)
            if not path.exists():
                continue
            for row in iter_jsonl(path):
                if source == "stackexchange" and (grouper.group(str(row.get("site"))) == "discarded"
                                                  or not row.get("answer_html")):
                    continue
                if source == "writingprompts" and not row.get("story"):
                    continue
                yield source, row

    picked = _reservoir(stream(), size, rng_for(seed, "pool_unfiltered"))
    out = []
    for source, row in picked:
        if source == "stackexchange":
            out.append(se_row(_unfiltered_candidate(row, grouper.group(str(row.get("site")))), ccfg.prompt_from, seed))
        elif source == "wikihow":
            out.append(wikihow_row(row))
        elif source == "writingprompts":
            out.append(writingprompts_row(row))
        else:
            out.append(sni_row(row))
    return out


__all__ = ["POOL_KINDS", "make_pool", "unfiltered_pool_rows", "ShortfallError", "InputError", "INTERIM_FILES"]

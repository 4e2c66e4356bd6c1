"""Stack Exchange site groups: which exchanges count as STEM, Other, or are left out.

The paper splits 179 exchanges into 75 STEM, 99 Other and 5 dropped "niche" ones, but never published the list.
`lima/resources/se_site_groups.csv` is this project's own mapping (columns `site,group,topic`), written by hand
with one rule: a site is `stem` when its questions are about science, technology, engineering, mathematics or
software/hardware (programming, sysadmin, maths, physics, electronics, product-specific developer sites, ...);
`other` for languages, culture, hobbies, lifestyle, religion, games and the humanities; `discarded` for sites
whose answers are not in English (ru/es/pt/ja Stack Overflow, rus.SE), `meta.*` sites, and stackapps. The counts
therefore differ from the paper's 75/99/5 and the notebook says so.

Sites the file does not list get `unknown_site_group` (default `other`, with a warning naming them), so a
newer dump with a site we never saw is still used rather than silently dropped; set it to `discarded` or
`error` to be strict.
"""

from __future__ import annotations

import csv
import logging
from functools import lru_cache
from pathlib import Path

from lima.config import resolve

log = logging.getLogger(__name__)

GROUPS = ("stem", "other", "discarded")
DEFAULT_SITE_GROUPS = "lima/resources/se_site_groups.csv"


def normalise_site(site: str) -> str:
    """Map the many spellings of a site (`math`, `math.stackexchange.com`, `https://math.stackexchange.com/`,
    `math.stackexchange.com.7z`, `stackoverflow.com-Posts.7z`) to the host name used in the CSV."""
    s = site.strip().lower()
    for prefix in ("https://", "http://", "www."):
        if s.startswith(prefix):
            s = s[len(prefix):]
    s = s.split("/", 1)[0]
    for suffix in (".7z", "-posts"):
        if s.endswith(suffix):
            s = s[: -len(suffix)]
    if "." not in s:
        known = {"stackoverflow": "stackoverflow.com", "superuser": "superuser.com", "serverfault": "serverfault.com",
                 "askubuntu": "askubuntu.com", "mathoverflow": "mathoverflow.net", "stackapps": "stackapps.com"}
        s = known.get(s, f"{s}.stackexchange.com")
    return s


@lru_cache(maxsize=8)
def _read_groups(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"site", "group"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        for lineno, row in enumerate(reader, start=2):
            group = (row["group"] or "").strip()
            if group not in GROUPS:
                raise ValueError(f"{path}:{lineno}: group {group!r} is not one of {GROUPS}")
            out[normalise_site(row["site"])] = group
    return out


def load_site_groups(path: str | Path | None = None) -> dict[str, str]:
    return dict(_read_groups(str(resolve(path or DEFAULT_SITE_GROUPS))))


class SiteGrouper:
    """Look sites up in the mapping; remember unknown ones so the report can list them."""

    def __init__(self, path: str | Path | None = None, unknown: str = "other") -> None:
        if unknown not in {"stem", "other", "discarded", "error"}:
            raise ValueError(f"unknown_site_group must be stem|other|discarded|error, got {unknown!r}")
        self.groups = load_site_groups(path)
        self.unknown_policy = unknown
        self.unknown_sites: set[str] = set()

    def group(self, site: str) -> str:
        host = normalise_site(site)
        if host.startswith("meta.") or ".meta." in host:
            return "discarded"
        if host in self.groups:
            return self.groups[host]
        if self.unknown_policy == "error":
            raise ValueError(f"Stack Exchange site {site!r} is not in the site-group mapping; add it to "
                             f"{DEFAULT_SITE_GROUPS} or set curation.unknown_site_group")
        if host not in self.unknown_sites:
            log.warning("site %r is not in the site-group mapping: treated as %r", site, self.unknown_policy)
            self.unknown_sites.add(host)
        return self.unknown_policy

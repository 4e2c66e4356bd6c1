"""Model outputs shown as Markdown without ever letting their HTML or script run.

Two independent layers, because a model output is untrusted input written by whoever wrote the prompt:
1. markdown-it-py with `html` disabled, so raw `<script>`/`<img onerror>` in an output becomes visible text;
2. nh3 (the Rust `ammonia` sanitiser) on the produced HTML with an allow-list of tags and attributes and only
   http/https/mailto links, in case a Markdown construct ever yields something dangerous.
A strict Content-Security-Policy (no inline script, no foreign origins) is the third layer, set by the app.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "code": {"class"}}
URL_SCHEMES = {"http", "https", "mailto"}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"])


def render_markdown(text: str) -> Markup:
    """Untrusted Markdown → sanitised HTML, marked safe for Jinja only after both layers ran."""
    html = _md.render(text or "")
    clean = nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
                      link_rel="noopener noreferrer nofollow", strip_comments=True)
    return Markup(clean)

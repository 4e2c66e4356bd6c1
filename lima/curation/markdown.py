"""Stack Exchange HTML → the Markdown the assistant should learn to write.

The paper strips links, images and other HTML but keeps code blocks and lists. We use markdownify and override
three things: anchors become their text (a bare URL as anchor text is dropped, since the model should not learn
to cite links it cannot check), images vanish, and fenced code blocks carry a language. The language comes
from, in order: the `lang-xx` / `language-xx` class on `<pre>`/`<code>` (what the site's prettifier writes), a
preceding `<!-- language: lang-xx -->` or `<!-- language-all: ... -->` comment (older posts), or a hint the
caller derives from the question's tags. MathJax (`$...$`, `$$...$$`) is plain text in the HTML; escaping of
`_` and `*` is turned off so formulas survive unchanged.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Comment
from markdownify import MarkdownConverter

_ALIASES = {"py": "python", "python3": "python", "js": "javascript", "ts": "typescript", "sh": "bash",
            "shell": "bash", "cs": "csharp", "c#": "csharp", "c++": "cpp", "objective-c": "objectivec",
            "rb": "ruby", "hs": "haskell", "tex": "latex", "mysql": "sql", "postgresql": "sql", "html5": "html"}
_NO_LANGUAGE = {"none", "default", "prettyprint", "prettyprint-override", "lang-none", "lang-default", "auto"}
# Question tags that name a language, for code blocks the author did not annotate.
TAG_LANGUAGES = {"python", "javascript", "java", "c", "c++", "c#", "ruby", "php", "go", "rust", "r", "bash",
                 "sql", "haskell", "scala", "kotlin", "swift", "typescript", "perl", "lua", "matlab", "julia",
                 "latex", "html", "css", "powershell", "ocaml", "fortran", "mathematica", "sh", "shell"}
_LANG_COMMENT = re.compile(r"language(?:-all)?:\s*(?:lang-)?([\w#+.-]+)")


def _language_from_class(classes: list[str]) -> str | None:
    for cls in classes:
        for prefix in ("lang-", "language-"):
            if cls.startswith(prefix):
                lang = cls[len(prefix):].lower()
                if lang and f"lang-{lang}" not in _NO_LANGUAGE and lang not in _NO_LANGUAGE:
                    return _ALIASES.get(lang, lang)
    return None


def language_from_tags(tags: list[str] | None) -> str | None:
    """A tag hint only when exactly one tag names a language (ambiguity → no label rather than a wrong one)."""
    langs = {_ALIASES.get(t.lower(), t.lower()) for t in tags or [] if t.lower() in TAG_LANGUAGES}
    return langs.pop() if len(langs) == 1 else None


class _LimaConverter(MarkdownConverter):
    def convert_a(self, el, text, parent_tags):  # noqa: ANN001 - markdownify's signature
        stripped = (text or "").strip()
        if re.match(r"^(https?://|www\.)\S+$", stripped):
            return ""
        return text

    def convert_img(self, el, text, parent_tags):  # noqa: ANN001
        return ""


def _code_language(default: str | None):  # noqa: ANN202
    def callback(el) -> str:  # noqa: ANN001
        classes = list(el.get("class") or [])
        code = el.find("code")
        if code is not None:
            classes += list(code.get("class") or [])
        lang = _language_from_class(classes)
        if lang is None and el.get("data-lima-lang"):
            lang = el["data-lima-lang"]
        return lang or default or ""

    return callback


def html_to_markdown(html: str, default_language: str | None = None) -> str:
    """Convert one post body; `default_language` (e.g. from `language_from_tags`) labels unannotated code."""
    if not html:
        return ""
    soup = BeautifulSoup(html, "html.parser")
    # Older posts set the language with an HTML comment before the block (or once, for all blocks).
    all_lang: str | None = None
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        match = _LANG_COMMENT.search(comment)
        if match:
            lang = match.group(1).lower()
            lang = None if lang in _NO_LANGUAGE else _ALIASES.get(lang, lang)
            if "language-all" in comment:
                all_lang = lang
            else:
                pre = comment.find_next("pre")
                if pre is not None and lang:
                    pre["data-lima-lang"] = lang
        comment.extract()
    converter = _LimaConverter(heading_style="atx", bullets="-", escape_underscores=False,
                               escape_asterisks=False, escape_misc=False,
                               code_language_callback=_code_language(all_lang or default_language))
    text = converter.convert_soup(soup)
    # Tidy prose only: removed links/images leave double spaces, but code blocks keep their whitespace.
    parts = re.split(r"(```.*?```)", text, flags=re.S)
    for i in range(0, len(parts), 2):
        part = re.sub(r"(?<=\S)[ \t]{2,}(?=\S)", " ", parts[i])
        part = re.sub(r"[ \t]+\n", "\n", part)
        parts[i] = re.sub(r"\n{3,}", "\n\n", part)
    return "".join(parts).strip()

"""Stack Exchange HTML → the Markdown the assistant should learn to write.

The paper strips links, images and other HTML but keeps code blocks and lists. We use markdownify and override
a few things: anchors become their text (a bare URL as anchor text is dropped, since the model should not learn
to cite links it cannot check), images vanish, and fenced code blocks carry a language. The language comes
from, in order: the `lang-xx` / `language-xx` class on `<pre>`/`<code>` (what the site's prettifier writes), a
preceding `<!-- language: lang-xx -->` or `<!-- language-all: ... -->` comment (older posts), or a hint the
caller derives from the question's tags. MathJax (`$...$`, `$$...$$`) is plain text in the HTML; escaping of
`_` and `*` is turned off so formulas survive unchanged. Strikethrough (`<del>`, `<s>`, `<strike>`) becomes
`~~…~~`, `<br>` a hard line break (`\\` at the line end), inline code keeps its inner spacing, and a code block
that itself contains ``` gets a longer fence.
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


_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,})[^`\n]*$")
_INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.S)


def split_code(markdown: str) -> list[tuple[str, bool]]:
    """Cut Markdown into (text, is_code) pieces: fenced blocks (closed by a fence at least as long as the
    opening one, so code that itself holds ``` stays whole) and inline code spans (any backtick-run length).
    Prose tidying and the prose-only filters work on the other pieces."""
    pieces: list[tuple[str, bool]] = []
    prose: list[str] = []
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        close = None
        if m:
            fence = re.compile(rf"^[ \t]*`{{{len(m[1])},}}[ \t]*$")
            close = next((j for j in range(i + 1, len(lines)) if fence.match(lines[j])), None)
        if close is None:
            prose.append(lines[i])
            i += 1
            continue
        pieces += _split_inline("\n".join(prose) + "\n" if prose else "")
        prose = []
        pieces.append(("\n".join(lines[i:close + 1]) + ("\n" if close + 1 < len(lines) else ""), True))
        i = close + 1
    if prose:
        pieces += _split_inline("\n".join(prose))
    return [(text, code) for text, code in pieces if text]


def _split_inline(text: str) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    last = 0
    for m in _INLINE_CODE.finditer(text):
        out += [(text[last:m.start()], False), (m[0], True)]
        last = m.end()
    return [*out, (text[last:], False)]


class _LimaConverter(MarkdownConverter):
    def convert_a(self, el, text, parent_tags):  # noqa: ANN001 - markdownify's signature
        stripped = (text or "").strip()
        if re.match(r"^(https?://|www\.)\S+$", stripped):
            return ""
        return text

    def convert_img(self, el, text, parent_tags):  # noqa: ANN001
        return ""

    convert_strike = MarkdownConverter.convert_del   # markdownify knows <del> and <s>, not the older <strike>

    def process_text(self, el, parent_tags=None):  # noqa: ANN001
        """Inline code keeps its spaces (`x  =  1`, ` a b `); markdownify would collapse them like prose.
        A newline inside a span becomes a space, which is what it renders as."""
        if parent_tags and "code" in parent_tags and "pre" not in parent_tags:
            return str(el).replace("\r\n", "\n").replace("\n", " ")
        return super().process_text(el, parent_tags)

    def convert_pre(self, el, text, parent_tags):  # noqa: ANN001
        """A fence longer than any backtick run inside, so code that holds ``` (Markdown examples, shell
        heredocs) does not close its own block."""
        out = super().convert_pre(el, text, parent_tags)
        longest = max((len(r) for r in re.findall(r"`+", text or "")), default=0)
        if longest < 3 or not out:
            return out
        fence = "`" * (longest + 1)
        head, _, rest = out.partition("```")
        body, _, tail = rest.rpartition("```")
        return f"{head}{fence}{body}{fence}{tail}"


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
                               escape_asterisks=False, escape_misc=False, newline_style="backslash",
                               code_language_callback=_code_language(all_lang or default_language))
    text = converter.convert_soup(soup)
    # Tidy prose only: removed links/images leave double spaces, but code (blocks and spans) keeps its
    # whitespace. <br> is a backslash line break, which survives the trailing-space trim.
    parts = []
    for piece, code in split_code(text):
        if not code:
            piece = re.sub(r"(?<=\S)[ \t]{2,}(?=\S)", " ", piece)
            piece = re.sub(r"[ \t]+\n", "\n", piece)
            piece = re.sub(r"\n{3,}", "\n\n", piece)
        parts.append(piece)
    return "".join(parts).strip()

"""HTML building blocks of the console: escaping, the page layout, phases, times and a tiny safe Markdown.

Everything a workflow carries (names, annotations, parameters, log lines, messages) is attacker-controlled: a
workflow is submitted by whoever holds the token, or by Alertmanager with an alert's text in it. So every value
goes through :func:`esc` — there is no "raw" path except the fixed markup written in this package — and the page
is served with a Content-Security-Policy that runs no inline script at all (defence in depth: an escaping bug
still cannot execute).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

__all__ = [
    "PHASE_ICONS",
    "RUNNING_PHASES",
    "duration_of",
    "esc",
    "field_list",
    "href",
    "json_text",
    "layout",
    "markdown_inline",
    "parse_time",
    "phase_badge",
    "segment",
    "shown_time",
    "table",
]

# A word and an icon for every phase: colour is never the only signal (the word is always printed)
PHASE_ICONS = {
    "Succeeded": "✔",
    "Failed": "✖",
    "Error": "⚠",
    "Running": "●",
    "Pending": "○",
    "Skipped": "↷",
    "Omitted": "↷",
    "Suspended": "❚❚",
}
RUNNING_PHASES = frozenset({"", "Pending", "Running"})


def esc(value: object) -> str:
    """Text as HTML text or a quoted attribute value (``&``, ``<``, ``>``, ``"`` and ``'`` escaped)."""
    return html.escape("" if value is None else str(value), quote=True)


def href(path: str, **query: str | int | None) -> str:
    """A site-local URL: each path segment already percent-quoted by the caller, query values encoded here."""
    pairs = {key: str(value) for key, value in query.items() if value not in (None, "")}
    return path + ("?" + urlencode(pairs) if pairs else "")


def segment(value: str) -> str:
    """One path segment, percent-quoted (a name never injects a ``/`` or a ``?``)."""
    return quote(value, safe="")


_CODE = re.compile(r"`([^`\n]{1,500})`")
_BOLD = re.compile(r"\*\*([^*\n]{1,500})\*\*")
_EM = re.compile(r"(?<![*\w])\*([^*\n]{1,500})\*(?![*\w])")
# [text](https://…): only http(s) targets; the URL is matched on the escaped text, so it holds no quote or bracket
_LINK = re.compile(r"\[([^\]\n]{1,300})\]\((https?://[^\s()<>\"']{1,1000})\)")


def markdown_inline(text: object, *, limit: int = 4000) -> str:
    """The Markdown subset Argo's UI renders in title/description annotations, made safe.

    The text is escaped *first*; only then are ``**bold**``, ``*emphasis*``, `` `code` ``, ``[text](http…)`` and
    line breaks turned into markup. Nothing the author wrote can become a tag or an attribute: a ``<script>`` or an
    ``onerror=`` stays visible text, and a ``javascript:`` link stays text (only http and https become links).
    """
    escaped = esc(str(text or "")[:limit])
    codes: list[str] = []

    def keep_code(match: re.Match[str]) -> str:
        codes.append(match.group(1))
        return f"\x00{len(codes) - 1}\x00"

    out = _CODE.sub(keep_code, escaped)
    out = _LINK.sub(r'<a href="\2" rel="noopener noreferrer nofollow" target="_blank">\1</a>', out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _EM.sub(r"<em>\1</em>", out)
    out = re.sub(r"\x00(\d+)\x00", lambda m: f"<code>{codes[int(m.group(1))]}</code>", out)
    return out.replace("\n", "<br>")


def parse_time(text: object) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def shown_time(text: object) -> str:
    """``2026-12-02 07:15:54Z`` in a ``<time>`` element (machine-readable datetime attribute)."""
    moment = parse_time(text)
    if moment is None:
        return '<span class="muted">—</span>'
    return f'<time datetime="{esc(text)}">{esc(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ"))}</time>'


def duration_of(started: object, finished: object, now: datetime | None = None) -> str:
    """``1h 2m``, ``3m 4s``, ``5s``; a run still going counts up to now; no start: an em dash."""
    begin = parse_time(started)
    if begin is None:
        return "—"
    end = parse_time(finished) or now or datetime.now(UTC)
    seconds = max(0, int((end - begin).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def phase_badge(phase: object) -> str:
    word = str(phase or "Pending")
    css = word.lower() if word in PHASE_ICONS else "unknown"
    icon = PHASE_ICONS.get(word, "?")
    return f'<span class="phase phase-{css}"><span aria-hidden="true">{icon}</span> {esc(word)}</span>'


def table(headers: list[str], rows: list[list[str]], *, empty: str = "none", caption: str = "") -> str:
    """A table of already-rendered cells (each cell is markup built with :func:`esc`)."""
    if not rows:
        return f'<p class="muted">{esc(empty)}</p>'
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_NAV = (("/workflows", "Workflows"), ("/workflow-templates", "Templates"), ("/cron-workflows", "Cron workflows"))


def layout(title: str, body: str, *, csrf: str = "", live: bool = False, active: str = "", model: str = "") -> str:
    """The whole page: navigation, a skip link, the body; ``live`` makes console.js refresh the ``data-live`` parts."""
    links = [(path, label) for path, label in _NAV]
    if model:
        links.append((f"/models/{segment(model)}", f"Model {model}"))
    nav = "".join(
        f'<a href="{esc(path)}"{" aria-current=page" if path == active else ""}>{esc(label)}</a>'
        for path, label in links
    )
    logout = (
        f'<form method="post" action="/logout" class="logout"><input type="hidden" name="csrf" value="{esc(csrf)}">'
        '<button type="submit">Log out</button></form>'
        if csrf
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · driftloop</title>"
        '<link rel="stylesheet" href="/console/static/console.css"><script src="/console/static/console.js" defer>'
        "</script></head>"
        f'<body data-live="{"true" if live else "false"}"><a class="skip" href="#main">Skip to content</a>'
        f'<header><a class="brand" href="/workflows">driftloop</a><nav aria-label="main">{nav}</nav>{logout}</header>'
        f'<main id="main">{body}</main></body></html>'
    )


def field_list(pairs: list[tuple[str, str]]) -> str:
    """A ``<dl>`` of (label, already-rendered value)."""
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def json_text(value: Any, limit: int = 2000) -> str:
    """A value as escaped text (strings as they are, anything else as compact JSON), cut at ``limit``."""
    import json

    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return esc(text if len(text) <= limit else text[:limit] + "…")

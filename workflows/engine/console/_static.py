"""The console's only two static files, kept in the package: its stylesheet and its small live-refresh script.

Served from ``/console/static/`` (the CSP allows scripts and styles from the console's own origin only, never
inline). The script is progressive: without it every page still works, and a reload shows the latest state.
"""

from __future__ import annotations

from driftloop.errors import NotFoundError
from workflows.engine.console._page import Page

__all__ = ["asset"]

CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--run:#0969da;--idle:#6e7781;--fg:#1f2328;--bg:#fff;--line:#d0d7de}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:0}
header{display:flex;gap:1.5em;align-items:center;padding:.6em 1.2em;background:#24292f;color:#fff}
header a{color:#fff}
header nav{display:flex;gap:1em;flex:1}
header nav a[aria-current]{text-decoration:underline;font-weight:600}
.brand{font-weight:700}
main{padding:1em 1.2em;max-width:1600px}
a{color:#0550ae}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,pre:focus-visible,
svg a:focus-visible rect{outline:3px solid #fb8500;outline-offset:2px}
svg a:focus rect{stroke:#fb8500;stroke-width:3}
.skip{position:absolute;left:-999px}.skip:focus{left:1em;top:.5em;background:#fff;color:#000;padding:.3em;z-index:9}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border-bottom:1px solid var(--line);padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}
.muted{color:var(--idle)}
.phase{font-weight:600;white-space:nowrap}
.phase-succeeded{color:var(--ok)}.phase-failed,.phase-error{color:var(--bad)}
.phase-running{color:var(--run)}.phase-pending,.phase-skipped,.phase-omitted,.phase-unknown{color:var(--idle)}
.label{display:inline-block;background:#ddf4ff;border-radius:1em;padding:0 .6em;margin:.1em;font-size:12px}
.title{font-weight:600}.description{color:#57606a}
.filters{display:flex;gap:1em;flex-wrap:wrap;align-items:end;margin:.5em 0}
.filters label,.login label{display:flex;flex-direction:column;font-size:12px}
.actions{display:flex;gap:.5em;margin:.5em 0}
button{font:inherit;padding:.3em .9em;border:1px solid var(--line);border-radius:6px;background:#f6f8fa;cursor:pointer}
button:hover{background:#eaeef2}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}
dt{font-weight:600}dd{margin:0}
.graph-box{overflow:auto;border:1px solid var(--line);border-radius:6px;max-height:70vh}
svg.graph{display:block;font:12px system-ui,sans-serif}
svg.graph .edges path{fill:none;stroke:#8c959f;stroke-width:1.5}
svg.graph rect{fill:#fff;stroke:var(--idle);stroke-width:2}
svg.graph .phase-succeeded rect{stroke:var(--ok);fill:#dafbe1}
svg.graph .phase-failed rect,svg.graph .phase-error rect{stroke:var(--bad);fill:#ffebe9}
svg.graph .phase-running rect{stroke:var(--run);fill:#ddf4ff}
svg.graph .selected rect{stroke-width:4}
svg.graph text{fill:var(--fg)}svg.graph .detail{fill:#57606a;font-size:11px}
.panel{border:1px solid var(--line);border-radius:6px;padding:.5em 1em;margin:1em 0}
pre.logs{background:#0d1117;color:#e6edf3;padding:.8em;max-height:50vh;overflow:auto;white-space:pre-wrap}
.error{color:var(--bad);font-weight:600;white-space:pre-wrap}.hint{color:#57606a}
.pager{display:flex;gap:1em;margin:.5em 0}
.logout{margin:0}.logout button{background:transparent;color:#fff;border-color:#57606a}
.notice{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.4em .8em}
"""

# While <body data-live="true">: fetch this same URL every 2 s (the session cookie goes along), swap every element
# marked data-live by id, keep a log panel scrolled to its end if the reader was at its end; stop once the page
# says nothing is live any more (the run finished). No innerHTML from anywhere but this server's own page.
JS = """
"use strict";
(function () {
  var PERIOD = 2000;
  function atEnd(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 8; }
  function refresh() {
    fetch(window.location.href, {credentials: "same-origin", cache: "no-store",
                                 headers: {"X-Console-Refresh": "1"}})
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.text(); })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (old) {
          var replacement = fresh.getElementById(old.id);
          if (!replacement) { return; }
          var logs = old.querySelector("pre.logs"), follow = logs ? atEnd(logs) : false;
          var position = logs ? logs.scrollTop : 0;
          var focused = document.activeElement && old.contains(document.activeElement);
          if (focused) { return; }  // never pull the element a keyboard user is on from under them
          old.innerHTML = replacement.innerHTML;
          var newLogs = old.querySelector("pre.logs");
          if (newLogs) { newLogs.scrollTop = follow ? newLogs.scrollHeight : position; }  // reading up: stay
        });
        document.body.dataset.live = fresh.body.dataset.live;
        schedule();
      })
      .catch(function () { window.setTimeout(refresh, PERIOD * 2); });
  }
  function schedule() { if (document.body.dataset.live === "true") { window.setTimeout(refresh, PERIOD); } }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("pre.logs").forEach(function (el) { el.scrollTop = el.scrollHeight; });
    schedule();
  });
})();
"""

_ASSETS = {"console.css": (CSS, "text/css; charset=utf-8"), "console.js": (JS, "text/javascript; charset=utf-8")}


def asset(name: str) -> Page:
    """The :class:`~workflows.engine.console._page.Page` of a static file (404 for anything else)."""
    if name not in _ASSETS:
        raise NotFoundError(f"no static file {name[:80]!r}", hint="the console serves console.css and console.js")
    text, content_type = _ASSETS[name]
    return Page(200, text.encode(), content_type, [("Cache-Control", "max-age=300")])

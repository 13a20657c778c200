"""The console's login, cookie, CSRF and origin rules, and its escaping, over plain HTTP against the real engine.

Each attack the issue names is replayed: an unauthenticated page request, a wrong token, the token left in a URL,
a POST without its CSRF token, a cross-origin POST, an open redirect through the login, and workflow text that
tries to become markup.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests

from tests.console.conftest import NAMESPACE, TOKEN, Console, workflow
from workflows.engine.console._html import markdown_inline

XSS_TITLE = "**Retrain** <script>window.__xss=1</script>"
XSS_DESCRIPTION = '<img src=x onerror="window.__xss=2"> [docs](javascript:alert(1)) [ok](https://example.com/a?b=1&c=2)'


def _logged_in(console: Console) -> requests.Session:
    session = requests.Session()
    answer = session.get(f"{console.url}/workflows?token={TOKEN}", allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    return session


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def test_unauthenticated_pages_get_the_login_form_not_data(console: Console) -> None:
    name = console.submit(workflow("secret-run", [("a", "true", [])], console.shared,
                                   annotations={"workflows.argoproj.io/title": "confidential-title"}))  # fmt: skip
    for path in ("/workflows", f"/workflows/{NAMESPACE}/{name}", "/models/credit-risk", "/cron-workflows"):
        answer = requests.get(console.url + path, allow_redirects=False, timeout=10)
        assert answer.status_code == 401, path
        assert "Log in" in answer.text and "confidential-title" not in answer.text, path
    wrong = requests.get(f"{console.url}/workflows?token=not-it", allow_redirects=False, timeout=10)
    assert wrong.status_code == 401 and "not this engine" in wrong.text and "Set-Cookie" not in wrong.headers
    assert "not-it" not in wrong.text  # a presented token is never echoed back


def test_token_login_sets_a_strict_httponly_cookie_and_drops_the_token_from_the_url(console: Console) -> None:
    answer = requests.get(f"{console.url}/workflows?phase=Running&token={TOKEN}", allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/workflows?phase=Running"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    page = requests.get(console.url + "/workflows", headers={"Cookie": cookie.split(";")[0]}, timeout=10)
    assert page.status_code == 200 and TOKEN not in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    # the cookie is the console's only: the API still wants its bearer token
    api = requests.get(f"{console.url}/api/v1/workflows/{NAMESPACE}", headers={"Cookie": cookie.split(";")[0]},
                       timeout=10)  # fmt: skip
    assert api.status_code == 401
    # a client that sends the token itself (curl, a script) reads pages as the API would let it
    bearer = requests.get(console.url + "/workflows", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert bearer.status_code == 200
    wrong = requests.get(console.url + "/workflows", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401


def test_login_form_and_no_open_redirect(console: Console) -> None:
    session = requests.Session()
    form = session.get(console.url + "/login?next=/cron-workflows", timeout=10)
    assert form.status_code == 200 and 'type="password"' in form.text
    answer = session.post(console.url + "/login", data={"token": TOKEN, "next": "//evil.example/x"},
                          allow_redirects=False, timeout=10)  # fmt: skip
    assert answer.status_code == 303 and answer.headers["Location"] == "/workflows"
    assert session.get(console.url + "/cron-workflows", timeout=10).status_code == 200


def test_post_without_csrf_is_403_naming_it_and_cross_origin_posts_are_refused(console: Console) -> None:
    name = console.submit(workflow("csrf-target", [("a", "true", [])], console.shared))
    console.wait_phase(name, "Succeeded")
    session = _logged_in(console)
    csrf = _csrf(session.get(f"{console.url}/workflows/{NAMESPACE}/{name}", timeout=10).text)
    action = f"{console.url}/workflows/{NAMESPACE}/{name}/resubmit"
    missing = session.post(action, data={}, allow_redirects=False, timeout=10)
    assert missing.status_code == 403 and "CSRF token missing" in missing.text
    forged = session.post(action, data={"csrf": "x" * 43}, allow_redirects=False, timeout=10)
    assert forged.status_code == 403
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        cross = session.post(action, data={"csrf": csrf}, headers=headers, allow_redirects=False, timeout=10)
        assert cross.status_code == 403 and "cross" in cross.text, headers
    before = len(console.server.store.list("Workflow", NAMESPACE, nodes=False))
    done = session.post(action, data={"csrf": csrf}, headers={"Origin": console.url}, allow_redirects=False,
                        timeout=10)  # fmt: skip
    assert done.status_code == 303 and done.headers["Location"] != f"/workflows/{NAMESPACE}/{name}"
    assert len(console.server.store.list("Workflow", NAMESPACE, nodes=False)) == before + 1


def test_workflow_text_is_escaped_everywhere(console: Console) -> None:
    body = workflow("xss-run", [("a", "echo '<script>window.__xss=3</script>'", [])], console.shared,
                    annotations={"workflows.argoproj.io/title": XSS_TITLE,
                                 "workflows.argoproj.io/description": XSS_DESCRIPTION})  # fmt: skip
    body["spec"]["arguments"] = {"parameters": [{"name": "p", "value": "<svg onload=alert(1)>"}]}
    name = console.submit(body)
    console.wait_phase(name, "Succeeded")
    session = _logged_in(console)
    pages = [session.get(f"{console.url}/workflows", timeout=10).text]
    page = session.get(f"{console.url}/workflows/{NAMESPACE}/{name}", timeout=10).text
    pod = re.search(r'data-node="([^"]+)" data-phase="Succeeded"><title>a ', page)
    assert pod
    pages.append(
        session.get(f"{console.url}/workflows/{NAMESPACE}/{name}", params={"node": pod.group(1)}, timeout=10).text
    )
    for html in pages:
        assert "<script>window" not in html and "<img" not in html and "<svg onload" not in html
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
        assert "<strong>Retrain</strong>" in html  # the safe subset still renders
        assert 'href="javascript:' not in html and 'href="https://example.com/a?b=1&amp;c=2"' in html
    assert "&lt;script&gt;window.__xss=3&lt;/script&gt;" in pages[-1]  # the log line, as text
    assert "&lt;svg onload=alert(1)&gt;" in pages[-1]


def test_markdown_subset_never_makes_attributes() -> None:
    assert (
        markdown_inline('[x](https://a.example/" onmouseover="y)')
        == "[x](https://a.example/&quot; onmouseover=&quot;y)"
    )
    assert markdown_inline("`<b>` **b** *e*") == "<code>&lt;b&gt;</code> <strong>b</strong> <em>e</em>"
    assert markdown_inline("a\nb") == "a<br>b"


def test_bad_input_is_a_4xx_that_names_it(console: Console) -> None:
    session = _logged_in(console)
    cases = {
        "/workflows?phase=Nope": (400, "is not a workflow phase"),
        "/workflows?label=%3D%3D%3D": (400, "selector"),
        "/workflows?page=0": (400, "not a page number"),
        f"/workflows/{NAMESPACE}/no-such-run": (404, "not found"),
        f"/workflows/{NAMESPACE}/Bad_Name": (400, "Bad_Name"),
        "/nowhere": (404, "no console page"),
        "/workflows/%ff": (400, "not UTF-8"),
        f"/workflows/{NAMESPACE}/x/artifacts/n/a": (404, "not found"),
    }
    for path, (status, words) in cases.items():
        answer = session.get(console.url + path, timeout=10)
        assert answer.status_code == status, (path, answer.status_code, answer.text[-400:])
        assert words in answer.text, (path, answer.text[-400:])
    assert session.get(console.url + "/", allow_redirects=False, timeout=10).headers["Location"] == "/workflows"
    # a link followed from another site: no cookie comes with it (SameSite=Strict), so the login page, not a 403
    linked = requests.get(console.url + "/workflows", headers={"Sec-Fetch-Site": "cross-site"}, timeout=10)
    assert linked.status_code == 401 and "Log in" in linked.text


def test_approval_gate_resume_and_exit_handler_outcome(console: Console) -> None:
    body = workflow("gated-run", [("build", "echo built", [])], console.shared)
    body["spec"]["templates"][0]["dag"]["tasks"].append(
        {"name": "approve", "template": "gate", "dependencies": ["build"]}
    )
    body["spec"]["templates"] += [{"name": "gate", "suspend": {}}, {"name": "notify", "container": {
        "image": "busybox", "command": ["sh", "-c"], "args": ["echo notified"]}}]  # fmt: skip
    body["spec"]["onExit"] = "notify"
    name = console.submit(body)
    session = _logged_in(console)
    page_url = f"{console.url}/workflows/{NAMESPACE}/{name}"
    deadline = time.monotonic() + 30
    while 'value="resume"' not in (page := session.get(page_url, timeout=10).text):
        assert time.monotonic() < deadline, "the suspend gate never showed a Resume button"
        time.sleep(0.1)
    assert 'value="stop"' in page and 'value="retry"' not in page and "not run yet" in page
    resumed = session.post(f"{page_url}/resume", data={"csrf": _csrf(page)}, allow_redirects=False, timeout=10)
    assert resumed.status_code == 303 and resumed.headers["Location"] == f"/workflows/{NAMESPACE}/{name}"
    console.wait_phase(name, "Succeeded")
    final = session.get(page_url, timeout=10).text
    assert re.search(r"<code>notify</code> · <a href=\"[^\"]+\"><span class=\"phase phase-succeeded\">", final)
    again = session.post(f"{page_url}/resume", data={"csrf": _csrf(final)}, allow_redirects=False, timeout=10)
    assert again.status_code == 400  # the controller's own refusal, as the API gives it


def test_filters_and_pages_over_many_runs(console: Console) -> None:
    store = console.server.store
    for index in range(60):  # finished runs written through the store, dated in the past (after every other run)
        store.create({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": f"old-{index:02d}", "namespace": "paged", "creationTimestamp": f"2020-01-01T00:{index:02d}:00Z",
                         "labels": {"driftloop.io/model": "m-even" if index % 2 == 0 else "m-odd"}},
            "spec": {"workflowTemplateRef": {"name": "nightly" if index < 10 else "training"}},
            "status": {"phase": "Failed" if index % 3 == 0 else "Succeeded", "progress": "1/1",
                       "startedAt": "2020-01-01T00:00:00Z", "finishedAt": "2020-01-01T00:00:07Z"},
        })  # fmt: skip
    session = _logged_in(console)
    first = session.get(f"{console.url}/workflows/paged", timeout=10).text
    names = re.findall(r'href="/workflows/paged/(old-\d\d)"', first)
    assert len(names) == 50 and names[0] == "old-59" and names[-1] == "old-10"  # newest first, 50 a page
    assert "60 workflow(s)" in first and 'rel="next" href="/workflows/paged?page=2"' in first and "7s" in first
    second = session.get(f"{console.url}/workflows/paged?page=2", timeout=10).text
    assert re.findall(r'href="/workflows/paged/(old-\d\d)"', second) == [f"old-{i:02d}" for i in range(9, -1, -1)]
    assert 'data-live="false"' in first  # nothing unfinished: no refresh
    failed = session.get(f"{console.url}/workflows/paged", params={"phase": "Failed"}, timeout=10).text
    assert len(re.findall(r'href="/workflows/paged/old-', failed)) == 20
    odd = session.get(f"{console.url}/workflows/paged", params={"label": "driftloop.io/model=m-odd",
                                                                "template": "nightly"}, timeout=10).text  # fmt: skip
    assert re.findall(r'href="/workflows/paged/(old-\d\d)"', odd) == ["old-09", "old-07", "old-05", "old-03", "old-01"]


def test_templates_and_cron_pages_are_read_only_lists_with_the_next_run(console: Console) -> None:
    api = console.api()
    template = {"metadata": {"name": "training", "annotations": {"workflows.argoproj.io/title": "Train <i>it</i>"}},
                "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "epochs", "value": "3"}]},
                         "templates": [{"name": "main", "suspend": {}}]}}  # fmt: skip
    cron = {"metadata": {"name": "nightly-retrain"},
            "spec": {"schedules": ["30 2 * * *"], "timezone": "Europe/Paris", "suspend": False,
                     "workflowSpec": {"entrypoint": "main", "templates": [{"name": "main", "suspend": {}}]}}}  # fmt: skip
    assert api.post(f"{console.url}/api/v1/workflow-templates/{NAMESPACE}", json={"template": template},
                    timeout=30).status_code == 200  # fmt: skip
    created = api.post(f"{console.url}/api/v1/cron-workflows/{NAMESPACE}", json={"cronWorkflow": cron}, timeout=30)
    assert created.status_code == 200, created.text
    session = _logged_in(console)
    templates = session.get(f"{console.url}/workflow-templates", timeout=10).text
    assert "training" in templates and "epochs=3" in templates and "Train &lt;i&gt;it&lt;/i&gt;" in templates
    crons = session.get(f"{console.url}/cron-workflows", timeout=10).text
    assert "<code>30 2 * * *</code>" in crons and "Europe/Paris" in crons and "active" in crons
    upcoming = re.search(r'<time datetime="(\d{4}-\d\d-\d\dT(\d\d):30:00Z)">', crons)
    assert upcoming and upcoming.group(2) in {"01", "00"}  # 02:30 in Paris is 01:30 UTC (00:30 in summer)
    assert "<form" not in crons.split("</header>")[1]  # read-only: no action on either page


def test_artifact_download(console: Console) -> None:
    import io
    import tarfile

    body = workflow("artifact-run", [("make", "echo 'model bytes' > /tmp/model.txt", [])], console.shared)
    body["spec"]["templates"][1]["outputs"] = {"artifacts": [{"name": "model", "path": "/tmp/model.txt"}]}
    name = console.submit(body)
    console.wait_phase(name, "Succeeded")
    session = _logged_in(console)
    page = session.get(f"{console.url}/workflows/{NAMESPACE}/{name}", timeout=10).text
    node = re.search(r'data-node="([^"]+)" data-phase="Succeeded"><title>make ', page)
    assert node
    panel = session.get(f"{console.url}/workflows/{NAMESPACE}/{name}", params={"node": node.group(1)}, timeout=10).text
    link = re.search(r'<a href="([^"]+/artifacts/[^"]+/model)" download>', panel)
    assert link
    download = session.get(console.url + link.group(1), timeout=10)
    assert download.status_code == 200 and 'filename="model.tgz"' in download.headers["Content-Disposition"]
    with tarfile.open(fileobj=io.BytesIO(download.content)) as tar:
        member = tar.getmembers()[0]
        assert tar.extractfile(member).read() == b"model bytes\n"  # type: ignore[union-attr]
    assert requests.get(console.url + link.group(1), timeout=10).status_code == 401  # not without a session


def test_drift_reports_are_listed_and_served_sandboxed(console: Console) -> None:
    reports = console.server.home / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "credit-risk-v3-20261202T070000Z.html").write_text("<html><script>document.title='ran'</script></html>")
    (reports / "credit-risk-v3-notastamp.html").write_text("not the monitor's")
    session = _logged_in(console)
    page = session.get(f"{console.url}/models/credit-risk", timeout=30).text
    assert 'href="/models/credit-risk/reports/credit-risk-v3-20261202T070000Z.html"' in page
    assert "2026-12-02 07:00:00Z (vs v3)" in page and "notastamp" not in page
    report = session.get(f"{console.url}/models/credit-risk/reports/credit-risk-v3-20261202T070000Z.html", timeout=10)
    assert report.status_code == 200 and "document.title" in report.text
    assert report.headers["Content-Security-Policy"].startswith("sandbox allow-scripts;")  # an opaque origin
    for name in ("credit-risk-v3-notastamp.html", "..%2F..%2Fengine%2Ftoken", "%2E%2E"):
        assert session.get(f"{console.url}/models/credit-risk/reports/{name}", timeout=10).status_code == 404, name
    # a request from inside the sandboxed report carries Origin: null, which the console refuses
    assert session.get(f"{console.url}/workflows", headers={"Origin": "null"}, timeout=10).status_code == 403


def test_auth_none_needs_no_login_but_still_checks_csrf_and_origin(tmp_path: Path) -> None:
    from tests._support import free_port
    from workflows.engine.server import EngineServer

    server = EngineServer(tmp_path, host="127.0.0.1", port=free_port(), namespace=NAMESPACE, token=None)
    server.start_background()
    try:
        page = requests.get(f"{server.url}/workflows", timeout=10)
        assert page.status_code == 200 and "Set-Cookie" not in page.headers
        refused = requests.post(f"{server.url}/workflows/{NAMESPACE}/x/retry", data={}, timeout=10)
        assert refused.status_code == 403 and "CSRF" in refused.text
        cross = requests.post(f"{server.url}/workflows/{NAMESPACE}/x/retry", data={"csrf": _csrf(page.text)},
                              headers={"Origin": "http://evil.example"}, timeout=10)  # fmt: skip
        assert cross.status_code == 403
        missing = requests.post(f"{server.url}/workflows/{NAMESPACE}/x/retry", data={"csrf": _csrf(page.text)},
                                timeout=10)  # fmt: skip
        assert missing.status_code == 404  # past the checks: the run does not exist
    finally:
        server.shutdown()

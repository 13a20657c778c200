"""The console in a real browser: Debian's chromium, driven by Selenium through chromedriver.

One browser and one engine for the module. The tests click through list → workflow → node → logs, watch a running
run's graph change phase without a reload, retry a failed run with its button, open a model page, and check that
workflow text meant as script (annotations, parameters, log lines) stays text. Screenshots go to a temporary folder
(``CONSOLE_SCREENSHOTS`` names another); docs/console.png was taken from one of them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import NAMESPACE, TOKEN, Console, workflow
from tests.console.test_http import XSS_DESCRIPTION, XSS_TITLE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no chromium/chromedriver on this machine: `make system` installs Debian's chromium and chromium-driver",
)

WAIT = 20  # seconds: the machine is shared and loaded


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path_factory.mktemp("console-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def logged_in(browser: Any, console: Console) -> Any:
    browser.get(f"{console.url}/workflows?token={TOKEN}")
    assert "token" not in browser.current_url  # redirected to the same page without it
    cookie = next(c for c in browser.get_cookies() if c["name"].startswith("driftloop_console_"))
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""  # no script can read the session
    return browser


def _wait(browser: Any, condition: Any) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    try:
        return WebDriverWait(browser, WAIT, poll_frequency=0.1, ignored_exceptions=ignored).until(condition)
    except TimeoutException:
        raise AssertionError(
            f"timed out on {browser.current_url}: {browser.find_element('tag name', 'main').text[:3000]}"
        ) from None


_PHASE_OF = """
var nodes = document.querySelectorAll('svg.graph a[data-node]');
for (var i = 0; i < nodes.length; i++) {
  if (nodes[i].querySelector('title').textContent.indexOf(arguments[0] + ' (') === 0) { return nodes[i].dataset.phase; }
}
return '';
"""


def _phase(browser: Any, label: str) -> str:
    """The phase the graph shows for node ``label`` ('' while it is not drawn), read in one script call."""
    return str(browser.execute_script(_PHASE_OF, label))


def _node(browser: Any, label: str) -> Any:
    from selenium.webdriver.common.by import By

    for element in browser.find_elements(By.CSS_SELECTOR, "svg.graph a[data-node]"):
        if element.find_element(By.TAG_NAME, "title").get_attribute("textContent").startswith(label + " ("):
            return element
    raise AssertionError(f"no node {label!r} in the graph")


def test_list_workflow_node_logs_by_clicking(logged_in: Any, console: Console, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    browser = logged_in
    body = workflow("clicked-run", [("prepare", "echo preparing; echo rows=1000", []),
                                    ("train", "echo epoch 1; echo epoch 2", ["prepare"]),
                                    ("evaluate", "echo auc=0.81", ["train"]), ("report", "echo done", ["prepare"])],
                    console.shared, labels={"driftloop.io/model": "credit-risk", "driftloop.io/trigger": "drift"},
                    annotations={"workflows.argoproj.io/title": "Retrain **credit-risk** after drift"})  # fmt: skip
    body["spec"]["arguments"] = {"parameters": [{"name": "epochs", "value": "2"}]}
    name = console.submit(body)
    console.wait_phase(name, "Succeeded")
    browser.get(console.url + "/workflows")
    row = browser.find_element(By.LINK_TEXT, name).find_element(By.XPATH, "./ancestor::tr")
    assert "Succeeded" in row.text and "5/5" not in row.text and "4/4" in row.text  # word, not colour only
    assert "model=credit-risk" in row.text and "trigger=drift" in row.text
    browser.find_element(By.LINK_TEXT, name).click()
    _wait(browser, lambda b: b.current_url.endswith(f"/workflows/{NAMESPACE}/{name}"))
    assert "epochs" in browser.find_element(By.TAG_NAME, "main").text
    _node(browser, "train").click()
    _wait(browser, lambda b: "node=" in b.current_url)
    panel = browser.find_element(By.ID, "node-panel")
    assert "Node train" in panel.text and "Exit code\n0" in panel.text
    assert browser.find_element(By.CSS_SELECTOR, "pre.logs").text == "epoch 1\nepoch 2"
    browser.set_window_size(1400, 1900)  # the whole page: summary, graph and the node's panel with its logs
    browser.save_screenshot(str(shots / "workflow.png"))
    browser.set_window_size(1400, 1000)
    # keyboard: a node is a focusable link with a visible focus ring
    browser.execute_script("document.activeElement.blur()")
    focused = browser.execute_script(
        "var a=document.querySelector('svg.graph a[data-node]'); a.focus(); return document.activeElement===a"
    )
    assert focused


def test_running_graph_changes_phase_and_logs_follow_without_a_reload(
    logged_in: Any, console: Console, shots: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser = logged_in
    gate = console.shared / "release-live"
    script = f"echo waiting for the gate; while [ ! -f /shared/{gate.name} ]; do sleep 0.1; done; echo released"
    name = console.submit(
        workflow("live-run", [("wait", script, []), ("after", "echo after", ["wait"])], console.shared)
    )
    console.wait_phase(name, "Running")
    browser.get(f"{console.url}/workflows/{NAMESPACE}/{name}")
    _wait(browser, lambda b: _phase(b, "wait") == "Running")
    _node(browser, "wait").click()  # the running node's panel: its logs follow
    _wait(browser, lambda b: "waiting for the gate" in b.find_element(By.CSS_SELECTOR, "pre.logs").text)
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "true"
    assert "following" in browser.find_element(By.ID, "node-panel").text
    browser.execute_script("window.__same_page = true")
    gate.touch()
    _wait(browser, lambda b: "released" in b.find_element(By.CSS_SELECTOR, "pre.logs").text)
    _wait(browser, lambda b: _phase(b, "after") == "Succeeded")
    assert _phase(browser, "wait") == "Succeeded"
    assert browser.execute_script("return window.__same_page") is True  # refreshed in place, not reloaded
    _wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "false")
    browser.save_screenshot(str(shots / "live.png"))


def test_retry_button_reruns_a_failed_run(logged_in: Any, console: Console) -> None:
    from selenium.webdriver.common.by import By

    browser = logged_in
    flag = console.shared / "retry-ok"
    name = console.submit(workflow("retried-run", [("flaky", f"test -f /shared/{flag.name}", [])], console.shared))
    console.wait_phase(name, "Failed")
    browser.get(f"{console.url}/workflows/{NAMESPACE}/{name}")
    assert "Failed" in browser.find_element(By.ID, "heading").text
    flag.touch()
    browser.find_element(By.CSS_SELECTOR, "button[value=retry]").click()
    _wait(browser, lambda b: "Succeeded" in b.find_element(By.ID, "heading").text)
    assert console.phase(name) == "Succeeded"


def test_model_page_says_what_is_not_available(logged_in: Any, console: Console) -> None:
    from selenium.webdriver.common.by import By

    browser = logged_in
    browser.get(f"{console.url}/workflows")
    browser.find_element(By.LINK_TEXT, "clicked-run").click()
    browser.find_element(By.LINK_TEXT, "credit-risk").click()  # the run's model link
    _wait(browser, lambda b: b.current_url.endswith("/models/credit-risk"))
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "Registry (MLflow): not available" in text and "unreachable" in text
    assert "Alias history (GitOps): not available" in text
    prometheus = browser.find_element(By.PARTIAL_LINK_TEXT, "127.0.0.1:9090")  # from DRIFTLOOP_PROMETHEUS_URL
    assert prometheus.get_attribute("href").startswith("http://127.0.0.1:9090/graph")


def test_script_in_workflow_text_stays_text(logged_in: Any, console: Console, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    browser = logged_in
    body = workflow("xss-browser", [("a", "echo '<img src=x onerror=window.__xss=4>'", [])], console.shared,
                    annotations={"workflows.argoproj.io/title": XSS_TITLE,
                                 "workflows.argoproj.io/description": XSS_DESCRIPTION})  # fmt: skip
    body["spec"]["arguments"] = {"parameters": [{"name": "p", "value": "<script>window.__xss=5</script>"}]}
    name = console.submit(body)
    console.wait_phase(name, "Succeeded")
    browser.get(console.url + "/workflows")
    assert "<script>window.__xss=1</script>" in browser.find_element(By.TAG_NAME, "main").text
    browser.get(f"{console.url}/workflows/{NAMESPACE}/{name}")
    _node(browser, "a").click()
    _wait(browser, lambda b: "node=" in b.current_url)
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "<script>window.__xss=5</script>" in main and "<img src=x onerror=window.__xss=4>" in main
    assert browser.execute_script("return window.__xss === undefined && document.images.length === 0")
    browser.save_screenshot(str(shots / "xss.png"))


def test_a_form_without_its_csrf_token_is_refused(logged_in: Any, console: Console) -> None:
    from selenium.webdriver.common.by import By

    browser = logged_in
    browser.get(f"{console.url}/workflows/{NAMESPACE}/clicked-run")
    before = len(console.server.store.list("Workflow", NAMESPACE, nodes=False))
    browser.execute_script("document.querySelectorAll('input[name=csrf]').forEach(function (e) { e.remove(); })")
    browser.find_element(By.CSS_SELECTOR, "button[value=resubmit]").click()
    _wait(browser, lambda b: "CSRF token missing" in b.find_element(By.TAG_NAME, "main").text)
    assert len(console.server.store.list("Workflow", NAMESPACE, nodes=False)) == before

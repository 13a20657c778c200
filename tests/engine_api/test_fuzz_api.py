"""Property-based fuzzing of the engine's API: random methods, paths, headers and bodies never get a 5xx.

Requests go through ``http.client`` (raw enough to send what Hera never would: wrong lengths, odd methods,
foreign headers, bytes that are not UTF-8) against the real ``engine serve`` of this module. Most carry the token,
so the fuzzing reaches the routes and the body parser rather than stopping at 401.
"""

from __future__ import annotations

import http.client
import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine_api.conftest import EngineProcess

_SEGMENT = st.one_of(
    st.sampled_from(["driftloop", "argo", "x", "..", "%2e%2e", "a%2Fb", "%ff", "UPPER", "a" * 300, "-x-", "t.1"]),
    st.text(alphabet=string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:@", min_size=1, max_size=20),
)
_ROOTS = st.sampled_from(
    [
        "/api/v1/workflows",
        "/api/v1/workflow-templates",
        "/api/v1/cluster-workflow-templates",
        "/api/v1/cron-workflows",
        "/api/v1/version",
        "/api/v1/info",
        "/api/v1/userinfo",
        "/api/v1",
        "",
    ]
)
_TAILS = st.sampled_from(["", "/lint", "/submit", "/log", "/stop", "/terminate", "/retry", "/resubmit", "/suspend"])
_QUERY = st.sampled_from(
    ["", "?fields=items.metadata.name", "?listOptions.limit=-1", "?grep=(", "?podName=..", "?logOptions.follow=x"]
)


@st.composite
def _paths(draw: st.DrawFn) -> str:
    segments = draw(st.lists(_SEGMENT, max_size=3))
    return draw(_ROOTS) + "".join("/" + s for s in segments) + draw(_TAILS) + draw(_QUERY) or "/"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
_BODY_OBJECTS = st.fixed_dictionaries(
    {},
    optional={
        "workflow": _JSON | st.fixed_dictionaries({}, optional={"metadata": _JSON, "spec": _JSON, "kind": _JSON}),
        "template": _JSON,
        "cronWorkflow": _JSON,
        "resourceKind": _JSON,
        "resourceName": _JSON,
        "serverDryRun": st.just(True),
        "parameters": _JSON,
        "nodeFieldSelector": _JSON,
        "submitOptions": _JSON,
    },
)
_BODIES = st.one_of(
    st.just(b""),
    st.binary(max_size=64),
    _JSON.map(lambda value: json.dumps(value).encode()),
    _BODY_OBJECTS.map(lambda value: json.dumps(value).encode()),
)
_HEADER_VALUE = st.text(alphabet=string.printable.strip("\r\n\x0b\x0c") + " ", max_size=40)


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO"]))
    headers: dict[str, str] = {}
    if draw(st.booleans()) or method in {"POST", "PUT"}:
        headers["Content-Type"] = draw(
            st.sampled_from(["application/json", "application/json; charset=utf-8"]) | _HEADER_VALUE
        )
    for name in ("Origin", "Host", "Transfer-Encoding", "X-Other"):
        if draw(st.integers(0, 5)) == 0:
            headers[name] = draw(_HEADER_VALUE)
    body = draw(_BODIES)
    if draw(st.integers(0, 4)) == 0:  # lengths that lie, but never promise bytes we do not send (that waits 60 s)
        lengths = ["abc", "-1", "", " ", "1e3", "0x10", str(len(body) // 2), "99999999999999", str(2**64)]
        headers["Content-Length"] = draw(st.sampled_from(lengths))
    return method, draw(_paths()), headers, body


def _send(engine: EngineProcess, method: str, path: str, headers: dict[str, str], body: bytes, token: bool) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", engine.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        if token:
            connection.putheader("Authorization", f"Bearer {engine.token}")
        for name, value in headers.items():
            connection.putheader(name, value)
        if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        response.read()
        return response.status
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        return 0  # we sent an inconsistent length and the server hung up: a refusal, not a crash (checked below)
    finally:
        connection.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=_requests(), token=st.integers(0, 9).map(lambda n: n != 0))
def test_random_requests_never_get_a_5xx(shared_engine: EngineProcess, request: tuple, token: bool) -> None:
    method, path, headers, body = request
    status = _send(shared_engine, method, path, headers, body, token)
    assert status < 500, (method, path, headers, body[:200], status)


def test_the_engine_is_healthy_after_the_fuzzing(shared_engine: EngineProcess) -> None:
    """Runs after the property (file order): it still answers, and nothing reached the 500 catch-all."""
    assert shared_engine.http.get(shared_engine.url + "/api/v1/version", timeout=10).status_code == 200
    log = shared_engine.log.read_text()
    assert "Traceback" not in log and '" 500 ' not in log, log[-3000:]

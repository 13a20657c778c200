"""Check an ``AlertmanagerConfig`` (prometheus-operator, monitoring.coreos.com/v1alpha1) without its CRD.

``../shared`` has no AlertmanagerConfig CRD, so the object is checked the way it is used: translated into the
Alertmanager configuration the operator would merge it into, then ``amtool check-config`` (Alertmanager's own
parser: durations, matchers, regexes, receivers every route names, inhibit rules) checks the result.

The translation is strict, like a CRD with ``additionalProperties: false``: a field it does not know is a finding,
not silently dropped, so nothing in the object escapes the check. It knows the fields a driftloop manifest uses
(route tree, webhook receivers with a bearer token from a Secret, inhibit rules) and their v1alpha1 spelling; a
manifest that needs another integration extends ``_FIELDS`` here first. As the operator does, the translation scopes
the object to its namespace: receiver names become ``<namespace>/<name>/<receiver>``, the first-level route and
both sides of each inhibit rule get a ``namespace="<namespace>"`` matcher, and the first-level route continues.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from driftloop.errors import LintIssue, MissingDependencyError

__all__ = ["API_VERSION", "KIND", "check_alertmanager_config", "to_alertmanager_config"]

API_VERSION = "monitoring.coreos.com/v1alpha1"
KIND = "AlertmanagerConfig"
SECRETS_DIR = "/etc/alertmanager/secrets"  # where the operator mounts the Secrets a config references

# object path pattern -> {field: type}; "route" recurses, "matchers" is a list of Matcher objects
_MATCHER = {"name": str, "value": str, "matchType": str, "regex": bool}
_SECRET_KEY = {"name": str, "key": str, "optional": bool}
_FIELDS: dict[str, dict[str, Any]] = {
    "spec": {"route": dict, "receivers": list, "inhibitRules": list},
    "route": {
        "receiver": str,
        "groupBy": list,
        "groupWait": str,
        "groupInterval": str,
        "repeatInterval": str,
        "matchers": list,
        "continue": bool,
        "routes": list,
    },
    "receiver": {"name": str, "webhookConfigs": list},
    "webhookConfig": {"url": str, "sendResolved": bool, "maxAlerts": int, "httpConfig": dict, "timeout": str},
    "httpConfig": {"authorization": dict, "followRedirects": bool, "enableHttp2": bool},
    "authorization": {"type": str, "credentials": dict},
    "credentials": _SECRET_KEY,
    "inhibitRule": {"sourceMatch": list, "targetMatch": list, "equal": list},
    "matcher": _MATCHER,
}
_MATCH_TYPES = {"=", "!=", "=~", "!~"}
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Translation:
    def __init__(self, label: str, namespace: str, name: str) -> None:
        self.label, self.namespace, self.name = label, namespace, name
        self.issues: list[LintIssue] = []

    def issue(self, path: str, message: str) -> None:
        self.issues.append(LintIssue(self.label, path, message, "alertmanagerconfig"))

    def fields(self, value: Any, kind: str, path: str) -> dict[str, Any]:
        """``value`` as an object of ``kind``: unknown fields and wrong types are findings; returns the good part."""
        if not isinstance(value, dict):
            self.issue(path, f"must be an object, not {type(value).__name__}")
            return {}
        allowed = _FIELDS[kind]
        unknown = sorted(str(key) for key in value if key not in allowed)
        if unknown:
            self.issue(path, f"unknown field(s) {', '.join(map(repr, unknown))} (known here: {', '.join(allowed)})")
        good = {}
        for key, expected in allowed.items():
            if key not in value:
                continue
            if not isinstance(value[key], expected) or (expected is int and isinstance(value[key], bool)):
                self.issue(f"{path}.{key}", f"must be {expected.__name__}, not {type(value[key]).__name__}")
                continue
            good[key] = value[key]
        return good

    def receiver_name(self, receiver: str) -> str:
        return f"{self.namespace}/{self.name}/{receiver}"

    def matcher(self, value: Any, path: str) -> str | None:
        matcher = self.fields(value, "matcher", path)
        if not matcher.get("name"):
            self.issue(f"{path}.name", "is required")
            return None
        match_type = matcher.get("matchType") or ("=~" if matcher.get("regex") else "=")
        if match_type not in _MATCH_TYPES:
            self.issue(f"{path}.matchType", f"{match_type!r} is not one of {', '.join(sorted(_MATCH_TYPES))}")
            return None
        escaped = str(matcher.get("value", "")).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{matcher["name"]}{match_type}"{escaped}"'

    def matchers(self, values: list[Any], path: str) -> list[str]:
        out = [self.matcher(value, f"{path}[{i}]") for i, value in enumerate(values)]
        return [m for m in out if m is not None]

    def route(self, value: Any, path: str, top: bool) -> dict[str, Any]:
        route = self.fields(value, "route", path)
        out: dict[str, Any] = {}
        if route.get("receiver"):
            out["receiver"] = self.receiver_name(route["receiver"])
        elif top:
            self.issue(f"{path}.receiver", "the first-level route must name a receiver")
        if "groupBy" in route:
            group_by = route["groupBy"]
            bad = [g for g in group_by if not isinstance(g, str) or (g != "..." and not _LABEL.match(g))]
            if bad or len(set(map(str, group_by))) != len(group_by):
                self.issue(f"{path}.groupBy", f"must be unique label names (or only '...'), got {group_by!r}")
            out["group_by"] = [str(g) for g in group_by]
        for key, target in (("groupWait", "group_wait"), ("groupInterval", "group_interval"),
                            ("repeatInterval", "repeat_interval")):  # fmt: skip
            if key in route:
                out[target] = route[key]
        matchers = self.matchers(route.get("matchers", []), f"{path}.matchers")
        if top:  # the operator's namespace scoping
            matchers = [m for m in matchers if not m.startswith(("namespace=", "namespace=~"))]
            matchers.append(f'namespace="{self.namespace}"')
            out["continue"] = True
        elif "continue" in route:
            out["continue"] = route["continue"]
        if matchers:
            out["matchers"] = matchers
        children = [self.route(child, f"{path}.routes[{i}]", False) for i, child in enumerate(route.get("routes", []))]
        if children:
            out["routes"] = children
        return out

    def webhook(self, value: Any, path: str) -> dict[str, Any]:
        config = self.fields(value, "webhookConfig", path)
        if not config.get("url"):
            self.issue(f"{path}.url", "is required")
        out: dict[str, Any] = {"url": config.get("url", "")}
        if "sendResolved" in config:
            out["send_resolved"] = config["sendResolved"]
        if "maxAlerts" in config:
            out["max_alerts"] = config["maxAlerts"]
        if "timeout" in config:
            out["timeout"] = config["timeout"]
        http = self.fields(config.get("httpConfig", {}), "httpConfig", f"{path}.httpConfig")
        http_out: dict[str, Any] = {}
        for key, target in (("followRedirects", "follow_redirects"), ("enableHttp2", "enable_http2")):
            if key in http:
                http_out[target] = http[key]
        if "authorization" in http:
            where = f"{path}.httpConfig.authorization"
            auth = self.fields(http["authorization"], "authorization", where)
            secret = self.fields(auth.get("credentials", {}), "credentials", f"{where}.credentials")
            if not (secret.get("name") and secret.get("key")):
                self.issue(f"{where}.credentials", "must name a Secret and a key (the token is never inline)")
            http_out["authorization"] = {
                "type": auth.get("type", "Bearer"),
                "credentials_file": f"{SECRETS_DIR}/{secret.get('name', '')}/{secret.get('key', '')}",
            }
        if http_out:
            out["http_config"] = http_out
        return out

    def receivers(self, values: list[Any], path: str) -> list[dict[str, Any]]:
        out, seen = [], set()
        for i, value in enumerate(values):
            receiver = self.fields(value, "receiver", f"{path}[{i}]")
            name = receiver.get("name", "")
            if not name:
                self.issue(f"{path}[{i}].name", "is required")
                continue
            if name in seen:
                self.issue(f"{path}[{i}].name", f"receiver {name!r} is defined twice")
            seen.add(name)
            webhooks = receiver.get("webhookConfigs", [])
            entry: dict[str, Any] = {"name": self.receiver_name(name)}
            if webhooks:
                entry["webhook_configs"] = [
                    self.webhook(w, f"{path}[{i}].webhookConfigs[{j}]") for j, w in enumerate(webhooks)
                ]
            out.append(entry)
        return out

    def inhibit_rules(self, values: list[Any], path: str) -> list[dict[str, Any]]:
        scope = f'namespace="{self.namespace}"'
        out = []
        for i, value in enumerate(values):
            rule = self.fields(value, "inhibitRule", f"{path}[{i}]")
            out.append({
                "source_matchers": [*self.matchers(rule.get("sourceMatch", []), f"{path}[{i}].sourceMatch"), scope],
                "target_matchers": [*self.matchers(rule.get("targetMatch", []), f"{path}[{i}].targetMatch"), scope],
                **({"equal": [str(e) for e in rule["equal"]]} if "equal" in rule else {}),
            })  # fmt: skip
        return out


def to_alertmanager_config(doc: dict[str, Any], label: str) -> tuple[dict[str, Any], list[LintIssue]]:
    """The Alertmanager configuration the operator would generate for this object alone, and the findings."""
    metadata = doc.get("metadata") or {}
    translation = _Translation(label, str(metadata.get("namespace") or "default"), str(metadata.get("name") or ""))
    if not metadata.get("name"):
        translation.issue("metadata.name", "is required")
    unknown = sorted(str(key) for key in doc if key not in {"apiVersion", "kind", "metadata", "spec"})
    if unknown:
        translation.issue("(document)", f"unknown field(s) {', '.join(map(repr, unknown))}")
    spec = translation.fields(doc.get("spec", {}), "spec", "spec")
    receivers = translation.receivers(spec.get("receivers", []), "spec.receivers")
    root: dict[str, Any] = {"receiver": "null", "routes": []}
    if "route" in spec:
        root["routes"].append(translation.route(spec["route"], "spec.route", top=True))
    config = {
        "route": root,
        "receivers": [{"name": "null"}, *receivers],  # the operator's default top-level receiver
        "inhibit_rules": translation.inhibit_rules(spec.get("inhibitRules", []), "spec.inhibitRules"),
    }
    return config, translation.issues


def _amtool() -> str:
    found = shutil.which("amtool")
    if found is None:
        raise MissingDependencyError(
            "amtool is not installed: an AlertmanagerConfig cannot be checked",
            hint="make system (Debian package prometheus-alertmanager)",
        )
    return found


def check_alertmanager_config(doc: dict[str, Any], label: str) -> list[LintIssue]:
    """Findings of the strict translation, then of ``amtool check-config`` on what it produced."""
    config, issues = to_alertmanager_config(doc, label)
    if issues:
        return issues
    with tempfile.TemporaryDirectory(prefix="amcfg-") as tmp:
        path = Path(tmp) / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        checked = subprocess.run([_amtool(), "check-config", str(path)], capture_output=True, text=True,
                                 timeout=60, check=False)  # fmt: skip
    if checked.returncode != 0:
        output = (checked.stdout + checked.stderr).replace(str(path), "(rendered config)").strip()
        issues.append(LintIssue(label, "spec", f"amtool check-config refused it: {output[-800:]}", "amtool"))
    return issues

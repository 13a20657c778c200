"""No secret in the repository: ``detect-secrets`` over every tracked file (the generated manifests included),
against the reviewed ``.secrets.baseline``.

    .venv/bin/python scripts/secrets_check.py            # what `make check` runs: exit 1 naming each new finding
    .venv/bin/python scripts/secrets_check.py --update   # rewrite the baseline after reviewing the new findings

A finding is matched to the baseline by file, type and the secret's hash, not by line number, so an edit that moves
a reviewed line does not fail the check. Every finding in the baseline was reviewed and is marked
``"is_secret": false`` (a test token, a Kubernetes Secret's *name*, the sha256 of the empty string…); a real secret is
removed from the code, never added to the baseline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / ".secrets.baseline"
EXCLUDE = r"^(\.venv/|\.driftloop/|requirements\.lock$|\.secrets\.baseline$)"


def scan() -> dict:
    tool = Path(sys.executable).parent / "detect-secrets"
    done = subprocess.run([str(tool), "scan", "--exclude-files", EXCLUDE], cwd=ROOT, capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"detect-secrets failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def _keys(document: dict) -> dict[tuple[str, str, str], dict]:
    return {(name, item["type"], item["hashed_secret"]): item for name, items in document["results"].items()
            for item in items}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="write the current findings as the baseline")
    args = parser.parse_args()
    current = scan()
    reviewed = _keys(json.loads(BASELINE.read_text())) if BASELINE.exists() else {}
    new = {key: item for key, item in _keys(current).items() if key not in reviewed}
    if args.update:
        for items in current["results"].values():
            for item in items:
                item["is_secret"] = False  # reviewed: the person running --update vouches for each
        current.pop("generated_at", None)
        BASELINE.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
        print(f"wrote {BASELINE.name}: {sum(len(v) for v in current['results'].values())} reviewed finding(s)")
        return 0
    if new:
        for (name, kind, _), item in sorted(new.items()):
            print(f"{name}:{item['line_number']}: possible secret ({kind})", file=sys.stderr)
        print(
            "error: detect-secrets found what looks like a secret not in the reviewed .secrets.baseline\n"
            "  hint: remove it (read it from a file or a Secret); a false positive: review it, then run "
            "`.venv/bin/python scripts/secrets_check.py --update` and commit .secrets.baseline",
            file=sys.stderr,
        )
        return 1
    print(f"no secrets: {len(reviewed)} reviewed false positive(s) in {BASELINE.name}, nothing new")
    return 0


if __name__ == "__main__":
    sys.exit(main())

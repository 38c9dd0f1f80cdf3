"""Dependency audit: pip-audit over everything installed in this environment finds no known
vulnerability. pip-audit asks PyPI's JSON API for each package's advisories; where that service
cannot be reached (an offline machine, a registry mirror that serves only the package index), the
test is skipped and says so rather than passing on packages it could not check."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("pip_audit")


def test_no_known_vulnerability_in_the_installed_dependencies(tmp_path):
    command = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off", "--skip-editable",
               "--cache-dir", str(tmp_path / "cache")]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("pip-audit's vulnerability service (PyPI's JSON API) did not answer within 10 minutes")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        if "ConnectionError" in done.stderr or "Max retries" in done.stderr:
            pytest.skip("pip-audit could not reach its vulnerability service (PyPI's JSON API): " + done.stderr[-300:])
        raise AssertionError(f"pip-audit failed (exit {done.returncode}): {done.stderr[-2000:]}")
    deps = report["dependencies"]
    audited = [d for d in deps if "skip_reason" not in d]
    if len(audited) < len(deps) / 2:  # most packages "not found": the service is not there, not the packages
        pytest.skip(f"pip-audit could not reach its vulnerability service (PyPI's JSON API): {len(deps) - len(audited)} "
                    f"of {len(deps)} packages unchecked, e.g. {deps[0].get('skip_reason', '')!r}")
    vulnerable = {f"{d['name']} {d['version']}": [v["id"] + " (fixed in " + ", ".join(v.get("fix_versions") or ["-"])
                                                  + ")" for v in d["vulns"]] for d in audited if d.get("vulns")}
    assert not vulnerable, f"known vulnerabilities: {vulnerable}"
    assert any(d["name"] == "gradio" for d in audited), "gradio itself must be audited"

"""The web surface, served exactly as `workbench serve` serves it (workbench.app.launch): loopback
only by default, the file route serves what the app must and nothing else, uploads are capped, and
Gradio is pinned to a release with the published advisories fixed."""

from __future__ import annotations

import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from workbench.app import DEFAULT_HOST  # noqa: E402
from workbench.app.context import MAX_UPLOAD_MB  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(serve_app):
    return serve_app("web", as_serve=True)  # workbench.app.launch, with its default host


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _upload(url: str, name: str, content: bytes) -> tuple[int, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def _listening_addresses(port: int) -> set[str]:
    """The local addresses that listen on ``port`` (from /proc/net/tcp*; no traffic sent)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # LISTEN
                found.add(address)
    return found


def test_the_app_binds_to_loopback_only_by_default(served):
    from workbench.cli import build_parser

    demo, port = served.demo, served.port
    assert DEFAULT_HOST == "127.0.0.1" and build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert demo.server_name == "127.0.0.1"
    if Path("/proc/net/tcp").exists():
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and no other address


def test_the_file_route_serves_an_upload_and_nothing_outside(served, tmp_path):
    _, url, store = served
    status, body = _upload(url, "mine.jsonl", b'{"question": "q", "answer": "a"}\n')
    assert status == 200
    uploaded = re.findall(r'"([^"]+mine\.jsonl)"', body)[0]
    status, content = _get(url + "gradio_api/file=" + uploaded)
    assert status == 200 and b'"question"' in content  # the route works for what the app must serve

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    outside = [Path("/etc/passwd"), secret, Path(store), ROOT / "workbench" / "agent.py", ROOT / "pyproject.toml",
               Path(sys.executable)]
    tricks = [str(p) for p in outside] + [
        str(Path(uploaded).parent / ".." / ".." / ".." / ".." / "etc" / "passwd"),
        urllib.parse.quote(str(Path(uploaded).parent) + "/../../../../etc/passwd", safe=""),
        "..%2f..%2f..%2f..%2fetc%2fpasswd", "~/.bashrc", "file:///etc/passwd",
    ]
    for path in tricks:
        for route in ("gradio_api/file=", "file=", "gradio_api/file/"):
            status, content = _get(url + route + path)
            assert b"root:" not in content and b"TOP-SECRET" not in content and b"SQLite format" not in content, path
            assert b"def stream" not in content and b"[project]" not in content, path
            assert status in (403, 404, 400, 405) or status == 200 and b"<html" in content.lower()[:200], (path, status)


def test_uploads_over_the_limit_are_refused_and_the_app_goes_on(served):
    url = served.url
    status, body = _upload(url, "big.jsonl", b"x" * (MAX_UPLOAD_MB * 1024 * 1024 + 1024))
    assert status == 413 and "maximum allowed size" in body
    status, _ = _upload(url, "small.jsonl", b'{"question": "q", "answer": "a"}\n')
    assert status == 200
    from gradio_client import Client

    run_id = Client(url, verbose=False).predict("What is 2 + 3?", "direct", "tiny", 1, 0.0, api_name="/run")[5]
    assert run_id


def test_gradio_is_pinned_to_a_release_with_the_published_advisories_fixed():
    import tomllib
    from importlib.metadata import version

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (spec,) = [s for s in extras["app"] if s.startswith("gradio")]
    allowed = SpecifierSet(spec.removeprefix("gradio"))
    # Advisories published for Gradio 6 were fixed in 6.6.0 (SSRF through gr.load), 6.7.0 (path traversal
    # on Windows with Python 3.13) and 6.16.0 (FileExplorer path traversal): nothing older may install.
    for old in ("5.50.0", "6.5.1", "6.6.0", "6.15.2"):
        assert Version(old) not in allowed, spec
    assert Version(version("gradio")) in allowed

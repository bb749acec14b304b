"""The dashboard's server without a browser: who may read it, what it serves, the 0.13
routes, the command line, and the assets shipped as package data."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from llm_toll.dashboard import TOKEN_ENV
from llm_toll.dashboard._access import choose_token, is_loopback
from llm_toll.store import SQLiteStore
from tests.dashboard.conftest import Serve
from tests.dashboard.http import get
from tests.stores.helpers import make_call

TOKEN = "s3cret-token-of-the-test"
ASSETS = ("index.html", "dashboard.js", "dashboard.css")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.org", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_token_is_generated_off_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert choose_token("127.0.0.1", None) is None
    first, second = choose_token("0.0.0.0", None), choose_token("0.0.0.0", None)
    assert first and second and first != second and len(first) >= 32
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert choose_token("0.0.0.0", None) == TOKEN
    assert choose_token("127.0.0.1", None) == TOKEN
    assert choose_token("0.0.0.0", "given-on-the-command-line") == "given-on-the-command-line"


@pytest.mark.parametrize("token", ["short", "has a space in it, too", "semi;colon-cookie-breaker"])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        choose_token("0.0.0.0", token)


def test_the_page_and_its_assets_are_served(serve: Serve) -> None:
    server = serve()
    page = get(server.url, "/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        asset = get(server.url, f"/assets/{name}")
        assert asset.status == 200 and asset.headers["Content-Type"].startswith(kind)
        assert asset.body == (resources.files("llm_toll.dashboard") / "assets" / name).read_bytes()
    for path in ("/assets/../_server.py", "/assets/nothing.js", "/etc/passwd", "/api/nothing"):
        assert get(server.url, path).status == 404, path


def test_the_assets_name_nothing_outside_the_server() -> None:
    """No CDN, no font or image from elsewhere: every address is the page's own."""
    for name in ASSETS:
        text = (resources.files("llm_toll.dashboard") / "assets" / name).read_text()
        addresses = set(re.findall(r"""(?:https?:)?//[\w.-]+""", text))
        assert addresses <= {"http://www.w3.org"}, (name, addresses)  # the SVG namespace


def test_the_wheel_ships_the_assets(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"),
            *("-w", str(tmp_path), str(repo)),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("llm_toll-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"llm_toll/dashboard/assets/{name}" for name in ASSETS} <= names


def test_only_loopback_names_are_answered_without_a_token(serve: Serve) -> None:
    """A page elsewhere whose own name resolves to 127.0.0.1 gets nothing (DNS rebinding)."""
    server = serve()
    port = server.server_address[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]:8050"):
        assert get(server.url, "/", {"Host": host}).status == 200, host
    for host in (f"attacker.example:{port}", "attacker.example"):
        answer = get(server.url, "/api/summary", {"Host": host})
        assert answer.status == 403 and b"total_cost" not in answer.body


def test_with_a_token_nothing_is_served_without_it(serve: Serve) -> None:
    server = serve(token=TOKEN)
    assert server.url.endswith(f"/?token={TOKEN}")
    for path in ("/", "/assets/dashboard.js", "/api/overview", "/api/summary"):
        answer = get(server.url, path)
        assert answer.status == 401, path
        assert b"<html" not in answer.body and b"total" not in answer.body
    assert get(server.url, f"/?token={TOKEN[:-1]}x").status == 401
    assert get(server.url, "/", {"Cookie": "llm_toll_dashboard=wrong-token-of-16"}).status == 401


def test_the_token_in_the_address_becomes_a_cookie(serve: Serve) -> None:
    server = serve(token=TOKEN)
    first = get(server.url, f"/?token={TOKEN}")
    assert first.status == 303 and first.headers["Location"] == "/"
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    again = get(server.url, "/", {"Cookie": cookie.split(";")[0]})
    assert again.status == 200 and b"llm-toll" in again.body
    by_header = get(server.url, "/api/summary", {"Authorization": f"Bearer {TOKEN}"})
    assert by_header.status == 200


def test_off_loopback_a_token_is_generated_and_required(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    server = serve(host="0.0.0.0")
    token = server.access.token
    assert token is not None
    port = server.server_address[1]
    assert server.url == f"http://{socket.gethostname()}:{port}/?token={token}"
    local = f"http://127.0.0.1:{server.server_address[1]}/"
    assert get(local, "/").status == 401
    assert get(local, "/", {"Host": "dashboard.example"}).status == 401
    assert get(local, "/", {"Authorization": f"Bearer {token}"}).status == 200


def test_the_013_routes_answer_as_they_did(store: SQLiteStore, serve: Serve) -> None:
    store.log_usage("my-project", "gpt-4o", 100, 50, 0.005)
    store.log_usage("my-project", "gpt-4o", 200, 100, 0.010)
    store.log_usage("other-project", "claude-sonnet-4", 300, 150, 0.020)
    server = serve()
    summary = get(server.url, "/api/summary").json()
    assert summary == {
        "total_cost": 0.035,
        "total_cost_nanos": 35_000_000,
        "total_calls": 3,
        "project_count": 2,
        "model_count": 2,
    }
    projects = get(server.url, "/api/projects").json()
    assert {row["project"]: row["call_count"] for row in projects} == {
        "my-project": 2,
        "other-project": 1,
    }
    assert {row["model"] for row in get(server.url, "/api/models").json()} == {
        "gpt-4o",
        "claude-sonnet-4",
    }
    assert get(server.url, "/api/trends?days=oops").json()[0]["call_count"] == 3
    logs = get(server.url, "/api/logs?project=my-project&limit=1").json()
    assert [row["input_tokens"] for row in logs] == [200]


def test_bad_parameters_are_answered_400(serve: Serve) -> None:
    server = serve()
    for query, message in (
        ("step=year", "step must be one of day, week, month"),
        ("group=colour", "group must be one of project, model, key"),
        ("since=yesterday", "since must be a date"),
        ("since=2026-02-01&until=2026-01-01", "since must be before until"),
    ):
        answer = get(server.url, f"/api/overview?{query}")
        assert answer.status == 400 and message in answer.json()["error"], query
    assert get(server.url, "/api/calls?after_id=-1").status == 400


def test_the_command_serves_until_interrupted(store: SQLiteStore, tmp_path: Path) -> None:
    store.record_call(make_call(1_440, project="p"))
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    command = "from llm_toll.cli import main; raise SystemExit(main())"
    process = subprocess.Popen(
        [sys.executable, "-c", command, "--db", store.db_path, "dashboard", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.removeprefix("llm-toll dashboard at ").strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), first
        assert get(url, "/api/summary").json()["total_cost_nanos"] == 1_440
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out.rstrip().endswith("Dashboard stopped.")


def test_a_taken_port_is_an_error(serve: Serve, tmp_path: Path) -> None:
    from llm_toll.cli import main

    server = serve()
    port = str(server.server_address[1])
    db = tmp_path / "ledger.db"
    SQLiteStore(db_path=str(db)).close()
    assert main(["--db", str(db), "dashboard", "--port", port]) == 1


def test_the_013_flag_opens_the_dashboard(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_toll.cli._parser import build_parser, resolve_legacy

    parser = build_parser()
    for argv, port in ((["--dashboard"], 8050), (["--dashboard", "--port", "9001"], 9001)):
        args = parser.parse_args(argv)
        resolve_legacy(parser, args)
        assert (args.command, args.host, args.port, args.token) == (
            "dashboard",
            "127.0.0.1",
            port,
            None,
        )

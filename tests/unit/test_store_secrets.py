"""A store URL's password never shows (errors, warnings, logs, spans, the command line), and
a store URL that cannot be used is an error, never a quiet switch to the local SQLite file.

The PostgreSQL cases need psycopg (installed with the dev tools) but no server: a store
on a port where nothing listens is refused at once.
"""

from __future__ import annotations

import logging
import socket
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import llm_toll
from llm_toll import LangChainCallback, LiteLLMCallback, _runtime, track_costs
from llm_toll._warnings import forget_warnings
from llm_toll.cli import main
from llm_toll.exceptions import AccountingWarning
from llm_toll.store import StoreError, create_store
from llm_toll.store._secrets import redact, redact_url
from llm_toll.store.postgres import PostgresStore
from tests.support.otel import Telemetry
from tests.unit.test_decorator_shapes import chat

SECRET = "S3cr3t-Pa55word"

# URLs no store can be opened with, each holding the password; libpq quotes some of them.
UNUSABLE = [
    f"postgresq://llm:{SECRET}@db.example/ledger",  # a mistyped scheme
    f"postgresql:/llm:{SECRET}@db.example/ledger",  # a scheme without '//'
    f"mysql://llm:{SECRET}@db.example/ledger",  # no such store
    f"sqlite://llm:{SECRET}@db.example",  # a SQLite URL is sqlite:///path
    f"postgresql://llm:{SECRET}%ZZ@db.example/ledger",  # libpq quotes the bad token
    f"postgresql://llm:{SECRET}@[::1/ledger",  # libpq quotes the whole URL
    f"postgresql://llm:{SECRET} x@db.example/ledger",  # libpq quotes the bad userinfo
    f"host=db.example password={SECRET} dbname=ledger",  # libpq's form: not a file name
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_postgres(password: str = SECRET) -> str:
    """A PostgreSQL URL with a password, on a loopback port where nothing listens."""
    return f"postgresql://llm:{password}@127.0.0.1:{free_port()}/ledger"


@pytest.fixture
def process_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No store set: the process's store comes from the environment. Yields where the
    default SQLite file would be (``LLM_TOLL_DB``), which no test here may create."""
    default_db = tmp_path / "default.db"
    monkeypatch.setenv("LLM_TOLL_DB", str(default_db))
    monkeypatch.delenv("LLM_TOLL_STORE_URL", raising=False)
    llm_toll.set_store(None)
    llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    forget_warnings()
    try:
        yield default_db
    finally:
        # Records kept in memory for a store that never comes back: not reported at exit.
        _runtime.writer()._spills.clear()
        llm_toll.set_store(None)
        llm_toll.set_reporter(None)


# -- the URL itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", UNUSABLE)
def test_an_unusable_store_url_is_an_error_that_never_shows_the_password(url: str) -> None:
    with pytest.raises(ValueError, match=r"\*\*\*") as refused:
        create_store(url)
    message = str(refused.value)  # the URL is still shown, to say which one, masked
    assert SECRET not in message
    assert "S3cr" not in message


def test_libpqs_reason_is_kept_with_the_password_masked() -> None:
    with pytest.raises(ValueError, match='invalid percent-encoded token: "\\*\\*\\*"'):
        PostgresStore(f"postgresql://llm:{SECRET}%ZZ@db.example/ledger")
    with pytest.raises(ValueError, match="unterminated quoted string") as refused:
        PostgresStore(f"host=db.example password='{SECRET}")
    assert SECRET not in str(refused.value)


def test_a_password_libpq_reads_as_a_port_or_a_path_is_not_shown_either() -> None:
    # An unencoded '/' ends libpq's host part early: it reads "llm" as the host, the first
    # half of the password as the port and the rest as the database name.
    with pytest.raises(ValueError, match="its port is not a number") as refused:
        PostgresStore("postgresql://llm:S3cr3t/Pa55word@db.example/ledger")
    assert "S3cr3t" not in str(refused.value)
    assert "Pa55word" not in str(refused.value)
    store = PostgresStore("postgresql://llm:31337/Pa55word@db.example/ledger")  # a port number
    try:
        assert "31337" not in store.dsn_display
        assert "Pa55word" not in store.dsn_display
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"postgresql://llm:{SECRET}@db.example:543x/ledger", "its port is not a number"),
        (f"postgresql://llm:{SECRET}@db.example:70000/ledger", "its port is not a number"),
        (f"postgresql://llm:{SECRET}@db.example:0/ledger", "its port is not a number"),
        (f"postgresql://llm:{SECRET}@db.example/ledger?sslmode=requir", "sslmode must be one of"),
    ],
)
def test_what_libpq_would_refuse_only_when_connecting_is_refused_at_once(
    process_store: Path, monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason) as refused:
        PostgresStore(url)
    assert SECRET not in str(refused.value)
    monkeypatch.setenv("LLM_TOLL_STORE_URL", url)
    with pytest.raises(ValueError, match=rf"^LLM_TOLL_STORE_URL: .*{reason}"):
        track_costs(project="p")  # not a store that is down at every call


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://llm:{SECRET}@db:5432/x", "postgresql://llm:***@db:5432/x"),
        (f"postgresql://llm:{SECRET}@db/x?sslmode=require", "postgresql://llm:***@db/x?sslmode=require"),
        (f"postgresql://llm@db/x?password={SECRET}&sslmode=require", "postgresql://llm@db/x?password=***&sslmode=require"),
        (f"host=db password={SECRET} dbname=x", "host=db password=*** dbname=x"),
        (f"host=db password = '{SECRET} with spaces' dbname=x", "host=db password = *** dbname=x"),
        ("postgresql://llm@db/x", "postgresql://llm@db/x"),
        ("/var/lib/ledger:2026.db", "/var/lib/ledger:2026.db"),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_masks_a_known_password_wherever_a_message_quotes_it() -> None:
    text = f'could not translate host name "{SECRET}@db" to address'
    assert redact(text, SECRET) == 'could not translate host name "***@db" to address'


# -- LLM_TOLL_STORE_URL: an error when decorating, never a fallback ----------------------------


@pytest.mark.parametrize("url", UNUSABLE)
def test_an_unusable_store_url_in_the_environment_refuses_to_decorate(
    process_store: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("LLM_TOLL_STORE_URL", url)
    monkeypatch.chdir(process_store.parent)  # where a URL taken for a file name would go
    for configure in (
        lambda: track_costs(project="p"),
        lambda: llm_toll.run(project="p", max_budget=1.0),
        lambda: LiteLLMCallback(project="p"),
        lambda: LangChainCallback(project="p"),
    ):
        with pytest.raises(ValueError, match=r"^LLM_TOLL_STORE_URL: ") as refused:
            configure()
        assert SECRET not in str(refused.value)
    assert list(process_store.parent.iterdir()) == []  # no SQLite file, default or other


def test_a_file_named_like_a_connection_string_is_still_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"key=value connection string.*\./host=") as refused:
        create_store(f"host=db password={SECRET}.db")
    assert SECRET not in str(refused.value)
    with create_store(f"{tmp_path}/host=db.db") as store:  # a path with a directory
        store.log_usage("p", "m", 1, 1, 0.5)
    assert (tmp_path / "host=db.db").exists()


def test_a_postgresql_url_is_checked_without_connecting(
    process_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_TOLL_STORE_URL", dead_postgres())
    track_costs(project="p")  # nothing listens there: it is only used at the first call


def test_a_store_url_made_unusable_after_decorating_is_a_store_that_is_down(
    process_store: Path, monkeypatch: pytest.MonkeyPatch, telemetry: Telemetry
) -> None:
    @track_costs(project="no-fallback", max_budget=5.0)
    def ask() -> dict[str, Any]:
        return chat(10, 5)

    monkeypatch.setenv("LLM_TOLL_STORE_URL", UNUSABLE[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ask() == chat(10, 5)  # the call returns: it was paid for
    told = [str(w.message) for w in caught if issubclass(w.category, AccountingWarning)]
    assert told and any("cannot use its store" in message for message in told)
    assert not any(SECRET in message for message in told)
    assert not process_store.exists()  # no quiet switch to the local SQLite file
    assert _runtime.writer().pending == 1  # the record is kept for the store asked for
    assert (telemetry.span().attributes or {})["llm_toll.project"] == "no-fallback"


# -- a PostgreSQL store that is down: warnings, logs, spans ---------------------------------


def test_a_store_that_is_down_never_shows_its_password(
    process_store: Path, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    store = PostgresStore(dead_postgres(), pool_timeout_s=1.0, connect_timeout_s=2)
    llm_toll.set_store(store)

    @track_costs(project="pg-down", max_budget=5.0, reset="daily")
    def ask() -> dict[str, Any]:
        return chat(10, 5)

    try:
        caplog.set_level(logging.DEBUG)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert ask() == chat(10, 5)
        with pytest.raises(StoreError) as failed:
            store.get_spent("pg-down", "daily", datetime.now(timezone.utc))
    finally:
        store.close()
    said = [str(w.message) for w in caught]
    assert any("could not" in message for message in said)  # the store was reached for
    shown = [*said, caplog.text, str(failed.value), failed.value.path or ""]
    for span in telemetry.spans():
        shown += [str(span.attributes), str(span.status.description)]
        shown += [str(event.attributes) for event in span.events]
    assert not [text for text in shown if SECRET in text]
    assert "postgresql://llm@127.0.0.1:" in str(failed.value)  # still says which database


# -- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("url", [*UNUSABLE, dead_postgres()])
def test_the_command_line_never_shows_the_password(
    process_store: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    assert main(["summary", "--store-url", url]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("llm-toll: error: ")
    assert SECRET not in out + err


def test_the_command_line_never_shows_the_password_from_the_environment(
    process_store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_TOLL_STORE_URL", UNUSABLE[0])
    assert main(["budgets"]) == 1
    out, err = capsys.readouterr()
    assert "***" in err and SECRET not in out + err

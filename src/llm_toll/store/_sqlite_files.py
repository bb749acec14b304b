"""The files of a SQLite store: the database, created private, and backups beside it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path


def create_private_file(path: Path) -> None:
    """Create the database file owner-only before SQLite opens it.

    SQLite gives the -wal and -shm files the permissions of the database file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
    finally:
        os.close(fd)


def backup_copy(db_path: str, label: str) -> str:
    """Copy the database at ``db_path`` beside it, as ``<db_path>.<label>-<UTC time>``
    (owner-only, synced to disk); returns the copy's path.

    The copy is read from the last committed state, so a caller that holds the write lock
    gets the file exactly as its next commit will find it. It is written under a
    ``.partial`` name and renamed when complete: a copy that has its final name is whole.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = _free_name(f"{db_path}.{label}-{stamp}")
    partial = Path(f"{target}.partial")
    partial.unlink(missing_ok=True)  # left by a process killed while copying
    create_private_file(partial)
    source = contextlib.closing(sqlite3.connect(db_path))
    with source as source_conn, contextlib.closing(sqlite3.connect(partial)) as copy:
        source_conn.backup(copy)
    _fsync(partial)
    os.rename(partial, target)
    _fsync(partial.parent)
    return target


def _free_name(base: str) -> str:
    name, number = base, 1
    while os.path.exists(name):
        number += 1
        name = f"{base}-{number}"
    return name


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

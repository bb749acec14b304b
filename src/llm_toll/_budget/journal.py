"""The spill journal: records the store refused, kept on disk until it takes them.

One append-only file per store (named after a hash of the store's location) in the spill
directory: ``LLM_TOLL_SPILL_DIR``, else ``$XDG_STATE_HOME/llm_toll/spill``, else
``~/.local/state/llm_toll/spill``. It lives apart from the store on purpose: a store whose
file or disk refuses writes usually refuses a file beside it too.

Each line is one record: a CRC-32 of its JSON, then the JSON, written with one ``write``
under an exclusive ``flock`` and ``fsync``'d before the caller goes on. A line cut short by
a crash fails its CRC and is skipped (its call had not returned yet). Each record carries an
id; the store writes the record and its id in one transaction and skips an id it has seen,
so a replay cut short and run again writes nothing twice. The file is emptied only once
every record in it is in the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from llm_toll._budget.records import BudgetSpec, BudgetState, CallRecord, PendingWrite, Reservation
from llm_toll.store._errors import StoreError

SPILL_DIR_ENV = "LLM_TOLL_SPILL_DIR"
"""The environment variable naming the directory of spill journals."""


class ReplayTarget(Protocol):
    """A store that can take journalled records back (the SQLite and PostgreSQL stores)."""

    @property
    def location(self) -> str: ...

    def replay_spilled(self, write: PendingWrite, record_id: str) -> BudgetState | None: ...


def spill_dir() -> Path:
    configured = os.environ.get(SPILL_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join("~", ".local", "state")
    return Path(state_home).expanduser() / "llm_toll" / "spill"


@dataclass(frozen=True, slots=True)
class Replayed:
    """What one replay did."""

    written: int = 0
    """Records written to the store now."""
    already: int = 0
    """Records the store had from an earlier replay, not written again."""
    left: int = 0
    """Records still in the journal (the store refused them, or another process replays)."""
    damaged: int = 0
    """Lines that failed their checksum (a write cut short by a crash) or that no store
    can hold: skipped."""
    busy: bool = False
    """Another thread or process held the journal: nothing was done this time."""


class SpillJournal:
    """The journal of one store's refused records."""

    def __init__(self, location: str, directory: Path | None = None) -> None:
        self.location = location
        digest = hashlib.sha256(location.encode()).hexdigest()[:16]
        self.path = (directory or spill_dir()) / f"{digest}.jsonl"

    def count(self) -> int:
        """Records in the journal (lines that pass their checksum)."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return 0
        return len(_parse(data)[0])

    def has_records(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def append(
        self, writes: Sequence[PendingWrite], webhooks: Sequence[str | None] = ()
    ) -> list[str]:
        """Make ``writes`` durable, each with the webhook its alerts go to (``webhooks``,
        in the same order; none when empty); the ids they are kept under. OSError when the
        journal cannot be written."""
        entries = [
            Entry(write.record_id or uuid.uuid4().hex, write, webhook)
            for write, webhook in zip(writes, webhooks or [None] * len(writes), strict=True)
        ]
        data = b"".join(_line(entry) for entry in entries)
        with self._locked(blocking=True, create=True) as fd:
            if fd is None:  # cannot happen: a blocking lock on a file it creates
                raise OSError(f"could not open {self.path}")
            os.write(fd, data)
            os.fsync(fd)
        return [entry.record_id for entry in entries]

    def replay(
        self,
        store: ReplayTarget,
        on_written: Callable[[Entry, BudgetState], None] | None = None,
    ) -> Replayed:
        """Write the journal's records to ``store`` in order, each once; empty the journal
        when all are in. ``on_written`` is told of each record written now, with the state
        its write returned (to raise the alerts it crossed). Raises ReplayStopped at the
        first StoreError (the rest waits for the next replay). Skips the turn when another
        thread or process holds the journal."""
        with self._locked(blocking=False, create=False) as fd:
            if fd is None:
                return Replayed(busy=self.has_records())
            entries, damaged = _read(fd)
            written = already = 0
            for position, entry in enumerate(entries):
                try:
                    state = store.replay_spilled(entry.write, entry.record_id)
                except StoreError as exc:
                    left = len(entries) - position
                    raise ReplayStopped(Replayed(written, already, left, damaged)) from exc
                except ValueError:  # a record no store can hold: it never will
                    damaged += 1
                    continue
                if state is None:
                    already += 1
                    continue
                written += 1
                if on_written is not None:
                    on_written(entry, state)
            os.ftruncate(fd, 0)
            os.fsync(fd)
            return Replayed(written, already, 0, damaged)

    @contextlib.contextmanager
    def _locked(self, *, blocking: bool, create: bool) -> Iterator[int | None]:
        """The journal's file, open and locked; None when it does not exist (and ``create``
        is false) or, not ``blocking``, when someone else holds it."""
        while True:
            flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
            if create:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, flags, 0o600)
            except FileNotFoundError:
                if create:
                    raise
                yield None
                return
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield None
                    return
                # The file may have been removed while we waited for it: use the one there.
                if os.fstat(fd).st_nlink == 0:
                    continue
                yield fd
                return
            finally:
                os.close(fd)  # closing releases the lock


class ReplayStopped(Exception):
    """The store refused a record mid-replay; ``replayed`` says how far it got."""

    def __init__(self, replayed: Replayed) -> None:
        super().__init__(f"{replayed.left} records left in the journal")
        self.replayed = replayed


# -- the line format -----------------------------------------------------------------------


class Entry(NamedTuple):
    """One record of a journal."""

    record_id: str
    """A record written once by its own id keeps it: the store skips it whether it comes
    from this journal or is recorded again meanwhile."""
    write: PendingWrite
    webhook: str | None = None
    """The webhook named by the call's decorator or run (``alert_webhook=``): where the
    alerts its replay crosses are posted, by whichever process replays it."""


def _line(entry: Entry) -> bytes:
    line: dict[str, Any] = {"id": entry.record_id, "v": 1, "write": _encode_write(entry.write)}
    if entry.webhook is not None:
        line["webhook"] = entry.webhook
    payload = json.dumps(
        line,
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def _read(fd: int) -> tuple[list[Entry], int]:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return _parse(b"".join(chunks))


def _parse(data: bytes) -> tuple[list[Entry], int]:
    """The records of a journal's bytes, and the number of damaged lines."""
    entries: list[Entry] = []
    damaged = 0
    for raw in data.splitlines():
        checksum, _, payload = raw.partition(b" ")
        try:
            if int(checksum, 16) != zlib.crc32(payload):
                raise ValueError("checksum")
            entry = json.loads(payload)
            webhook = entry.get("webhook")
            entries.append(
                Entry(
                    str(entry["id"]),
                    _decode_write(entry["write"]),
                    webhook if isinstance(webhook, str) else None,
                )
            )
        except (ValueError, KeyError, TypeError):
            damaged += 1
    return entries, damaged


def _encode_write(write: PendingWrite) -> dict[str, Any]:
    call = write.call
    usage = call.usage
    return {
        "call": {
            "project": call.project,
            "model": call.model,
            "usage": [
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_input_tokens,
                usage.cache_creation_input_tokens,
                usage.reasoning_output_tokens,
                dict(usage.units),
            ],
            "cost_nanos": call.cost_nanos,
            "started_at": call.started_at.isoformat(),
            "duration_s": call.duration_s,
            "provider": call.provider,
            "operation": call.operation,
            "price_known": call.price_known,
            "estimated": call.estimated,
            "response_id": call.response_id,
            "budget_key": call.budget_key,
            "price_source": call.price_source,
            "price_version": call.price_version,
            "unpriced_units": list(call.unpriced_units),
            "price_context": dict(call.price_context),
            "cost_source": call.cost_source,
            "local_cost_nanos": call.local_cost_nanos,
            "run_id": call.run_id,
        },
        "budget": _encode_spec(write.budget),
        "key_budget": _encode_spec(write.key_budget),
        "reservation": _encode_reservation(write.reservation),
    }


def _decode_write(data: dict[str, Any]) -> PendingWrite:
    from llm_toll.usage._base import Usage

    call = dict(data["call"])
    counts = call.pop("usage")
    call["usage"] = Usage.checked(
        counts[0],
        counts[1],
        cache_read_input_tokens=counts[2],
        cache_creation_input_tokens=counts[3],
        reasoning_output_tokens=counts[4],
        units=counts[5] if len(counts) > 5 else None,  # a journal of an older version
    )
    call["started_at"] = datetime.fromisoformat(call["started_at"])
    call["unpriced_units"] = tuple(call.get("unpriced_units", ()))
    call["price_context"] = MappingProxyType(dict(call.get("price_context", {})))
    reservation = data["reservation"]
    return PendingWrite(
        CallRecord(**call),
        _decode_spec(data["budget"]),
        _decode_spec(data["key_budget"]),
        None if reservation is None else _decode_reservation(reservation),
    )


def _encode_spec(spec: BudgetSpec | None) -> list[Any] | None:
    if spec is None:
        return None
    if not spec.also:  # the form journals had before stored limits
        return [spec.limit_nanos, spec.reset]
    return [spec.limit_nanos, spec.reset, [[other.limit_nanos, other.reset] for other in spec.also]]


def _decode_spec(data: list[Any] | None) -> BudgetSpec | None:
    if data is None:
        return None
    also = tuple(BudgetSpec(limit, reset) for limit, reset in data[2]) if len(data) > 2 else ()
    return BudgetSpec(data[0], data[1], also=also)


def _encode_reservation(reservation: Reservation | None) -> dict[str, Any] | None:
    if reservation is None:
        return None
    return {
        "id": reservation.id,
        "project": reservation.project,
        "budget_key": reservation.budget_key,
        "period": reservation.period,
        "amount_nanos": reservation.amount_nanos,
        "expires_at": reservation.expires_at.isoformat(),
        "spec": _encode_spec(reservation.spec),
        "key_spec": _encode_spec(reservation.key_spec),
        "others": [list(row) for row in reservation.others],
    }


def _decode_reservation(data: dict[str, Any]) -> Reservation:
    spec = _decode_spec(data["spec"])
    if spec is None:
        raise ValueError("a reservation without its budget")
    return Reservation(
        id=data["id"],
        project=data["project"],
        budget_key=data["budget_key"],
        period=data["period"],
        amount_nanos=data["amount_nanos"],
        expires_at=datetime.fromisoformat(data["expires_at"]),
        spec=spec,
        key_spec=_decode_spec(data["key_spec"]),
        # Journals written before reservations held several periods have none.
        others=tuple((int(row_id), str(period)) for row_id, period in data.get("others", ())),
    )

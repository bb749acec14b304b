"""OpenTelemetry's log records about llm_toll's own exporters, kept off the app's logs.

The OTLP exporters and the SDK's batch processors log each failed or retried export
through ``logging``, some with a traceback, and with no logging configured Python prints
them on stderr. llm_toll's own exporters say once, when they shut down, what they could
not deliver. So the records made while they work (the thread is marked) only give that
line its reason, and go to the ``llm_toll.telemetry`` logger at DEBUG level for whoever
asks. Records about the app's own exporters, made by the same loggers, pass as before:
the app's logging configuration is not touched.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from llm_toll.telemetry._tally import Tally, reason_in

LOGGER = logging.getLogger("llm_toll.telemetry")
# The loggers export goes through: the SDK and exporters, and the HTTP and gRPC clients.
_FAMILIES = ("opentelemetry", "grpc", "urllib3", "requests")

_local = threading.local()


class Quiet:
    """Mark the current thread as doing ``tally``'s export work while in the block."""

    __slots__ = ("_previous", "_tally")

    def __init__(self, tally: Tally) -> None:
        self._tally = tally
        self._previous: Tally | None = None

    def __enter__(self) -> None:
        self._previous = getattr(_local, "tally", None)
        _local.tally = self._tally

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _local.tally = self._previous


class _Filter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        tally: Tally | None = getattr(_local, "tally", None)
        if tally is None:
            return True
        if record.levelno >= logging.WARNING:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" {record.exc_info[1]}"
            tally.note(reason_in(text))
        if LOGGER.isEnabledFor(logging.DEBUG):
            LOGGER.debug("%s: %s", record.name, record.getMessage(), exc_info=record.exc_info)
        return False


_FILTER = _Filter()


def install() -> None:
    """Filter the export loggers that exist: call it once the exporters are imported.

    A logger's filters see only the records made on that logger, not its children's, so
    each one is given the filter, first: the SDK's own filter that drops a message repeated
    within 20 s would otherwise hide the second exporter's failure from it.
    """
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if (
            isinstance(logger, logging.Logger)
            and name.split(".", 1)[0] in _FAMILIES
            and _FILTER not in logger.filters
        ):
            logger.filters.insert(0, _FILTER)

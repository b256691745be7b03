"""The load running alongside the extract: the target fills while the backup goes on.

In a run with both stages, a thread loads what is staged so far, pass after pass,
while the backup stage stages more; each pass is one load transaction exactly as
a load after the extract would be (ledger rows, merge, then the watermark moves
the files to ``processed_s3_files``). Both stages change the same watermark
document, each change and its write under the document's lock. The run then ends
about when the slower stage ends, and the target is never left empty for the
whole of a long first extract.

A thread, not a process: the load's work is mostly the target's and the Parquet
and COPY libraries', which release the GIL; connectorx holds it while it reads a
batch but lets go between batches (measured: a spinning thread keeps ~11 % of
its speed during a 2M-row read, and the load is waiting on the target most of
its time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from src.load.load_stage import LoadResult, TableLoad
from src.utils.logging_setup import get_logger

log = get_logger("load")


class LoadAlongside:
    """Load passes in a thread, one each time more files are staged, until told to stop.

    ``staged()`` wakes it (the backup calls it after each file it records);
    ``waiting()`` says it waits for files (and raises a pass's error); ``finish(last_pass)``
    stops it, after one more pass over what is left when ``last_pass``. The first
    error of a pass ends the passes and is raised by ``finish``.
    """

    def __init__(self, load: TableLoad, on_loaded: Callable[[LoadResult], None] | None) -> None:
        self.load = load
        self.on_loaded = on_loaded
        self.error: BaseException | None = None
        self.passes = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_pass = False
        self._idle = False
        # A daemon: an interpreter exiting on a second Ctrl-C must not wait for a pass (its
        # transaction is rolled back with its connection; the ledger makes a rerun exact).
        self._thread = threading.Thread(
            target=self._loop, name=f"load-{load.table_name}", daemon=True
        )

    def start(self) -> LoadAlongside:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def staged(self) -> None:
        """More is staged: run a pass when the current one ends."""
        self._wake.set()

    def waiting(self) -> bool:
        """Whether the passes wait for files (nothing staged is left unloaded).

        Raises the error that ended the passes: the extract, which asks before each
        query, stops there instead of staging files no pass of this run would load
        (a missing target schema surfaced only after a whole backfill's extract).
        What it staged stays staged, for the next run.
        """
        if self.error is not None:
            raise self.error
        return self._idle and not self._wake.is_set()

    def finish(self, *, last_pass: bool) -> LoadResult:
        """Stop the passes (one more over what is left when ``last_pass``); the result.

        Raises the error that ended a pass, if any.
        """
        self._last_pass = last_pass
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self.load.result

    def _loop(self) -> None:
        try:
            while True:
                self._idle = True
                self._wake.wait()
                self._idle = False
                self._wake.clear()
                stopping = self._stop.is_set()
                if stopping and not self._last_pass:
                    return
                # Woken by a staged file; a pass finding nothing left (an earlier one
                # took it) opens no connection (TableLoad's nothing-staged path).
                self.load.run()
                self.passes += 1
                if self.on_loaded is not None:
                    self.on_loaded(self.load.result)
                if stopping:
                    log.info("load passes", table=self.load.table_name, passes=self.passes)
                    return
        except BaseException as exc:  # raised by finish(), in the run's thread
            self.error = exc

"""A consumer process for the kill -9 test: runs the statements consumer on a SQLite store
until killed. Says `ready` once its runner is built; appends a line to the file named by
its third argument for every redelivered message its inbox absorbs.

    python consumer_child.py STORE NATS_URL ABSORBED_FILE
"""

from __future__ import annotations

import logging
import sys
import threading

from consumer_domain import Statements

from esgen.runtime import SQLiteEventStore
from esgen.runtime._integration import Wire
from esgen.runtime.nats._consumer_runner import ConsumerRunner


class _Absorbed(logging.Handler):
    def __init__(self, path: str) -> None:
        super().__init__(logging.DEBUG)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as the process

    def emit(self, record: logging.LogRecord) -> None:
        if "already handled" in record.getMessage():
            self._file.write("absorbed\n")
            self._file.flush()


def main(argv: list[str]) -> None:
    store_path, url, absorbed = argv
    runtime = logging.getLogger("esgen.runtime")
    runtime.setLevel(logging.DEBUG)
    runtime.addHandler(_Absorbed(absorbed))
    store = SQLiteEventStore(store_path)
    runner = ConsumerRunner(
        store, [Statements()], {"bank": Wire("bank", partitions=4)}, context="statements",
        servers=url, ack_wait=1.0,
    )  # fmt: skip
    print("ready", flush=True)
    runner.run(threading.Event())


if __name__ == "__main__":
    main(sys.argv[1:])

"""A relay process for the kill -9 test: follows a SQLite store until killed, writing the
broker's duplicate count after each checkpoint to a file (the last line survives a kill).

    python relay_child.py EVENTS_DB NATS_URL COUNT_FILE
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import relay_support as s

from esgen.runtime import SQLiteEventStore
from esgen.runtime.nats import Relay


def main() -> None:
    db, url, counts = sys.argv[1:4]
    fd = os.open(counts, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    with SQLiteEventStore(db) as store:
        relay = Relay(store, s.registry(), s.wire(), s.PUBLISHED, servers=url, page_size=40)

        def progress(position: int, head: int) -> None:
            os.write(fd, f"{relay.duplicates}\n".encode())

        relay.run(threading.Event(), progress=progress)


if __name__ == "__main__":
    main()

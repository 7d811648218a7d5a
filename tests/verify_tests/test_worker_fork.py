"""A pool process forked by a worker's main process can always write to the SQLite database.

SQLite keeps each process's file-lock state inside the C library. A process forked while one
of its parent's threads had the database open inherits that state, and its own writes then
fail with "database is locked". The worker's main process uses the database from its threads
(the reconciler, the report of a lost pool process, the hand-back), so every such use holds
``verify.celery._database_use``, closes its connections, and a fork waits for it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from verify.celery import _database_use


def _fork_and_write(database: Path) -> str:
    """Fork; in the child, write a row with a new connection; return what the child reported."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running the parent's cleanup
        os.close(read_end)
        try:
            connection = sqlite3.connect(database, timeout=3, isolation_level=None)
            connection.execute("INSERT INTO rows VALUES ('from the child')")
            connection.close()
            outcome = b"written"
        except sqlite3.OperationalError as exc:
            outcome = str(exc).encode()
        os.write(write_end, outcome)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        outcome = answer.read().decode()
    os.waitpid(pid, 0)
    return outcome


def _writer(database: Path, *, holding: threading.Event, guarded: bool) -> None:
    """A main-process thread that writes in a transaction for half a second, as a reconciler pass does."""

    def write() -> None:
        connection = sqlite3.connect(database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO rows VALUES ('from the parent')")
        holding.set()
        time.sleep(0.5)
        connection.execute("COMMIT")
        connection.close()

    if guarded:
        with _database_use:
            write()
    else:
        write()


def _database(tmp_path: Path) -> Path:
    database = tmp_path / "worker.sqlite3"
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE rows (text TEXT)")
    connection.close()
    return database


def test_a_fork_during_unguarded_database_use_leaves_the_child_unable_to_write(tmp_path: Path):
    # given: a thread of this process in the middle of a write transaction
    database = _database(tmp_path)
    holding = threading.Event()
    thread = threading.Thread(target=_writer, args=(database,), kwargs={"holding": holding, "guarded": False})
    thread.start()
    holding.wait(5)
    # when: the process forks meanwhile, as a worker replacing a pool process would
    outcome = _fork_and_write(database)
    thread.join()
    # then: the child cannot write, although the parent's transaction ended long before its timeout
    assert outcome == "database is locked"


def test_a_worker_fork_waits_for_the_database_use_and_the_child_writes(tmp_path: Path):
    # given: the same thread, holding the worker's database lock as the reconciler does
    database = _database(tmp_path)
    holding = threading.Event()
    thread = threading.Thread(target=_writer, args=(database,), kwargs={"holding": holding, "guarded": True})
    thread.start()
    holding.wait(5)
    # when
    started = time.monotonic()
    outcome = _fork_and_write(database)
    thread.join()
    # then: the fork waited for the transaction, and the child's write went through
    assert outcome == "written"
    assert time.monotonic() - started > 0.3
    rows = sqlite3.connect(database).execute("SELECT text FROM rows ORDER BY rowid").fetchall()
    assert rows == [("from the parent",), ("from the child",)]

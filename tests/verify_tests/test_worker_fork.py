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


def _fork_during_a_write(database: Path, *, guarded: bool) -> tuple[str, float]:
    """Fork while a thread of this process is half a second into a write transaction, as a
    reconciler pass would be (holding the worker's lock if ``guarded``); in the child, write a row.

    Return what the child reported and how long the fork and the child's write took.
    """
    holding = threading.Event()

    def write() -> None:
        connection = sqlite3.connect(database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO rows VALUES ('from the parent')")
        holding.set()
        time.sleep(0.5)
        connection.execute("COMMIT")
        connection.close()

    def guarded_write() -> None:
        with _database_use:
            write()

    thread = threading.Thread(target=guarded_write if guarded else write)
    thread.start()
    holding.wait(5)
    started = time.monotonic()
    outcome = _fork_and_write(database)
    took_s = time.monotonic() - started
    thread.join()
    return outcome, took_s


def _database(tmp_path: Path) -> Path:
    database = tmp_path / "worker.sqlite3"
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE rows (text TEXT)")
    connection.close()
    return database


def test_a_fork_during_unguarded_database_use_leaves_the_child_unable_to_write(tmp_path: Path):
    # given
    database = _database(tmp_path)
    # when: the process forks during a thread's write, as a worker replacing a pool process would
    outcome, _ = _fork_during_a_write(database, guarded=False)
    # then: the child cannot write, although the parent's transaction ended long before its timeout
    assert outcome == "database is locked"


def test_a_worker_fork_waits_for_the_database_use_and_the_child_writes(tmp_path: Path):
    # given
    database = _database(tmp_path)
    # when: the same, with the thread holding the worker's database lock as the reconciler does
    outcome, took_s = _fork_during_a_write(database, guarded=True)
    # then: the fork waited for the transaction, and the child's write went through
    assert outcome == "written"
    assert took_s > 0.3
    rows = sqlite3.connect(database).execute("SELECT text FROM rows ORDER BY rowid").fetchall()
    assert rows == [("from the parent",), ("from the child",)]

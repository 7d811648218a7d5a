"""Django's PostgreSQL backend, with a cheaper health check for persistent connections.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` at the start of every request that
reuses a connection: one more round trip on each poll of the status endpoint. A healthy idle
connection has nothing to read, while a server that drops it (restart, fail-over,
``pg_terminate_backend``, an idle timeout) first sends an error message or closes the socket,
which makes the socket readable. So the round trip is only needed when the socket has
something to say.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable or super().is_usable()

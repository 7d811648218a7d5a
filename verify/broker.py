"""The embedded broker: kombu's filesystem transport, with messages that appear whole.

kombu writes a message by creating its file under the final name and then writing into it. A
worker polling the folder can take the file in between and read an empty or half-written
message, which kills its consumer (a JSON error) and loses the message. Here a message is
written under a name no queue reads and renamed into place, which is atomic on one
filesystem. ``verify.celery`` puts this transport behind ``filesystem://``.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]  # as filesystem.Channel
        """Put the message on the queue: write it aside, then rename it into the queue's name."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        partial = os.path.join(self.data_folder_out, f"partial-{uuid.uuid4().hex}.part")
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add a message to the folder {self.data_folder_out!r}") from exc


class Transport(filesystem.Transport):
    Channel = Channel

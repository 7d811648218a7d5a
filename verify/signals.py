"""Signals the evidence domain sends; workflows listens to them."""

from django.dispatch import Signal

# Sent once an analysis reaches a terminal state and the row is committed.
# Arguments: media_item_id, case_id.
analysis_finished = Signal()

# Sent when a stored original no longer hashes to the SHA-256 recorded at upload (or is gone).
# Arguments: media_item_id, case_id, expected (the recorded SHA-256), actual ("" if missing).
original_integrity_failed = Signal()

# Sent once a running analysis is known to have lost its worker and the row is committed (the
# job is ``interrupted`` until a worker takes it again). Arguments: media_item_id, case_id,
# attempt (the attempt that was cut off), max_attempts, reason (a sentence for the case history).
analysis_interrupted = Signal()

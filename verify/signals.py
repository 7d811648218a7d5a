"""Signals the evidence domain sends; workflows listens to them."""

from django.dispatch import Signal

# Sent once an analysis reaches a terminal state and the row is committed.
# Arguments: media_item_id, case_id.
analysis_finished = Signal()

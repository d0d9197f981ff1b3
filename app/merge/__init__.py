"""Merged role and app reads: one range or stream over many agents' node readers, in time
order, resumable by a composite cursor (issue 6)."""

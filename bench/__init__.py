"""`make bench`: the node reader against journalctl and systemd-journal-gatewayd on one
freshly written journal, plus follow latency and a thousand followers. Prints figures;
never a timed test."""

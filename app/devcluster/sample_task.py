"""`python -m app.devcluster.sample_task LABEL WHAT`: the dev cluster's sample task. A line a
second on stdout (`LABEL WHAT <n>`), and every other second a warning on stderr, until killed."""

from __future__ import annotations

import itertools
import sys
import time

PERIOD = 1.0
WARN_EVERY = 2


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m app.devcluster.sample_task LABEL WHAT", file=sys.stderr)
        return 2
    label, what = argv
    for i in itertools.count():
        print(f"{label} {what} {i}", flush=True)
        if i % WARN_EVERY == 0:
            print(f"{label} warning {i}: slow upstream", file=sys.stderr, flush=True)
        time.sleep(PERIOD)
    return 0  # pragma: no cover - the loop ends by signal


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

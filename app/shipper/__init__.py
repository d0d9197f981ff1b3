"""`logway ship`: a task's stdout and stderr, line by line, into journald with the task's ids.

native (the journald protocol) · fields (the task's ids) · lines (byte line splitting) ·
sink (where lines go) · pump (pipes → sink) · signals (forwarding, dying like the task) ·
run (a task, or stdin) · cli (`main(argv)`).
"""

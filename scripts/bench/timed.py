#!/usr/bin/env python3
"""Stand-in for `/usr/bin/time -f "%e %M" -o OUT CMD...` where GNU time is not installed: run CMD,
then write "WALL_SECONDS MAX_RSS_KB" to OUT (the child's peak resident set size, from wait4's
rusage like GNU time). Exits with CMD's status. Usage: timed.py OUT CMD [ARG]..."""
import os
import resource
import subprocess
import sys
import time

out, cmd = sys.argv[1], sys.argv[2:]
start = time.monotonic()
proc = subprocess.Popen(cmd)
_, status, usage = os.wait4(proc.pid, 0)
wall = time.monotonic() - start
with open(out, "w", encoding="utf-8") as f:
    f.write(f"{wall:.2f} {usage.ru_maxrss}\n")
sys.exit(os.waitstatus_to_exitcode(status))

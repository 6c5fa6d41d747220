"""Runs a command, writes its peak resident memory (ru_maxrss, KiB) to a file and exits with its status.

A process's ru_maxrss also holds the high-water mark of the address space it replaced at exec, and Python's
subprocess starts children with vfork, whose address space is the parent's: a task started straight from the
test process is charged the test process's memory. Started from this small process, it is charged its own.

Usage: python peak_memory.py OUTPUT_FILE COMMAND [ARG...]
"""

import os
import subprocess
import sys


def main() -> int:
    output, command = sys.argv[1], sys.argv[2:]
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    with open(output, "w") as f:
        f.write(str(usage.ru_maxrss))
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # a signal as a shell reports it (SIGABRT: 134)


if __name__ == "__main__":
    sys.exit(main())

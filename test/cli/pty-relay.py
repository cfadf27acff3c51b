#!/usr/bin/env python3
"""Run a command on a real pseudo-terminal and relay it over pipes.

usage: pty-relay.py COLS ROWS -- COMMAND [ARGS...]

Bytes on our stdin are typed into the terminal; what the program writes to
the terminal comes out on our stdout. We exit with the program's status.
Used by aaosctl's console tests because node-pty cannot read its master fd
under Bun (its tty.ReadStream fails with EAGAIN and closes the terminal).
"""
import fcntl
import os
import pty
import select
import struct
import sys
import termios


def main() -> int:
    cols, rows = int(sys.argv[1]), int(sys.argv[2])
    argv = sys.argv[sys.argv.index("--") + 1 :]
    pid, master = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execvp(argv[0], argv)
    stdin = sys.stdin.fileno()
    stdout = sys.stdout.fileno()
    inputs = [master, stdin]
    while True:
        ready, _, _ = select.select(inputs, [], [])
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the program closed the terminal
                data = b""
            if not data:
                break
            os.write(stdout, data)
        if stdin in ready:
            data = os.read(stdin, 65536)
            if not data:  # our caller is done typing; the program goes on
                inputs.remove(stdin)
            else:
                os.write(master, data)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A pseudo-terminal for tests: runs COMMAND on a new pty of ROWS x COLS.

    pty-driver.py ROWS COLS COMMAND [ARG...]

stdin is typed into the terminal as it comes; what the terminal shows goes
to stdout; lines "ROWS COLS" on fd 3 resize the terminal (the kernel then
sends SIGWINCH to the command). Exits with the command's status (128 + n
for a signal n) once the command has exited and its output is drained.
"""
import errno
import fcntl
import os
import pty
import select
import struct
import sys
import termios


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))


def main():
    rows, cols, cmd = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    pid, master = pty.fork()
    if pid == 0:
        set_size(0, rows, cols)
        os.execvp(cmd[0], cmd)
    inputs = [master, 0, 3]
    ctl = b''
    while True:
        try:
            ready, _, _ = select.select(inputs, [], [])
        except InterruptedError:
            continue
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                data = b''
            if not data:
                break
            os.write(1, data)
        if 0 in ready:
            data = os.read(0, 65536)
            if data:
                os.write(master, data)
            else:
                inputs.remove(0)
        if 3 in ready:
            data = os.read(3, 4096)
            if not data:
                inputs.remove(3)
            ctl += data
            while b'\n' in ctl:
                line, ctl = ctl.split(b'\n', 1)
                r, c = line.split()
                set_size(master, int(r), int(c))
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sys.exit(128 + os.WTERMSIG(status))
    sys.exit(os.WEXITSTATUS(status))


main()

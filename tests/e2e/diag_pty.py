#!/usr/bin/python3
"""Drives hq-diag through a real pseudo-terminal, like a person at a keyboard.

usage: diag_pty.py EXPECT_FILE -- hq-diag ARGS...
EXPECT_FILE holds one step per line: `expect <text>` waits (10 s) until <text> appeared in the
output since the last match; `send <text>` types <text> and Enter; `eof` closes the keyboard
(Ctrl-D). The full transcript is written to stdout at the end; the exit status is hq-diag's, or
99 when an expected text never came.
"""
import os
import pty
import select
import sys
import time

steps_file = sys.argv[1]
argv = sys.argv[sys.argv.index("--") + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

transcript = b""
cursor = 0


def read_some(timeout):
    global transcript
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return False
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    if not data:
        return None
    transcript += data
    return True


def expect(text):
    global cursor
    deadline = time.time() + 10
    needle = text.encode()
    while True:
        at = transcript.find(needle, cursor)
        if at >= 0:
            cursor = at + len(needle)
            return True
        if time.time() > deadline or read_some(deadline - time.time()) is None:
            return False


status = 0
for line in open(steps_file).read().splitlines():
    if not line.strip():
        continue
    verb, _, arg = line.partition(" ")
    if verb == "expect" and not expect(arg):
        sys.stdout.write(transcript.decode(errors="replace"))
        sys.stdout.write(f"\n*** never saw: {arg!r}\n")
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        sys.exit(99)
    elif verb == "send":
        os.write(fd, arg.encode() + b"\n")
    elif verb == "eof":
        os.write(fd, b"\x04")
while read_some(10):
    pass
_, wait_status = os.waitpid(pid, 0)
sys.stdout.write(transcript.decode(errors="replace"))
sys.exit(os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else 98)

#!/usr/bin/python3
"""Runs a command with its standard error on a pseudo-terminal and its standard output on a file,
so that a test can see what a person at a terminal sees on stderr while stdout stays a plain file.

usage: tty_stderr.py STDOUT_FILE STDERR_FILE -- COMMAND ARGS...
Everything the command writes to the terminal is saved, byte for byte, in STDERR_FILE; the exit
status is the command's (98 when it did not exit normally).
"""
import os
import pty
import subprocess
import sys

out_path, err_path = sys.argv[1], sys.argv[2]
argv = sys.argv[sys.argv.index("--") + 1:]
master, slave = pty.openpty()
with open(out_path, "wb") as out, open(os.devnull, "rb") as devnull:
    child = subprocess.Popen(argv, stdin=devnull, stdout=out, stderr=slave)
os.close(slave)
seen = b""
while True:
    try:
        data = os.read(master, 4096)
    except OSError:  # EIO: the child closed its end
        break
    if not data:
        break
    seen += data
status = child.wait()
os.close(master)
with open(err_path, "wb") as err:
    err.write(seen)
sys.exit(status if status >= 0 else 98)

#!/usr/bin/env bash
# An output path that exists and is no regular file (/dev/null, a FIFO) is written in place:
# never renamed over or removed, which would turn the device into a regular file (run as root,
# a temporary file renamed over /dev/null breaks it for every program on the machine). Checked
# on FIFOs, which take the same path as /dev/null without touching the machine's devices: the
# FIFO is still a FIFO afterwards and its reader got the same bytes as a regular file's.
# A directory as the output is refused with one line and exit 2. A reader that never sees a
# writer (the FIFO replaced) gives up after 30 s, which fails the test.
set -euo pipefail
har="$HQ_SOURCE_DIR/samples/tiny.har"
calib="$HQ_SOURCE_DIR/samples/tiny_calib.npy"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs "$@" (a command whose output is "$work/out.fifo") with a reader on the FIFO copying to
# $1's file; then the FIFO must still be one and the copy equal the regular output $2.
through_fifo() {
    local copy=$1 regular=$2
    shift 2
    timeout 30 cat "$work/out.fifo" >"$copy" &
    local reader=$!
    "$@"
    wait "$reader"
    [ -p "$work/out.fifo" ] || { echo "$1 $2 replaced the FIFO" >&2; exit 1; }
    cmp "$regular" "$copy"
}
mkfifo "$work/out.fifo"

# through the library's writer (npz): hq emulate
"$HQ" emulate "$har" -d "$calib" -o "$work/regular.npz" -q
through_fifo "$work/via_fifo.npz" "$work/regular.npz" \
    "$HQ" emulate "$har" -d "$calib" -o "$work/out.fifo" -q

# through hq compile's own writer (.hqx), then hq run's output (npz)
"$HQ" optimize "$har" -d "$calib" -o "$work/q.har" -q
"$HQ" compile "$work/q.har" -o "$work/regular.hqx" --har "$work/c1.har" -q
through_fifo "$work/via_fifo.hqx" "$work/regular.hqx" \
    "$HQ" compile "$work/q.har" -o "$work/out.fifo" --har "$work/c2.har" -q
"$HQ" run "$work/regular.hqx" -d "$calib" -o "$work/run.npz" -q
through_fifo "$work/run_fifo.npz" "$work/run.npz" \
    "$HQ" run "$work/regular.hqx" -d "$calib" -o "$work/out.fifo" -q

# a directory is refused: one line, exit 2, the directory untouched
mkdir "$work/dir.npz"
set +e
"$HQ" emulate "$har" -d "$calib" -o "$work/dir.npz" -q 2>"$work/err.txt"
rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "directory output: exit $rc, want 2" >&2; exit 1; }
[ "$(wc -l <"$work/err.txt")" -eq 1 ] || { cat "$work/err.txt" >&2; exit 1; }
[ -d "$work/dir.npz" ] && [ -z "$(ls -A "$work/dir.npz")" ]
echo "output_special_files: ok"

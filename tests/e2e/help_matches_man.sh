#!/usr/bin/env bash
# Every option --help prints appears in the command's man page, and every option the man page
# documents in OPTIONS appears in --help (one source of truth for CLI options).
set -euo pipefail
man_dir="$HQ_SOURCE_DIR/man"
fail=0

help_options() { "$@" --help | grep -oE '(^|[ ,])--?[a-zA-Z][a-zA-Z-]*' | sed -E 's/^[ ,]//' | sort -u; }
man_options() {  # options named in .TP lines of the OPTIONS section
  awk '/^\.SH OPTIONS/{on=1;next} /^\.SH/{on=0} on' "$1" | sed 's/\\-/-/g' |
    grep -oE '(^|[ "])--?[a-zA-Z][a-zA-Z-]*' | sed -E 's/^[ "]//' | sort -u
}
check() {  # $1 = man page, rest = command
  local page=$1; shift
  local h m
  h=$(help_options "$@")
  m=$(man_options "$page")
  for o in $h; do grep -qx -- "$o" <<<"$m" || { echo "$page: --help of '$*' has $o, man page does not"; fail=1; }; done
  for o in $m; do grep -qx -- "$o" <<<"$h" || { echo "$page: man page has $o, --help of '$*' does not"; fail=1; }; done
}
check "$man_dir/hq-diag.1" "$HQ_DIAG"
check "$man_dir/hq.1" "$HQ"
# subcommands: each listed in hq --help has a section in hq.1
for cmd in $("$HQ" --help | awk '/^commands:/{on=1;next} /^$/{on=0} on{print $1}'); do
  grep -q "^\.BI \"$cmd " "$man_dir/hq.1" || { echo "hq.1: command '$cmd' undocumented"; fail=1; }
  "$HQ" "$cmd" --help >/dev/null || { echo "hq $cmd --help failed"; fail=1; }
done
[ $fail -eq 0 ] && echo "help and man pages agree"
exit $fail

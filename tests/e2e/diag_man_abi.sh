#!/usr/bin/env bash
# hq-inspector(3) documents the whole plugin ABI of include/hq/inspector.h: every slot of the
# context table, every field of the descriptor and of hq_inspector_layer_t, every HQ_NEEDS_* flag
# and every HQ_DIAG_* level
# (the header is append-only; a slot added without its man-page entry fails here).
set -euo pipefail
header="$HQ_SOURCE_DIR/include/hq/inspector.h"
page="$HQ_SOURCE_DIR/man/hq-inspector.3"
text=$(sed 's/\\-/-/g; s/\\f[BIRP]//g; s/\\e/\\/g' "$page")
fail=0
names() { # struct opening line regex, closing line regex: the member names declared between
  awk -v open="$1" -v stop="$2" '
    $0 ~ open {on=1; next}
    on && $0 ~ stop {on=0}
    on && /\(\*[a-z0-9_]+\)/ {match($0, /\(\*[a-z0-9_]+\)/); print substr($0, RSTART+2, RLENGTH-3); next}
    on && /^    [a-z0-9_ ]+[ *]+[a-z_]+;/ {sub(/;.*/, ""); n=split($0, w, /[ *]+/); print w[n]}' "$header"
}
slots=$(names '^struct hq_inspector_context \{' '^\};')
fields=$(names '^typedef struct hq_inspector \{' '^\} hq_inspector_t;')
layer_fields=$(names '^typedef struct hq_inspector_layer \{' '^\} hq_inspector_layer_t;')
flags=$(grep -oE '\bHQ_(NEEDS|DIAG)_[A-Z_]*[A-Z]\b' "$header" | grep -v '^HQ_DIAG_H$' | sort -u)
[ "$(wc -w <<<"$slots")" -ge 44 ] || { echo "parsed only $(wc -w <<<"$slots") context slots"; exit 1; }
[ "$(wc -w <<<"$fields")" -ge 9 ] || { echo "parsed only $(wc -w <<<"$fields") descriptor fields"; exit 1; }
[ "$(wc -w <<<"$layer_fields")" -ge 17 ] || { echo "parsed only $(wc -w <<<"$layer_fields") layer fields"; exit 1; }
for word in $slots $fields $layer_fields $flags; do
  grep -qw -- "$word" <<<"$text" || { echo "hq-inspector(3) does not mention $word"; fail=1; }
done
[ $fail -eq 0 ] && echo "hq-inspector(3) covers $(wc -w <<<"$slots") slots, $(wc -w <<<"$fields") fields, $(wc -w <<<"$layer_fields") layer fields, $(wc -w <<<"$flags") flags"
exit $fail

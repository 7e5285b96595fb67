#!/usr/bin/env bash
# `cmake --install` puts binaries, libhq, public headers, man pages and hq.pc in the prefix; a
# program built out of tree with `pkg-config --cflags --libs hq` links and runs against it, the
# runtime's hqrt_* API included (hq.pc links libhqrt too); libhq exports only hq_* symbols: the
# deploy runtime inside it keeps its API local, libhqrt.so is the one library that exports it.
# The installed hq and hq-diag run with an empty environment (no LD_LIBRARY_PATH, no ldconfig):
# they and the inspector modules find libhq through their RUNPATH ($ORIGIN/...).
set -euo pipefail
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$HQ_BUILD_DIR" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name hq.pc | head -n1)")/..
for f in bin/hq bin/hq-diag include/hq/hq.h include/hq/archive.h share/man/man1/hq.1 \
         share/man/man1/hq-diag.1 share/man/man5/hq-har.5 share/man/man5/hq-alls.5 \
         share/bash-completion/completions/hq share/bash-completion/completions/hq-diag; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
ls "$libdir"/libhq.so* >/dev/null

# Installed programs run as they are: no LD_LIBRARY_PATH, no ldconfig, not even a PATH.
env -i "$prefix/bin/hq" --version | grep -q '^hq ' || { echo "installed hq --version failed"; exit 1; }
env -i "$prefix/bin/hq-diag" --help | grep -q '^usage: hq-diag' ||
  { echo "installed hq-diag --help failed"; exit 1; }
listed=$(env -i "$prefix/bin/hq-diag" --list-inspectors)
grep -qF "$prefix/" <<<"$listed" || { echo "installed hq-diag found no installed inspector:"; echo "$listed"; exit 1; }
# the installed completion registers both programs
bash -c 'source "$1/hq" && source "$1/hq-diag" && complete -p hq hq-diag' _ \
  "$prefix/share/bash-completion/completions" >/dev/null || { echo "installed completion broken"; exit 1; }
modules=$(find "$prefix" -path '*/hq/inspectors/*.so')
[ -n "$modules" ] || { echo "no inspector module installed"; exit 1; }
for f in "$prefix/bin/hq" "$prefix/bin/hq-diag" $modules; do
  # shellcheck disable=SC2016 # a literal $ORIGIN
  readelf -d "$f" | grep -q 'R.*PATH.*\$ORIGIN' || { echo "$f: no \$ORIGIN RUNPATH"; exit 1; }
  if env -i /usr/bin/ldd "$f" | grep -E 'libhq(rt)?\.so.*not found'; then
    echo "$f does not find libhq by itself"; exit 1
  fi
done

bad=$(nm -D --defined-only "$libdir/libhq.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^hq_' | grep -v '^_' || true)
[ -z "$bad" ] || { echo "libhq exports non-API symbols:"; echo "$bad"; exit 1; }

cat >"$prefix/use_hq.c" <<'C'
#include <hq/hq.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    if (hq_archive_open(argv[1], &archive, &err) != HQ_OK) { fprintf(stderr, "%s\n", err.message); return 1; }
    printf("%s %s %s\n", hq_version(), hq_archive_net_name(archive), hqrt_status_text(HQRT_OK));
    int ok = !strcmp(hq_archive_net_name(archive), "tiny");
    hq_archive_destroy(archive);
    return ok ? 0 : 1;
}
C
extra=""
grep -q 'HQ_SANITIZE:BOOL=ON' "$HQ_BUILD_DIR/CMakeCache.txt" && extra="-fsanitize=address,undefined"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 $extra "$prefix/use_hq.c" -o "$prefix/use_hq" $(pkg-config --cflags --libs hq)
LD_LIBRARY_PATH="$libdir" "$prefix/use_hq" "$HQ_SOURCE_DIR/samples/tiny.har"
echo "installed tree works"

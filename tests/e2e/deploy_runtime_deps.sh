#!/usr/bin/env bash
# libhqrt stands alone: it links libc (and pthreads) only — no cJSON, zlib, protobuf or libhq —
# and exports exactly the public hqrt_* API of include/hq/hqrt.h.
set -euo pipefail
lib="$HQ_BUILD_DIR/libhqrt.so"
[ -f "$lib" ] || { echo "no $lib"; exit 1; }
# The libraries it asks for itself (DT_NEEDED), not ldd's closure: a sanitizer build's libasan
# pulls libm and libstdc++ in on its own.
deps=$(readelf -d "$lib" | awk '/\(NEEDED\)/ {print $NF}')
for bad in cjson libz protobuf libhq.so libm.so; do
  if grep -q "$bad" <<<"$deps"; then echo "libhqrt links $bad:"; echo "$deps"; exit 1; fi
done
exports=$(nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | sort)
expected=$(printf '%s\n' hqrt_close hqrt_dequantize hqrt_describe hqrt_open_file \
  hqrt_open_memory hqrt_quantize hqrt_run hqrt_status_text hqrt_set_profiling hqrt_op_profile |
  sort)
if [ "$exports" != "$expected" ]; then
  echo "libhqrt exports differ from the public API:"; diff <(echo "$expected") <(echo "$exports"); exit 1
fi
# the runtime-only test binary must not pull libhq either
if readelf -d "$HQ_BUILD_DIR/test_hqrt_standalone" | grep -q 'libhq\.so'; then
  echo "test_hqrt_standalone links libhq"; exit 1
fi
echo "libhqrt: libc/pthread only, $(wc -l <<<"$exports") exported functions"

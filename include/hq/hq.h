/* hq.h — umbrella header of libhq: includes every public header of include/hq/ (the unit test
 * test_public_headers builds a program that includes only this one). The hqrt_* functions of
 * hqrt.h live in libhqrt: link both (pkg-config hq). */
#ifndef HQ_HQ_H
#define HQ_HQ_H

#include "hq/common.h"
#include "hq/tensor.h"
#include "hq/layer_types.h"
#include "hq/graph.h"
#include "hq/script.h"
#include "hq/archive.h"
#include "hq/dataset.h"
#include "hq/parse.h"
#include "hq/emulate.h"
#include "hq/quantize.h"
#include "hq/deploy.h"
#include "hq/hqrt.h"
#include "hq/inspector.h"
#include "hq/diag.h"

#endif

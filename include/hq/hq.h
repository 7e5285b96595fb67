/* hq.h — umbrella header of libhq. */
#ifndef HQ_HQ_H
#define HQ_HQ_H

#include "hq/common.h"
#include "hq/tensor.h"
#include "hq/graph.h"
#include "hq/script.h"
#include "hq/archive.h"
#include "hq/dataset.h"
#include "hq/parse.h"
#include "hq/emulate.h"
#include "hq/deploy.h"
#include "hq/hqrt.h"
#include "hq/inspector.h"
#include "hq/diag.h"

#endif

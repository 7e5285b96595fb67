/* hq.h — umbrella header of libhq. */
#ifndef HQ_HQ_H
#define HQ_HQ_H

#include "hq/common.h"
#include "hq/tensor.h"
#include "hq/graph.h"
#include "hq/script.h"
#include "hq/archive.h"
#include "hq/dataset.h"

#endif

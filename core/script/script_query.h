/* script_query.h — what other parts of libhq may read of a script beyond the public API in
 * hq/script.h. Internal to libhq; prefix hqi_. */
#ifndef HQ_CORE_SCRIPT_QUERY_H
#define HQ_CORE_SCRIPT_QUERY_H

#include "hq/script.h"

/* The name the script was parsed under (the file name its error messages start with), owned by
 * the script; NULL for a NULL script. */
const char *hqi_script_name(const hq_script_t *script);

#endif

/* fuzz_hn.c — libFuzzer target for the `.hn` reader: parse, and when it parses, write it back,
 * re-read the result (it must parse and serialize identically), clone it and finalize again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hq/graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hq_graph_t *g = NULL;
    hq_error_t err;
    if (hq_graph_from_json((const char *)data, size, "fuzz.hn", &g, &err) != HQ_OK)
        return 0;
    char *json = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    if (hq_graph_to_json(g, &json, &len, &err) != HQ_OK)
        abort();
    hq_graph_t *h = NULL;
    if (hq_graph_from_json(json, len, "fuzz2.hn", &h, &err) != HQ_OK)
        abort(); /* what we write we must read */
    if (hq_graph_to_json(h, &again, &len2, &err) != HQ_OK || len != len2 ||
        memcmp(json, again, len) != 0)
        abort(); /* and it must be a fixed point */
    hq_graph_t *c = NULL;
    if (hq_graph_clone(h, &c, &err) == HQ_OK) {
        if (hq_graph_finalize(c, "clone", &err) != HQ_OK)
            abort();
        int count = 0;
        const int *topo = hq_graph_topo_order(c, &count);
        for (int i = 0; i < count; i++)
            (void)hq_layer_param_count(hq_graph_layer(c, topo[i]));
    }
    hq_graph_destroy(c);
    free(json);
    free(again);
    hq_graph_destroy(g);
    hq_graph_destroy(h);
    return 0;
}

/* fuzz_onnx.c — libFuzzer target for the ONNX importer: parse the bytes as a model; when that
 * succeeds, the archive must serialize and its graph must read back. */
#include <stdint.h>
#include <stdlib.h>

#include "hq/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hq_archive_t *archive = NULL;
    hq_error_t err;
    if (hq_parse_onnx_memory(data, size, "fuzz.onnx", NULL, &archive, &err) != HQ_OK)
        return 0;
    void *bytes = NULL;
    size_t len = 0;
    if (hq_archive_save_memory(archive, &bytes, &len, &err) != HQ_OK)
        abort(); /* a parsed model must be writable */
    hq_archive_t *again = NULL;
    hq_graph_t *graph = NULL;
    if (hq_archive_open_memory(bytes, len, "fuzz.har", &again, &err) != HQ_OK ||
        hq_archive_graph(again, &graph, &err) != HQ_OK)
        abort(); /* and readable */
    hq_archive_destroy(again);
    free(bytes);
    hq_archive_destroy(archive);
    return 0;
}

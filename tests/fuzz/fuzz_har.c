/* fuzz_har.c — opens a model archive held in memory, touches its graph, params and script, and
 * saves it again; an archive saved without changes must reopen. */
#include <stdint.h>
#include <stdlib.h>

#include "hq/archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hq_archive_t *archive = NULL;
    hq_error_t err;
    if (hq_archive_open_memory(data, size, "fuzz.har", &archive, &err) != HQ_OK)
        return 0;
    void *bytes = NULL;
    size_t len = 0;
    /* untouched: the saved archive must open again */
    if (hq_archive_save_memory(archive, &bytes, &len, &err) == HQ_OK) {
        hq_archive_t *again = NULL;
        if (hq_archive_open_memory(bytes, len, "again.har", &again, &err) != HQ_OK)
            abort();
        hq_archive_destroy(again);
    }
    free(bytes);
    bytes = NULL;

    hq_graph_t *graph = NULL;
    (void)hq_archive_graph(archive, &graph, &err);
    for (int kind = HQ_PARAMS_NATIVE; kind <= HQ_PARAMS_QUANTIZED; kind++) {
        hq_npz_t *params = NULL;
        (void)hq_archive_params(archive, (hq_params_kind_t)kind, &params, &err);
    }
    hq_script_t *script = NULL;
    (void)hq_archive_script(archive, &script, &err);
    for (size_t i = 0; i < hq_archive_member_count(archive); i++) {
        const void *member = NULL;
        size_t member_len = 0;
        (void)hq_archive_member(archive, hq_archive_member_name(archive, i), &member, &member_len,
                                &err);
    }
    if (hq_archive_save_memory(archive, &bytes, &len, &err) == HQ_OK) {
        hq_archive_t *again = NULL;
        if (hq_archive_open_memory(bytes, len, "again.har", &again, &err) == HQ_OK)
            hq_archive_destroy(again);
    }
    free(bytes);
    hq_archive_destroy(archive);
    return 0;
}

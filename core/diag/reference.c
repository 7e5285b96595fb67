/* reference.c — `hq-diag --reference ref.npz`: the original framework's outputs on the diagnosis
 * samples, compared with the native emulation of the archive (the network as hq translated it,
 * with the script's modifications) in one pass over the samples. The output SQNR of that
 * comparison is the headline's stage "native vs reference", which says whether the translation
 * (parsing, the model modifications) already changed the function before any optimization. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/diag_internal.h"
#include "util/util.h"

struct hqi_diag_reference {
    char *path;
    int output_count;
    double **values;        /* [outputs] the reference of every sample the run uses, float64 */
    int64_t *sizes;         /* [outputs] floats per sample */
    double *signal, *error; /* [outputs] sums over the samples */
    bool ran;               /* the pass completed for every output */
};

void hqi_diag_free_reference(hqi_diag_reference_t *r)
{
    if (!r)
        return;
    for (int k = 0; r->values && k < r->output_count; k++)
        free(r->values[k]);
    free(r->values);
    free(r->sizes);
    free(r->signal);
    free(r->error);
    free(r->path);
    free(r);
}

/* Whether `key` names output layer `layer`: its scoped, bare or original name, or an original
 * name of the layer that feeds it (ONNX graphs name their outputs after the producing node). */
static bool names_output(const hq_graph_t *graph, int layer, const char *key)
{
    const hq_layer_t *l = hq_graph_layer(graph, layer);
    if (!strcmp(key, l->name) || !strcmp(key, l->bare_name))
        return true;
    for (int i = 0; i < l->original_name_count; i++)
        if (!strcmp(key, l->original_names[i]))
            return true;
    if (l->input_count == 1) {
        const hq_layer_t *feed = hq_graph_layer(graph, l->inputs[0]);
        for (int i = 0; i < feed->original_name_count; i++)
            if (!strcmp(key, feed->original_names[i]))
                return true;
    }
    return false;
}

/* "[N, 1, 11]" into buf. */
static void shape_text(const int64_t *dims, int ndim, char *buf, size_t size)
{
    size_t at = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (at < size)
        snprintf(buf + at, size - at, "]");
}

/* Per-sample shapes agree once size-1 dimensions are left out ([N, 11] and [N, 1, 1, 11]). */
static bool same_sample_shape(const hq_tensor_t *t, hq_shape_t out)
{
    int64_t a[HQ_TENSOR_MAX_DIMS], b[HQ_TENSOR_MAX_DIMS];
    int na = 0, nb = 0;
    for (int i = 1; i < t->ndim; i++)
        if (t->shape[i] != 1)
            a[na++] = t->shape[i];
    for (int i = 1; i < out.ndim; i++)
        if (out.dims[i] != 1)
            b[nb++] = out.dims[i];
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* The reference's array for output k (by name, else by position), checked; its first `samples`
 * samples as float64 into r->values[k]. */
static hq_status_t take_output(hq_diag_t *d, hqi_diag_reference_t *r, const hq_npz_t *set,
                               bool by_order, int k, int layer, hq_error_t *err)
{
    const hq_layer_t *l = hq_graph_layer(d->graph, layer);
    const hq_tensor_t *t = NULL;
    const char *key = NULL;
    for (size_t i = 0; i < hq_npz_count(set) && !t; i++)
        if (by_order ? (int)i == k : names_output(d->graph, layer, hq_npz_key(set, i))) {
            t = hq_npz_get_index(set, i);
            key = hq_npz_key(set, i);
        }
    if (!t)
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: no array for output %s (keys: the output's scoped, bare or original "
                         "name, or one array per output in output order)",
                         r->path, l->bare_name);
    hq_shape_t out = hq_layer_port_shape(l, 0);
    char have[160], want[160];
    shape_text(t->shape, t->ndim, have, sizeof have);
    out.dims[0] = t->shape[0]; /* the batch: hq's output shapes leave it open */
    shape_text(out.dims, out.ndim, want, sizeof want);
    if (t->ndim < 1 || !same_sample_shape(t, out))
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: array '%s' has shape %s; output %s needs %s (hq's outputs are "
                         "NHWC: transpose NCHW outputs)",
                         r->path, key, have, l->bare_name, want);
    if (t->shape[0] < d->samples)
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: array '%s' holds %lld sample(s); the diagnosis uses %lld (give the "
                         "outputs of the same samples, or -c %lld)",
                         r->path, key, (long long)t->shape[0], (long long)d->samples,
                         (long long)t->shape[0]);
    hq_tensor_t *converted = NULL;
    hq_status_t st = hq_tensor_convert(t, HQ_DTYPE_FLOAT64, &converted, err);
    if (st != HQ_OK)
        return hqi_error(err, HQ_ERR_INVALID, "%s: array '%s': %s", r->path, key, err->message);
    r->sizes[k] = hq_tensor_count(converted) / t->shape[0];
    size_t bytes = (size_t)(r->sizes[k] * d->samples) * sizeof(double);
    r->values[k] = malloc(bytes ? bytes : 1);
    if (!r->values[k]) {
        hq_tensor_destroy(converted);
        return hqi_nomem(err, r->path);
    }
    memcpy(r->values[k], converted->data, bytes);
    hq_tensor_destroy(converted);
    for (int64_t i = 0; i < r->sizes[k] * d->samples; i++)
        if (r->values[k][i] != r->values[k][i] || r->values[k][i] - r->values[k][i] != 0)
            return hqi_error(err, HQ_ERR_INVALID, "%s: array '%s' holds NaN or Inf at sample %lld",
                             r->path, key, (long long)(i / r->sizes[k]));
    return HQ_OK;
}

hq_status_t hq_diag_set_reference(hq_diag_t *d, const char *path, hq_error_t *err)
{
    if (!d->archive)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: open a model before --reference");
    if (!d->dataset)
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: --reference compares outputs on the diagnosis samples: give them "
                         "with -d DATASET",
                         path);
    int count;
    const int *outputs = hq_graph_outputs(d->graph, &count);
    hqi_diag_reference_t *r = calloc(1, sizeof *r);
    if (!r)
        return hqi_nomem(err, path);
    r->path = hqi_strdup(path);
    r->output_count = count;
    r->values = calloc((size_t)count + 1, sizeof *r->values);
    r->sizes = calloc((size_t)count + 1, sizeof *r->sizes);
    r->signal = calloc((size_t)count + 1, sizeof *r->signal);
    r->error = calloc((size_t)count + 1, sizeof *r->error);
    hq_npz_t *set = NULL;
    hq_status_t st = !r->path || !r->values || !r->sizes || !r->signal || !r->error
                         ? hqi_nomem(err, path)
                         : hq_npz_read_set_file(path, &set, err);
    /* by name when every output has a named array, else in order when the counts agree */
    bool by_order = false;
    for (int k = 0; st == HQ_OK && k < count; k++) {
        bool named = false;
        for (size_t i = 0; i < hq_npz_count(set) && !named; i++)
            named = names_output(d->graph, outputs[k], hq_npz_key(set, i));
        by_order = by_order || !named;
    }
    if (st == HQ_OK && by_order && hq_npz_count(set) != (size_t)count)
        st = hqi_error(err, HQ_ERR_INVALID,
                       "%s: %zu array(s) for %d output(s), and their keys do not name the outputs "
                       "(first output: %s)",
                       path, hq_npz_count(set), count, hq_graph_layer(d->graph, outputs[0])->name);
    for (int k = 0; st == HQ_OK && k < count; k++)
        st = take_output(d, r, set, by_order, k, outputs[k], err);
    hq_npz_destroy(set);
    if (st != HQ_OK) {
        hqi_diag_free_reference(r);
        return st;
    }
    hqi_diag_free_reference(d->reference);
    d->reference = r;
    return HQ_OK;
}

void hqi_diag_reference_pass(hq_diag_t *d)
{
    hqi_diag_reference_t *r = d->reference;
    if (!r || !d->dataset)
        return;
    hq_error_t err = {0};
    hq_emulator_t *emu = NULL;
    hq_status_t st = hqi_diag_emulator(d, HQ_TARGET_NATIVE, &emu, &err);
    int64_t batch = d->options.batch_size;
    int in_count = 0;
    hq_graph_inputs(d->graph, &in_count);
    float **inputs = calloc((size_t)in_count + 1, sizeof *inputs);
    float **outputs = calloc((size_t)r->output_count + 1, sizeof *outputs);
    if (st == HQ_OK && (!inputs || !outputs))
        st = hqi_nomem(&err, "hq-diag reference pass");
    for (int i = 0; st == HQ_OK && i < in_count; i++)
        if (!(inputs[i] = malloc((size_t)(batch * hqi_diag_input_size(d, i)) * sizeof(float))))
            st = hqi_nomem(&err, "hq-diag reference pass");
    for (int k = 0; st == HQ_OK && k < r->output_count; k++) {
        if (hq_emulator_output_size(emu, k) != r->sizes[k])
            st = hqi_error(&err, HQ_ERR_INVALID,
                           "%s: output %d has %lld values per sample, the "
                           "model %lld",
                           r->path, k, (long long)r->sizes[k],
                           (long long)hq_emulator_output_size(emu, k));
        else if (!(outputs[k] = malloc((size_t)(batch * r->sizes[k]) * sizeof(float))))
            st = hqi_nomem(&err, "hq-diag reference pass");
    }
    for (int64_t first = 0; st == HQ_OK && first < d->samples; first += batch) {
        int64_t n = d->samples - first < batch ? d->samples - first : batch;
        st = hqi_diag_read_batch(d, first, n, inputs, &err);
        if (st == HQ_OK)
            st = hq_emulator_run(emu, n, (const float *const *)inputs, outputs, NULL, NULL, &err);
        for (int k = 0; st == HQ_OK && k < r->output_count; k++) {
            const double *ref = r->values[k] + first * r->sizes[k];
            for (int64_t i = 0; i < n * r->sizes[k]; i++) {
                double e = outputs[k][i] - ref[i];
                r->signal[k] += ref[i] * ref[i];
                r->error[k] += e * e;
            }
        }
        hq_diag_event_t ev = {.kind = HQ_DIAG_EVENT_PROGRESS,
                              .text = "Comparing with the reference",
                              .done = first + n,
                              .total = d->samples};
        if (st == HQ_OK && d->options.on_event)
            d->options.on_event(d->options.event_user, &ev);
    }
    for (int i = 0; inputs && i < in_count; i++)
        free(inputs[i]);
    for (int k = 0; outputs && k < r->output_count; k++)
        free(outputs[k]);
    free(inputs);
    free(outputs);
    r->ran = st == HQ_OK;
    if (st != HQ_OK)
        hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_WARNING, NULL,
                       "Output SQNR against the reference %s not measured: %s", r->path,
                       err.message);
}

bool hqi_diag_reference_ran(const hq_diag_t *d)
{
    int count = 0;
    if (d->graph)
        hq_graph_outputs(d->graph, &count);
    return d->reference && d->reference->ran && d->reference->output_count == count;
}

double hqi_diag_reference_sqnr(const hq_diag_t *d, int output)
{
    return hqi_diag_sqnr_db(d->reference->signal[output], d->reference->error[output]);
}

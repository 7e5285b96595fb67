/* holdout.c — how much an optimization algorithm bought: the output SQNR of the quantized network
 * against fp_optimized, before and after it, on samples the calibration did not see when the
 * dataset has any (the last ones, up to HQI_HOLDOUT_MAX), else on calibration samples. The float
 * outputs are computed once; each measurement runs the quantized network only. The dB formula is
 * the noise analysis' (hqi_noise_db), so a gain and a stored SNR are the same quantity. */
#include <stdlib.h>
#include <string.h>

#include "emulate/noise.h"
#include "hq/emulate.h"
#include "quant/calibrate.h"
#include "quant/holdout.h"
#include "util/util.h"

hqi_holdout_t hqi_holdout_split(int64_t available, int64_t calibset, int64_t most)
{
    hqi_holdout_t h = {0};
    if (available < 0)
        available = 0;
    if (calibset > available || calibset < 0)
        calibset = available;
    if (most < 1)
        most = 1;
    int64_t beyond = available - calibset;
    if (beyond > 0) {
        h.count = beyond < most ? beyond : most;
        h.first = available - h.count;
        h.usable = available - h.count;
    } else {
        h.count = available < most ? available : most;
        h.first = 0;
        h.on_calibration = true;
        h.usable = available;
    }
    return h;
}

int64_t hqi_holdout_images(const hqi_holdout_t *split, int64_t wanted)
{
    return wanted < split->usable ? wanted : split->usable;
}

struct hqi_sqnr_probe {
    const hq_graph_t *graph;
    hq_dataset_t *data;
    int64_t first, count, batch;
    int threads;
    int in_count, out_count;
    int *source;       /* [in_count] the dataset input of each graph input */
    int64_t *in_size;  /* [in_count] floats per sample */
    int64_t *out_size; /* [out_count] floats per sample */
    float **inputs;    /* [in_count] one batch */
    float **reference; /* [out_count] count samples of fp_optimized outputs */
    float **outputs;   /* [out_count] one batch of the quantized outputs */
};

void hqi_sqnr_probe_destroy(hqi_sqnr_probe_t *p)
{
    if (!p)
        return;
    for (int k = 0; p->inputs && k < p->in_count; k++)
        free(p->inputs[k]);
    for (int o = 0; o < p->out_count; o++) {
        if (p->reference)
            free(p->reference[o]);
        if (p->outputs)
            free(p->outputs[o]);
    }
    free(p->inputs);
    free(p->reference);
    free(p->outputs);
    free(p->source);
    free(p->in_size);
    free(p->out_size);
    free(p);
}

/* Reads samples [first, first + b) of every input into the probe's input buffers. */
static hq_status_t read_batch(hqi_sqnr_probe_t *p, int64_t first, int64_t b, hq_error_t *err)
{
    hq_status_t st = HQ_OK;
    for (int k = 0; k < p->in_count && st == HQ_OK; k++)
        st = hq_dataset_read(p->data, p->source[k], first, b, p->inputs[k], err);
    return st;
}

static hq_status_t alloc_floats(float **out, int64_t count, hq_error_t *err)
{
    size_t bytes;
    if (count < 1 || !hqi_mul_size((size_t)count, sizeof(float), &bytes) || !(*out = malloc(bytes)))
        return hqi_nomem(err, "output SQNR");
    return HQ_OK;
}

hq_status_t hqi_sqnr_probe_create(const hq_graph_t *graph, const hq_npz_t *fpo, hq_dataset_t *data,
                                  char *const *input_names, const hqi_holdout_t *split,
                                  int64_t batch_size, int threads, hqi_sqnr_probe_t **out,
                                  hq_error_t *err)
{
    *out = NULL;
    if (split->count < 1)
        return hqi_error(err, HQ_ERR_INVALID, "output SQNR: no samples to measure on");
    hqi_sqnr_probe_t *p = calloc(1, sizeof *p);
    if (!p)
        return hqi_nomem(err, "output SQNR");
    p->graph = graph;
    p->data = data;
    p->first = split->first;
    p->count = split->count;
    p->batch = batch_size < 1 ? 8 : batch_size > p->count ? p->count : batch_size;
    p->threads = threads;
    hq_graph_inputs(graph, &p->in_count);
    hq_graph_outputs(graph, &p->out_count);
    p->source = calloc((size_t)p->in_count + 1, sizeof *p->source);
    p->in_size = calloc((size_t)p->in_count + 1, sizeof *p->in_size);
    p->out_size = calloc((size_t)p->out_count + 1, sizeof *p->out_size);
    p->inputs = calloc((size_t)p->in_count + 1, sizeof *p->inputs);
    p->reference = calloc((size_t)p->out_count + 1, sizeof *p->reference);
    p->outputs = calloc((size_t)p->out_count + 1, sizeof *p->outputs);
    hq_status_t st =
        p->source && p->in_size && p->out_size && p->inputs && p->reference && p->outputs
            ? HQ_OK
            : hqi_nomem(err, "output SQNR");
    hq_emulator_t *emu = NULL;
    if (st == HQ_OK)
        st = hqi_calibration_sources(graph, data, input_names, p->source, err);
    if (st == HQ_OK)
        st = hq_emulator_create(graph, fpo, HQ_TARGET_FP_OPTIMIZED, "fp_optimized params", &emu,
                                err);
    if (st == HQ_OK && threads > 0)
        st = hq_emulator_set_threads(emu, threads, err);
    for (int k = 0; k < p->in_count && st == HQ_OK; k++) {
        p->in_size[k] = hq_emulator_input_size(emu, k);
        st = alloc_floats(&p->inputs[k], p->in_size[k] * p->batch, err);
    }
    for (int o = 0; o < p->out_count && st == HQ_OK; o++) {
        p->out_size[o] = hq_emulator_output_size(emu, o);
        st = alloc_floats(&p->reference[o], p->out_size[o] * p->count, err);
        if (st == HQ_OK)
            st = alloc_floats(&p->outputs[o], p->out_size[o] * p->batch, err);
    }
    float **at = calloc((size_t)p->out_count + 1, sizeof *at);
    if (st == HQ_OK && !at)
        st = hqi_nomem(err, "output SQNR");
    for (int64_t done = 0; done < p->count && st == HQ_OK; done += p->batch) {
        int64_t b = p->count - done < p->batch ? p->count - done : p->batch;
        for (int o = 0; o < p->out_count; o++)
            at[o] = p->reference[o] + done * p->out_size[o];
        st = read_batch(p, p->first + done, b, err);
        if (st == HQ_OK)
            st = hq_emulator_run(emu, b, (const float *const *)p->inputs, at, NULL, NULL, err);
    }
    free(at);
    hq_emulator_destroy(emu);
    if (st != HQ_OK) {
        hqi_sqnr_probe_destroy(p);
        return st;
    }
    *out = p;
    return HQ_OK;
}

hq_status_t hqi_sqnr_probe_measure(hqi_sqnr_probe_t *p, const hq_npz_t *q, double *db,
                                   hq_error_t *err)
{
    hq_emulator_t *emu = NULL;
    hq_status_t st =
        hq_emulator_create(p->graph, q, HQ_TARGET_QUANTIZED, "quantized params", &emu, err);
    if (st == HQ_OK && p->threads > 0)
        st = hq_emulator_set_threads(emu, p->threads, err);
    double *signal = calloc((size_t)p->out_count + 1, sizeof *signal);
    double *error = calloc((size_t)p->out_count + 1, sizeof *error);
    if (st == HQ_OK && (!signal || !error))
        st = hqi_nomem(err, "output SQNR");
    for (int64_t done = 0; done < p->count && st == HQ_OK; done += p->batch) {
        int64_t b = p->count - done < p->batch ? p->count - done : p->batch;
        st = read_batch(p, p->first + done, b, err);
        if (st == HQ_OK)
            st = hq_emulator_run(emu, b, (const float *const *)p->inputs, p->outputs, NULL, NULL,
                                 err);
        for (int o = 0; o < p->out_count && st == HQ_OK; o++) {
            const float *x = p->reference[o] + done * p->out_size[o];
            const float *y = p->outputs[o];
            for (int64_t i = 0; i < b * p->out_size[o]; i++) {
                double d = (double)x[i] - (double)y[i];
                signal[o] += (double)x[i] * x[i];
                error[o] += d * d;
            }
        }
    }
    if (st == HQ_OK) {
        *db = 200.0;
        for (int o = 0; o < p->out_count; o++) {
            double v = hqi_noise_db(signal[o], error[o]);
            *db = v < *db ? v : *db;
        }
    }
    free(signal);
    free(error);
    hq_emulator_destroy(emu);
    return st;
}

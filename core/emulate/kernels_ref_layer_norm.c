/* kernels_ref_layer_norm.c — the float reference kernel of layer_norm: each row (one position's
 * channels) normalized to mean 0 and variance 1, then scaled and shifted per channel. */
#include <math.h>
#include <stddef.h>

#include "emulate/kernels_ref.h"
#include "util/util.h"

hq_status_t hqi_ref_layer_norm(int64_t rows, int64_t channels, const float *input,
                               const float *gamma, const float *beta, float epsilon,
                               float *output, hq_error_t *err)
{
    static const char kernel[] = "layer_norm";
    int64_t count;
    hq_shape_t shape = {2, {rows, channels}};
    hq_status_t st;
    if ((st = hqi_ref_shape_count(&shape, kernel, "input", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    if (!(epsilon >= 0.0f) || !isfinite(epsilon))
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: epsilon %g must be >= 0 and finite", kernel,
                         (double)epsilon);
    for (int64_t r = 0; r < rows; r++) {
        const float *x = input + r * channels;
        float *y = output + r * channels;
        /* two passes in double: the mean first, then the variance about it (no cancellation) */
        double sum = 0;
        for (int64_t c = 0; c < channels; c++)
            sum += x[c];
        const double mean = sum / (double)channels;
        double squares = 0;
        for (int64_t c = 0; c < channels; c++)
            squares += ((double)x[c] - mean) * ((double)x[c] - mean);
        const double var = squares / (double)channels;
        const double inv = 1.0 / sqrt(var + (double)epsilon);
        if (!isfinite(inv))
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "%s: row %lld has variance 0 and epsilon is 0: no normalized value",
                             kernel, (long long)r);
        for (int64_t c = 0; c < channels; c++) {
            double v = ((double)x[c] - mean) * inv;
            y[c] = (float)(v * (gamma ? (double)gamma[c] : 1.0) + (beta ? (double)beta[c] : 0.0));
        }
    }
    return HQ_OK;
}

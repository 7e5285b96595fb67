/* kernels_ref_layer_norm.c — the float reference kernels of the transformer-style layers:
 * layer_norm (each row, one position's channels, normalized to mean 0 and variance 1, then
 * scaled and shifted per channel) and matmul (a matrix product per channel). */
#include <math.h>
#include <stddef.h>

#include "emulate/kernels_ref.h"
#include "util/util.h"

hq_status_t hqi_ref_layer_norm(int64_t rows, int64_t channels, const float *input,
                               const float *gamma, const float *beta, float epsilon, float *output,
                               hq_error_t *err)
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

hq_status_t hqi_ref_matmul(const hq_shape_t *a_shape, const float *a, const hq_shape_t *b_shape,
                           const float *b, float *output, hq_error_t *err)
{
    static const char kernel[] = "matmul";
    int64_t na, nb;
    hq_status_t st;
    if ((st = hqi_ref_shape_count(a_shape, kernel, "a", &na, err)) ||
        (st = hqi_ref_shape_count(b_shape, kernel, "b", &nb, err)) ||
        (st = hqi_ref_need(a, kernel, "a", err)) || (st = hqi_ref_need(b, kernel, "b", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    const int64_t *x = a_shape->dims, *y = b_shape->dims;
    if (a_shape->ndim != 4 || b_shape->ndim != 4 || x[0] != y[0] || x[2] != y[1] || x[3] != y[3])
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: a [N, I, K, C] and b [N, K, J, C] must agree in N, K and C", kernel);
    const int64_t n = x[0], rows = x[1], depth = x[2], cols = y[2], ch = x[3];
    for (int64_t s = 0; s < n; s++)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++)
                for (int64_t c = 0; c < ch; c++) {
                    double sum = 0;
                    for (int64_t k = 0; k < depth; k++)
                        sum += (double)a[((s * rows + i) * depth + k) * ch + c] *
                               (double)b[((s * depth + k) * cols + j) * ch + c];
                    output[((s * rows + i) * cols + j) * ch + c] = (float)sum;
                }
    return HQ_OK;
}

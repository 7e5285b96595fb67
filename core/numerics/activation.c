/* activation.c — the float activation functions (hqi_ref_activate): the float reference kernels
 * apply them, and the quantized builder samples them into lookup tables. */
#include <math.h>

#include "numerics/activation.h"

static float sigmoid(float x)
{
    /* Both branches evaluate exp of a non-positive number: no overflow for any x. */
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

static float relu6(float x)
{
    return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
}

float hqi_ref_activate(const hqi_ref_act_t *act, float x, int64_t channel)
{
    switch (act->type) {
    case HQ_ACT_LINEAR:
        return x;
    case HQ_ACT_RELU:
        return x < 0.0f ? 0.0f : x;
    case HQ_ACT_RELU6:
        return relu6(x);
    case HQ_ACT_LEAKY:
        return x >= 0.0f ? x : act->alpha * x;
    case HQ_ACT_PRELU:
        return x >= 0.0f ? x : act->slope[act->slope_count == 1 ? 0 : channel] * x;
    case HQ_ACT_SIGMOID:
        return sigmoid(x);
    case HQ_ACT_SILU:
        return x * sigmoid(x);
    case HQ_ACT_HARDSWISH:
        return x * relu6(x + 3.0f) / 6.0f;
    case HQ_ACT_HARDSIGMOID: {
        float y = act->alpha * x + act->beta;
        return y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
    }
    case HQ_ACT_TANH:
        return tanhf(x);
    case HQ_ACT_CLIP:
        return x < act->alpha ? act->alpha : (x > act->beta ? act->beta : x);
    case HQ_ACT_EXP:
        return expf(x);
    case HQ_ACT_GELU:
        /* the exact (erf) form, in the order torch computes it */
        return x * 0.5f * (1.0f + erff(x * 0.70710678118654752f));
    case HQ_ACT_COUNT:
        break;
    }
    return x;
}

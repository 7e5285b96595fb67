/* profile.c — hq_profile: per-layer MACs, weight bytes, precision and an ESTIMATED throughput
 * from hq's per-architecture cost model (the table in graph/hw_arch.c; docs/deploy.md "Cost
 * model"): round figures, not vendor data. They rank layers and show relative costs (what a
 * 16-bit layer costs against an 8-bit one), they do not predict a device's frame rate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/hw_arch.h"
#include "hq/deploy.h"
#include "numerics/qmodel.h"
#include "util/util.h"

hq_status_t hq_cost_model_get(const char *hw_arch, hq_cost_model_t *model, hq_error_t *err)
{
    if (!model)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_cost_model_get: model is NULL");
    const hq_cost_model_t *arch = NULL;
    hq_status_t st = hqi_hw_arch_find(hw_arch, &arch, err);
    if (st == HQ_OK)
        *model = *arch;
    return st;
}

static int64_t per_sample(hq_shape_t s)
{
    int64_t n = 1;
    for (int d = 1; d < s.ndim; d++)
        n *= s.dims[d] > 0 ? s.dims[d] : 1;
    return n;
}

static double mac_cost(const hq_cost_model_t *m, int in_bits, int weight_bits)
{
    bool a16 = in_bits == 16, w16 = weight_bits == 16;
    if (a16 && w16)
        return m->cost_a16_w16;
    if (a16)
        return m->cost_a16_w8;
    if (w16)
        return m->cost_a8_w16;
    return weight_bits == 4 ? m->cost_w4 : 1.0;
}

/* MACs (or MAC-equivalent element operations) and weight count of one layer per frame. */
static void layer_work(const hq_graph_t *g, const hq_layer_t *l, int64_t *macs, int64_t *weights)
{
    const hq_layer_params_t *p = &l->params;
    hq_shape_t os = hq_layer_port_shape(l, 0);
    int64_t out = per_sample(os), in = 0;
    if (l->input_count)
        in = per_sample(hq_layer_port_shape(hq_graph_layer(g, l->inputs[0]), l->input_ports[0]));
    int64_t cout = os.dims[os.ndim - 1];
    *macs = 0;
    *weights = 0;
    switch (l->type) {
    case HQ_LAYER_CONV:
    case HQ_LAYER_DW: {
        int64_t cpg = p->kernel_in > 0 ? p->kernel_in : 1;
        *weights = (int64_t)p->kernel_h * p->kernel_w * cpg * cout;
        *macs = out * p->kernel_h * p->kernel_w * cpg;
        break;
    }
    case HQ_LAYER_DECONV: {
        int64_t cpg = p->kernel_in > 0 ? p->kernel_in : 1;
        *weights = (int64_t)p->kernel_h * p->kernel_w * cpg * cout;
        *macs = in * p->kernel_h * p->kernel_w * (cout / (p->groups > 0 ? p->groups : 1));
        break;
    }
    case HQ_LAYER_DENSE:
        *weights = in * cout;
        *macs = in * cout;
        break;
    case HQ_LAYER_BATCH_NORM:
    case HQ_LAYER_NORMALIZATION:
        *weights = cout;
        *macs = out;
        break;
    case HQ_LAYER_AVGPOOL:
    case HQ_LAYER_MAXPOOL:
        *macs = out * p->kernel_h * p->kernel_w;
        break;
    case HQ_LAYER_GLOBAL_AVG_POOL:
        *macs = in;
        break;
    case HQ_LAYER_EW_ADD:
    case HQ_LAYER_EW_SUB:
    case HQ_LAYER_EW_MULT:
    case HQ_LAYER_EW_MAX:
    case HQ_LAYER_EW_MIN:
    case HQ_LAYER_ACTIVATION:
    case HQ_LAYER_RESIZE:
        *macs = out;
        break;
    default: /* data movement: concat, split, slice, reshape, ... */
        break;
    }
}

static bool listed(const char *const *names, int count, const hq_graph_t *g, int layer)
{
    for (int i = 0; i < count; i++)
        if (names[i] && hq_graph_find(g, names[i]) == layer)
            return true;
    return false;
}

hq_status_t hq_profile(hq_archive_t *archive, const char *hw_arch, const char *const *raise_to_16,
                       int raise_count, hq_profile_t **out, hq_error_t *err)
{
    if (!archive || !out || raise_count < 0 || (raise_count && !raise_to_16))
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_profile: invalid argument");
    *out = NULL;
    const char *name = hq_archive_path(archive);
    if (!name || !*name)
        name = hq_archive_net_name(archive);
    hq_graph_t *g = NULL;
    hq_status_t st = hq_archive_graph(archive, &g, err);
    if (st != HQ_OK)
        return st;
    for (int i = 0; i < raise_count; i++)
        if (hq_graph_find(g, raise_to_16[i]) < 0)
            return hqi_error(err, HQ_ERR_NOT_FOUND, "%s: no layer named '%s'", name,
                             raise_to_16[i]);
    hq_profile_t *pr = calloc(1, sizeof *pr);
    if (!pr)
        return hqi_nomem(err, "profile");
    st = hq_cost_model_get(hw_arch ? hw_arch : hq_archive_hw_arch(archive), &pr->model, err);
    hqi_qmodel_t *qm = NULL;
    if (st == HQ_OK && hq_archive_has_params(archive, HQ_PARAMS_QUANTIZED) &&
        hq_archive_state(archive) >= HQ_STATE_QUANTIZED) {
        hq_npz_t *qp = NULL;
        st = hq_archive_params(archive, HQ_PARAMS_QUANTIZED, &qp, err);
        if (st == HQ_OK)
            st = hqi_qmodel_load(g, qp, name, &qm, err);
    }
    int order_count = 0;
    const int *order = hq_graph_topo_order(g, &order_count);
    if (st == HQ_OK) {
        pr->layers = calloc((size_t)order_count + 1, sizeof *pr->layers);
        if (!pr->layers)
            st = hqi_nomem(err, "profile");
    }
    const hq_cost_model_t *m = &pr->model;
    for (int t = 0; t < order_count && st == HQ_OK; t++) {
        const hq_layer_t *l = hq_graph_layer(g, order[t]);
        if (l->type == HQ_LAYER_INPUT)
            continue;
        hq_layer_cost_t *c = &pr->layers[pr->layer_count++];
        c->layer = order[t];
        c->name = l->name;
        c->type = hq_layer_type_name(l->type);
        int64_t weights = 0;
        layer_work(g, l, &c->macs, &weights);
        c->input_bits = qm && l->input_count ? qm->layers[l->inputs[0]].bits : 8;
        c->output_bits = qm ? qm->layers[order[t]].bits : 8;
        c->weight_bits =
            weights
                ? (qm && qm->layers[order[t]].weight_bits ? qm->layers[order[t]].weight_bits : 8)
                : 0;
        if (listed(raise_to_16, raise_count, g, order[t])) {
            c->input_bits = c->output_bits = 16;
            c->weight_bits = weights ? 16 : 0;
        }
        if (c->weight_bits)
            snprintf(c->precision, sizeof c->precision, "a%d_w%d%s", c->input_bits, c->weight_bits,
                     c->output_bits != c->input_bits ? (c->output_bits == 16 ? "_a16" : "_a8")
                                                     : "");
        else
            snprintf(c->precision, sizeof c->precision, "a%d", c->output_bits);
        c->weight_bytes = c->weight_bits == 4 ? (weights + 1) / 2 : weights * (c->weight_bits / 8);
        int64_t in_bytes = 0;
        for (int k = 0; k < l->input_count; k++) {
            int bits = qm ? qm->layers[l->inputs[k]].bits : 8;
            if (listed(raise_to_16, raise_count, g, order[t]))
                bits = 16;
            in_bytes += per_sample(hq_layer_port_shape(hq_graph_layer(g, l->inputs[k]),
                                                       l->input_ports[k])) *
                        (bits / 8);
        }
        int64_t out_bytes = 0;
        for (int port = 0; port < hq_layer_port_count(l); port++)
            out_bytes += per_sample(hq_layer_port_shape(l, port)) * (c->output_bits / 8);
        c->activation_bytes = in_bytes + out_bytes;
        c->compute_seconds =
            (double)c->macs * mac_cost(m, c->input_bits, c->weight_bits) / m->macs_per_second;
        pr->total_macs += c->macs;
        pr->total_weight_bytes += c->weight_bytes;
    }
    pr->weights_stream = (double)pr->total_weight_bytes > m->weight_memory_bytes;
    for (int i = 0; i < pr->layer_count && st == HQ_OK; i++) {
        hq_layer_cost_t *c = &pr->layers[i];
        c->memory_seconds = (double)c->activation_bytes / m->activation_bytes_per_second;
        if (pr->weights_stream)
            c->memory_seconds += (double)c->weight_bytes / m->stream_bytes_per_second;
        double busy =
            c->compute_seconds > c->memory_seconds ? c->compute_seconds : c->memory_seconds;
        c->seconds = busy + m->layer_overhead_seconds;
        pr->compute_seconds += c->compute_seconds;
        pr->memory_seconds += c->memory_seconds;
        pr->overhead_seconds += m->layer_overhead_seconds;
        pr->seconds_per_frame += c->seconds;
    }
    pr->fps = pr->seconds_per_frame > 0 ? 1.0 / pr->seconds_per_frame : 0.0;
    hqi_qmodel_destroy(qm);
    if (st != HQ_OK) {
        hq_profile_destroy(pr);
        return st;
    }
    *out = pr;
    return HQ_OK;
}

void hq_profile_destroy(hq_profile_t *profile)
{
    if (!profile)
        return;
    free(profile->layers);
    free(profile);
}

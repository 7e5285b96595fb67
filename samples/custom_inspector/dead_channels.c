/* dead_channels.c — a copy-me hq-diag inspector: "DeadChannels" reports conv/dw/dense output
 * channels that never fire on the calibration data (every sample's mean and spread are zero after
 * the activation), a sign of a layer that lost capacity in training or of data unlike the
 * training data.
 *
 * Copy this folder, rename the file and the descriptor's name, and replace run(). Build it with
 * `make` (or CMake) against an installed hq, then run it with
 *     hq-diag --plugin-path . -d calib.npy model_quantized.har
 * The plugin ABI is described in hq-inspector(3) and <hq/inspector.h>. Rules: never print, never
 * exit, never read stdin; say everything through the context (ctx). */
#include <stdio.h>
#include <stdlib.h>

#include <hq/inspector.h>

/* What init prepares for run. Owned by the plugin: allocated in init, freed in fini. */
typedef struct dead_channels_state {
    float tolerance; /* |mean| and std at or below this count as "never fires" */
} dead_channels_state_t;

/* Optional. Called once before run; whatever *state receives is handed to run and fini. A
 * failure (status + err->message) is reported and the inspector does not run. */
static hq_status_t dead_channels_init(hq_inspector_context_t *ctx, void **state, hq_error_t *err)
{
    (void)ctx;
    dead_channels_state_t *s = malloc(sizeof *s);
    if (!s) {
        err->status = HQ_ERR_NOMEM;
        snprintf(err->message, sizeof err->message, "DeadChannels: out of memory");
        return HQ_ERR_NOMEM;
    }
    s->tolerance = 1e-6f;
    *state = s;
    return HQ_OK;
}

static bool has_weights(hq_layer_type_t type)
{
    return type == HQ_LAYER_CONV || type == HQ_LAYER_DW || type == HQ_LAYER_DENSE ||
           type == HQ_LAYER_DECONV;
}

/* Required. Reads the model and the cached statistics through ctx and emits findings and
 * recommendations. Everything ctx returns is owned by the host and valid until run returns;
 * everything passed to ctx is copied by the host. */
static hq_status_t dead_channels_run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    const dead_channels_state_t *s = state;
    int layers_with_dead = 0, checked = 0;
    for (int l = 0; l < ctx->layer_count(ctx); l++) {
        /* the layer, in the ABI's own layout: set struct_size, the host fills up to it */
        hq_inspector_layer_t layer = {.struct_size = sizeof layer};
        if (!ctx->layer_info(ctx, l, &layer) || !has_weights(layer.type))
            continue;
        /* statistics of the float pass (fp-optimized params, or native without them) */
        const hq_layer_stats_t *st = ctx->layer_stats(ctx, HQ_STATS_FLOAT, l, 0);
        if (!st || !st->channel_mean || !st->channel_std)
            continue;
        checked++;
        int dead = 0, first_dead = -1;
        for (int c = 0; c < st->channels; c++)
            if (st->channel_mean[c] <= s->tolerance && st->channel_mean[c] >= -s->tolerance &&
                st->channel_std[c] <= s->tolerance) {
                if (first_dead < 0)
                    first_dead = c;
                dead++;
            }
        if (!dead)
            continue;
        layers_with_dead++;
        /* a finding with the numbers behind it: they go into --json and the HTML report */
        hq_diag_number_t numbers[] = {
            {"dead_channels", dead},
            {"channels", st->channels},
            {"first_dead_channel", first_dead},
        };
        char message[512];
        snprintf(message, sizeof message,
                 "Layer %s: %d of %d output channels never fire on the %lld samples (first: %d)",
                 layer.bare_name, dead, st->channels, (long long)st->samples, first_dead);
        hq_diagnostic_t finding = {
            .struct_size = sizeof finding, /* always: lets the host read older/newer plugins */
            .level = dead * 2 > st->channels ? HQ_DIAG_WARNING : HQ_DIAG_INFO,
            .layer = l,
            .message = message,
            .numbers = numbers,
            .number_count = 3,
            .flags = HQ_DIAG_SHOW_CHANNELS,
        };
        ctx->diagnostic(ctx, &finding);
    }
    ctx->log(ctx, "checked %d layers with weights", checked); /* log file only */
    if (!checked) {
        ctx->skip(ctx, "no conv/dense layer has statistics"); /* "Skipping DeadChannels, ..." */
        return HQ_OK;
    }
    /* A recommendation is one model-script line (hq-alls(5)); lines of one group are offered
     * together after run, as a yes/no question here, defaulting to no when not interactive. */
    if (layers_with_dead && ctx->sample_count(ctx) < 64) {
        char line[128];
        snprintf(line, sizeof line, "model_optimization_config(calibration, calibset_size=%d)", 64);
        hq_recommendation_t rec = {
            .struct_size = sizeof rec,
            .level = HQ_DIAG_INFO,
            .layer = -1,
            .line = line,
            .reason = "few calibration samples can make a rarely active channel look dead",
            .group = "dead_channels",
            .group_kind = HQ_GROUP_YES_NO,
            .question = "Calibrate on 64 samples?",
            .default_answer = HQ_ANSWER_NO,
        };
        return ctx->recommend(ctx, &rec, err); /* fails only for a malformed line */
    }
    return HQ_OK;
}

/* Optional. Frees what init made; called after run, also when run failed. */
static void dead_channels_fini(void *state)
{
    free(state);
}

/* The descriptor: static and const; the host never writes it. */
static const hq_inspector_t descriptor = {
    .abi_version = HQ_INSPECTOR_ABI_VERSION, /* the ABI (major.minor) this file was built for */
    .struct_size = sizeof(hq_inspector_t),   /* lets newer hosts know which slots exist */
    .name = "DeadChannels",                  /* unique; "Module: DeadChannels"; --order name */
    .description = "output channels that never fire on the data",
    .priority = HQ_PRIORITY_LOW,   /* HIGH, MEDIUM or LOW: default run order */
    .needs = HQ_NEEDS_FLOAT_STATS, /* no data: "Skipping DeadChannels, ..." */
    .init = dead_channels_init,    /* optional, may be NULL */
    .run = dead_channels_run,      /* required */
    .fini = dead_channels_fini,    /* optional, may be NULL */
};

/* The one exported symbol. HQ_INSPECTOR_EXPORT keeps it visible under -fvisibility=hidden. */
HQ_INSPECTOR_EXPORT const hq_inspector_t *hq_inspector_entry(void);
const hq_inspector_t *hq_inspector_entry(void)
{
    return &descriptor;
}

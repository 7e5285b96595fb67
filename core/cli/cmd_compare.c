/* cmd_compare.c — `hq compare REF.npz OTHER.npz`: how far one set of outputs is from another, per
 * output (SQNR, cosine, largest difference, argmax agreement of class vectors, mask agreement at
 * a threshold), with an exit status a CI pipeline can test (`--min-sqnr`). With `--against` the
 * second set is produced in-process by `hq emulate` of an archive on a dataset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"

static const hq_cli_option_t compare_options[] = {
    {"--against MODEL.har", "compare REF.npz with the emulation of MODEL.har (needs -d)"},
    {"-d, --dataset PATH", "with --against: the samples to emulate (.npy, .npz or image folder)"},
    {"--target TARGET", "with --against: native (default), fp_optimized or quantized"},
    {"--min-sqnr DB", "exit 1 when any output's SQNR is below DB"},
    {"--threshold T", "also report mask agreement: share of elements on the same side of T"},
    HQ_CLI_QUIET_OPTION,
    {"-h, --help", "show this help"},
    {NULL, NULL},
};

void hq_cmd_compare_usage(FILE *out)
{
    fprintf(out,
            "usage: hq compare [-h] [--min-sqnr DB] [--threshold T] REF.npz OTHER.npz\n"
            "       hq compare [...] REF.npz --against MODEL.har -d DATA [--target TARGET] [-q]\n\n"
            "Compares every array that both files hold (an .npy counts as one array, matched\n"
            "to the other file's only array), REF taken as the truth: SQNR in dB (inf when\n"
            "identical), cosine similarity, largest absolute difference, and for class vectors\n"
            "([N, C] or [N, 1, 1, C]) the share of samples whose argmax agrees. Arrays of\n"
            "different shapes, and NaN or Inf in either file, are errors.\n\noptions:\n");
    hq_cli_print_options(out, compare_options);
    fprintf(out, "\nExit status: 0 compared (and every SQNR >= --min-sqnr), 1 an SQNR below\n"
                 "--min-sqnr, 2 bad arguments or unreadable input.\n");
}

/* The array as float64 (caller frees), or NULL with err set. */
static double *as_doubles(const char *path, const char *key, const hq_tensor_t *tensor,
                          hq_error_t *err)
{
    hq_tensor_t *converted = NULL;
    if (hq_tensor_convert(tensor, HQ_DTYPE_FLOAT64, &converted, err) != HQ_OK)
        return NULL;
    double *values = converted->data;
    int64_t count = hq_tensor_count(converted);
    for (int64_t i = 0; i < count; i++) {
        if (!isfinite(values[i])) {
            snprintf(err->message, sizeof err->message, "%s: array '%s' holds %s at element %lld",
                     path, key, isnan(values[i]) ? "NaN" : "Inf", (long long)i);
            err->status = HQ_ERR_INVALID;
            hq_tensor_destroy(converted);
            return NULL;
        }
    }
    converted->data = NULL; /* the values outlive the tensor */
    converted->nbytes = 0;
    hq_tensor_destroy(converted);
    return values;
}

typedef struct comparison {
    double sqnr_db;   /* +inf when identical */
    double cosine;    /* 1 when both are zero */
    double max_abs;   /* largest |ref - other| */
    double argmax;    /* share of samples whose argmax agrees; < 0 when not a class vector */
    double mask;      /* share of elements on the same side of the threshold; < 0 when not asked */
} comparison_t;

/* Rows of a class-vector array ([N, C] or [N, 1, 1, C]), or 0 when it is not one. */
static int64_t class_rows(const hq_tensor_t *t, int64_t *classes)
{
    bool vector = t->ndim == 2 || (t->ndim == 4 && t->shape[1] == 1 && t->shape[2] == 1);
    if (!vector || t->shape[t->ndim - 1] < 2)
        return 0;
    *classes = t->shape[t->ndim - 1];
    return t->shape[0];
}

static int64_t argmax_of(const double *row, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (row[i] > row[best])
            best = i;
    return best;
}

static comparison_t compare(const hq_tensor_t *shape, const double *ref, const double *other,
                            bool threshold_given, double threshold)
{
    int64_t count = hq_tensor_count(shape);
    double signal = 0, noise = 0, dot = 0, other_energy = 0, max_abs = 0;
    int64_t same_side = 0;
    for (int64_t i = 0; i < count; i++) {
        double d = ref[i] - other[i];
        signal += ref[i] * ref[i];
        noise += d * d;
        dot += ref[i] * other[i];
        other_energy += other[i] * other[i];
        if (fabs(d) > max_abs)
            max_abs = fabs(d);
        same_side += (ref[i] > threshold) == (other[i] > threshold);
    }
    comparison_t c;
    if (noise == 0)
        c.sqnr_db = INFINITY;
    else if (signal == 0)
        c.sqnr_db = -INFINITY;
    else
        c.sqnr_db = 10.0 * log10(signal / noise);
    if (signal == 0 && other_energy == 0)
        c.cosine = 1.0;
    else if (signal == 0 || other_energy == 0)
        c.cosine = 0.0;
    else
        c.cosine = dot / (sqrt(signal) * sqrt(other_energy));
    c.max_abs = max_abs;
    c.mask = threshold_given && count > 0 ? (double)same_side / (double)count : -1.0;
    int64_t classes = 0, rows = class_rows(shape, &classes);
    c.argmax = -1.0;
    if (rows > 0) {
        int64_t agree = 0;
        for (int64_t r = 0; r < rows; r++)
            agree += argmax_of(ref + r * classes, classes) == argmax_of(other + r * classes, classes);
        c.argmax = (double)agree / (double)rows;
    }
    return c;
}

static void format_shape(const hq_tensor_t *t, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "(");
    for (int d = 0; d < t->ndim && used < size; d++)
        used += (size_t)snprintf(out + used, size - used, d ? ", %lld" : "%lld",
                                 (long long)t->shape[d]);
    if (used < size)
        snprintf(out + used, size - used, ")");
}

/* Runs `hq emulate MODEL -d DATA --target T -o TMP` in this process and reads TMP back. */
static hq_status_t emulate_set(const char *model, const char *data, const char *target, bool quiet,
                               hq_npz_t **out, hq_error_t *err)
{
    char folder[] = "/tmp/hq-compare-XXXXXX";
    if (!mkdtemp(folder)) {
        snprintf(err->message, sizeof err->message, "%s: cannot create a temporary folder", folder);
        return err->status = HQ_ERR_IO;
    }
    char path[sizeof folder + 16];
    snprintf(path, sizeof path, "%s/out.npz", folder);
    char *argv[] = {"emulate", (char *)model, "-d", (char *)data, "--target", (char *)target,
                    "-o", path, quiet ? "-q" : NULL, NULL};
    hq_status_t st = HQ_OK;
    if (hq_cmd_emulate(quiet ? 9 : 8, argv) != HQ_EXIT_OK) {
        /* hq emulate has said what went wrong on stderr */
        err->message[0] = '\0';
        st = err->status = HQ_ERR_INVALID;
    } else {
        st = hq_npz_read_file(path, out, err);
    }
    unlink(path);
    rmdir(folder);
    return st;
}

/* The array of `other` that `key` of the reference pairs with: the same key, or the only array
 * when either side is a lone array. */
static const hq_tensor_t *partner(const hq_npz_t *ref, const hq_npz_t *other, const char *key)
{
    if (hq_npz_count(ref) == 1 && hq_npz_count(other) == 1)
        return hq_npz_get_index(other, 0);
    return hq_npz_get(other, key);
}

int hq_cmd_compare(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL}, *against = NULL, *data = NULL, *target = "native";
    int path_count = 0;
    double min_sqnr = -INFINITY, threshold = 0;
    bool threshold_given = false, min_given = false, quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            hq_cmd_compare_usage(stdout);
            return HQ_EXIT_OK;
        }
        bool takes_value = !strcmp(a, "--against") || !strcmp(a, "-d") ||
                           !strcmp(a, "--dataset") || !strcmp(a, "--target") ||
                           !strcmp(a, "--min-sqnr") || !strcmp(a, "--threshold");
        if (takes_value && !next)
            return hq_cli_fail("hq compare", "option needs a value:", a);
        if (!strcmp(a, "--against")) {
            against = argv[++i];
        } else if (!strcmp(a, "-d") || !strcmp(a, "--dataset")) {
            data = argv[++i];
        } else if (!strcmp(a, "--target")) {
            target = argv[++i];
        } else if (!strcmp(a, "--min-sqnr") || !strcmp(a, "--threshold")) {
            char *end = NULL;
            double v = strtod(argv[++i], &end);
            if (!end || *end || end == argv[i] || !isfinite(v))
                return hq_cli_fail("hq compare", "expected a finite number for", a);
            if (a[2] == 'm') {
                min_sqnr = v;
                min_given = true;
            } else {
                threshold = v;
                threshold_given = true;
            }
        } else if (hq_cli_is_quiet(a)) {
            quiet = true;
        } else if (a[0] == '-' && a[1]) {
            return hq_cli_fail("hq compare", "unknown option", a);
        } else if (path_count < 2) {
            paths[path_count++] = a;
        } else {
            return hq_cli_fail("hq compare", "two files at most, extra argument", a);
        }
    }
    if (path_count != (against ? 1 : 2) || (against && !data) || (!against && data)) {
        hq_cmd_compare_usage(stderr);
        return HQ_EXIT_FAILURE;
    }
    hq_target_t target_value;
    if (hq_target_from_name(target, &target_value) != HQ_OK)
        return hq_cli_fail("hq compare", "unknown target (native, fp_optimized or quantized)",
                           target);

    hq_error_t err = {0};
    hq_npz_t *sets[2] = {NULL, NULL};
    hq_status_t st = hq_npz_read_set_file(paths[0], &sets[0], &err);
    if (st == HQ_OK)
        st = against ? emulate_set(against, data, target, quiet, &sets[1], &err)
                     : hq_npz_read_set_file(paths[1], &sets[1], &err);
    const char *other_name = against ? against : paths[1];
    int compared = 0, below = 0;
    for (size_t k = 0; st == HQ_OK && k < hq_npz_count(sets[0]); k++) {
        const char *key = hq_npz_key(sets[0], k);
        const hq_tensor_t *ref = hq_npz_get_index(sets[0], k);
        const hq_tensor_t *other = partner(sets[0], sets[1], key);
        if (!other)
            continue;
        char ref_shape[128], other_shape[128];
        format_shape(ref, ref_shape, sizeof ref_shape);
        format_shape(other, other_shape, sizeof other_shape);
        if (strcmp(ref_shape, other_shape) != 0) {
            snprintf(err.message, sizeof err.message,
                     "%s: array '%s' has shape %s, %s has %s", other_name, key, other_shape,
                     paths[0], ref_shape);
            st = err.status = HQ_ERR_INVALID;
            break;
        }
        double *a = as_doubles(paths[0], key, ref, &err);
        double *b = a ? as_doubles(other_name, key, other, &err) : NULL;
        if (!a || !b) {
            free(a);
            st = err.status ? err.status : HQ_ERR_INVALID;
            break;
        }
        comparison_t c = compare(ref, a, b, threshold_given, threshold);
        free(a);
        free(b);
        if (compared++ == 0)
            printf("%-40s %-20s %10s %10s %12s %8s%s\n", "output", "shape", "sqnr_db", "cosine",
                   "max_abs", "argmax", threshold_given ? "     mask" : "");
        char sqnr[32], argmax[16] = "-";
        snprintf(sqnr, sizeof sqnr, isinf(c.sqnr_db) ? (c.sqnr_db > 0 ? "inf" : "-inf") : "%.2f",
                 c.sqnr_db);
        if (c.argmax >= 0)
            snprintf(argmax, sizeof argmax, "%.2f%%", 100.0 * c.argmax);
        printf("%-40s %-20s %10s %10.6f %12.6g %8s", key, ref_shape, sqnr,
               c.cosine, c.max_abs, argmax);
        if (threshold_given)
            printf(" %7.2f%%", 100.0 * c.mask);
        printf("\n");
        below += min_given && c.sqnr_db < min_sqnr;
    }
    if (st == HQ_OK && compared == 0) {
        snprintf(err.message, sizeof err.message, "%s and %s: no array name in common", paths[0],
                 other_name);
        st = err.status = HQ_ERR_NOT_FOUND;
    }
    hq_npz_destroy(sets[0]);
    hq_npz_destroy(sets[1]);
    if (st != HQ_OK) {
        if (err.message[0])
            hq_cli_report("hq compare", st, &err);
        return HQ_EXIT_FAILURE;
    }
    if (min_given) {
        printf("%d of %d output%s below --min-sqnr %.2f dB\n", below, compared,
               compared == 1 ? "" : "s", min_sqnr);
        return below ? HQ_EXIT_FINDINGS : HQ_EXIT_OK;
    }
    return HQ_EXIT_OK;
}

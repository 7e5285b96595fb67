/* verify_internal.h — the state of `hq-diag --verify` shared by its two files: verify.c (the
 * checks, the re-quantizations and their measurement) and verify_report.c (the console table, the
 * JSON object, the HTML table, the measured gains the triage reads). Private to core/diag/;
 * prefix hqi_diag_verify_. */
#ifndef HQI_DIAG_VERIFY_INTERNAL_H
#define HQI_DIAG_VERIFY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "diag/diag_internal.h"

/* One re-quantization: the whole accepted set, or one triage cause's accepted lines. */
typedef struct hqi_diag_verify_run {
    int module;       /* the cause's module, or HQI_DIAG_VERIFY_ALL / _NONE */
    int rank;         /* the cause's triage rank; 0 for every accepted line */
    int line_count;   /* accepted lines it applies */
    double *after_db; /* [outputs] */
    bool ok;
    char *error; /* why the re-quantization or its measurement failed */
} hqi_diag_verify_run_t;

/* The module of the run with every accepted line, and of the run with none (the archive's
 * script alone: does re-quantizing reproduce the archive?). */
#define HQI_DIAG_VERIFY_ALL (-2)
#define HQI_DIAG_VERIFY_NONE (-3)
/* Largest difference from the archive's own figures that still counts as reproduced: the
 * rounding of the printed figures; re-quantizing the same float model with the same script and
 * data gives the same integer params, hence the same figures, bit for bit. */
#define HQI_DIAG_VERIFY_REPRODUCED_DB 0.01

struct hqi_diag_verify {
    char *data_path; /* --verify-data, or NULL */
    char *from_path; /* --verify-from, or NULL: the archive opened */
    int threads;
    hq_dataset_t *held;    /* the held-out samples: --verify-data, or the run's dataset */
    bool own_held;         /* held was opened here */
    int64_t first, count;  /* held-out samples [first, first + count) of held */
    int64_t calibset_size; /* of the archive's script: the samples calibration uses */
    bool ran;
    int output_count;
    double *before_db; /* [outputs] the archive as given */
    hqi_diag_verify_run_t
        baseline; /* the archive's script re-quantized without any accepted line */
    hqi_diag_verify_run_t *runs;
    int run_count;
};

/* The lowest of `count` figures (the headline's verdict output). */
double hqi_diag_verify_lowest(const double *db, int count);
/* The gain of a run: its lowest output SQNR minus the archive's; NAN when it failed. */
double hqi_diag_verify_gain(const hqi_diag_verify_t *v, const hqi_diag_verify_run_t *run);
/* What messages call a run: "every accepted line", "the archive's script", an inspector. */
const char *hqi_diag_verify_label(const hq_diag_t *d, const hqi_diag_verify_run_t *run);
/* Whether re-quantizing with the archive's script alone gave the archive's figures. */
bool hqi_diag_verify_reproduced(const hqi_diag_verify_t *v);
/* Reports the table as HQ_DIAG_EVENT_VERIFY events. */
void hqi_diag_verify_report(hq_diag_t *d);

#endif

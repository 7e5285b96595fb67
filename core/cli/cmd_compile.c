/* cmd_compile.c — `hq compile model_quantized.har [-o model.hqx]`: compiles a quantized archive
 * into an integer-only `.hqx` program for libhqrt, and writes the compiled archive (state
 * compiled_model, the program embedded as `<net>.hqx`). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "hq/deploy.h"
#include "hq/hqrt.h"

static const hq_cli_option_t compile_options[] = {
    {"-o, --output PATH", "program to write (default: <model>.hqx next to the archive)"},
    {"--har PATH", "compiled archive to write (default: <model>_compiled.har)"},
    HQ_CLI_QUIET_OPTION,
    {"-h, --help", "show this help"},
    {NULL, NULL},
};

void hq_cmd_compile_usage(FILE *out)
{
    fprintf(out, "usage: hq compile [-h] model_quantized.har [-o model.hqx] [--har PATH] [-q]\n\n"
                 "Compiles a quantized archive into an integer-only program (.hqx) that libhqrt\n"
                 "and `hq run` execute: one op per layer, integer weights, biases,\n"
                 "requantization multipliers/shifts and lookup tables, the activation arena\n"
                 "planned at compile time, a checksum over the whole file (docs/deploy.md).\n"
                 "Also writes the archive in state compiled_model with the program embedded as\n"
                 "member <net>.hqx. Nothing is written when a layer cannot be compiled.\n\n"
                 "options:\n");
    hq_cli_print_options(out, compile_options);
}

/* The path exists and is no regular file (/dev/null, a FIFO): written in place and never
 * renamed over or removed, which would replace the device with a regular file. */
static bool special_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode);
}

/* Temporary file in the same folder, fsync, rename: `path` is never half-written. */
static int write_atomic(const char *path, const void *bytes, size_t len, hq_error_t *err)
{
    if (special_file(path)) {
        FILE *f = fopen(path, "wb");
        bool ok = f && fwrite(bytes, 1, len, f) == len;
        if (f && fclose(f) != 0)
            ok = false;
        if (!ok)
            snprintf(err->message, sizeof err->message, "%s: cannot write: %s", path,
                     strerror(errno));
        return ok ? 0 : -1;
    }
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return -1;
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    int ok = fd >= 0;
    if (ok) { /* mkstemp creates 0600: give the program the usual 0666 & ~umask */
        mode_t mask = umask(0);
        umask(mask);
        ok = fchmod(fd, 0666 & ~mask) == 0;
    }
    const unsigned char *p = bytes;
    for (size_t done = 0; ok && done < len;) {
        ssize_t w = write(fd, p + done, len - done);
        if (w <= 0 && errno != EINTR)
            ok = 0;
        else if (w > 0)
            done += (size_t)w;
    }
    if (ok)
        ok = fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    if (ok)
        ok = rename(tmp, path) == 0;
    if (!ok) {
        snprintf(err->message, sizeof err->message, "%s: cannot write: %s", path, strerror(errno));
        if (fd >= 0)
            unlink(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}

int hq_cmd_compile(int argc, char **argv)
{
    const char *model = NULL, *output = NULL, *har = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            hq_cmd_compile_usage(stdout);
            return HQ_EXIT_OK;
        }
        bool takes_value = !strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--har");
        if (takes_value && i + 1 >= argc)
            return hq_cli_fail("hq compile", "option needs a value:", a);
        if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            output = argv[++i];
        else if (!strcmp(a, "--har"))
            har = argv[++i];
        else if (hq_cli_is_quiet(a))
            continue; /* no progress bar to silence: accepted like every command */
        else if (hq_cli_positional("hq compile", "archive", a, &model) != HQ_EXIT_OK)
            return HQ_EXIT_FAILURE;
    }
    if (!model) {
        hq_cmd_compile_usage(stderr);
        return HQ_EXIT_FAILURE;
    }
    char *out_default = output ? NULL : hq_cli_derived_name(model, ".hqx");
    char *har_default = har ? NULL : hq_cli_derived_name(model, "_compiled.har");
    if ((!output && !out_default) || (!har && !har_default)) {
        free(out_default), free(har_default);
        return hq_cli_fail("hq compile", "out of memory", NULL);
    }
    output = output ? output : out_default;
    har = har ? har : har_default;
    if (hq_cli_check_output_file("hq compile", out_default ? "output" : "-o", output) !=
            HQ_EXIT_OK ||
        hq_cli_check_output_file("hq compile", har_default ? "output" : "--har", har) !=
            HQ_EXIT_OK) {
        free(out_default), free(har_default);
        return HQ_EXIT_FAILURE;
    }

    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    void *program = NULL;
    size_t len = 0;
    hq_status_t st = hq_archive_open(model, &archive, &err);
    if (st == HQ_OK)
        st = hq_compile(archive, &program, &len, &err);
    if (st == HQ_OK && write_atomic(output, program, len, &err) != 0)
        st = HQ_ERR_IO;
    if (st == HQ_OK) {
        st = hq_archive_save(archive, har, &err);
        if (st != HQ_OK)
            if (!special_file(output))
                unlink(output); /* all or nothing */
    }
    if (st == HQ_OK) {
        hqrt_model_t *m = NULL;
        hqrt_error_t rerr;
        int inputs = 0, outputs = 0;
        if (hqrt_open_memory(program, len, output, &m, &rerr) == HQRT_OK) {
            hqrt_io_t io;
            if (hqrt_describe(m, HQRT_INPUT, 0, &io, NULL) == HQRT_OK)
                inputs = io.count;
            if (hqrt_describe(m, HQRT_OUTPUT, 0, &io, NULL) == HQRT_OK)
                outputs = io.count;
        }
        hqrt_close(m);
        printf("%s: %zu bytes, %d input(s), %d output(s) (hw_arch %s)\n%s: state %s\n", output, len,
               inputs, outputs, hq_archive_hw_arch(archive), har,
               hq_model_state_name(hq_archive_state(archive)));
    } else {
        hq_cli_report("hq compile", st, &err);
    }
    free(program);
    hq_archive_destroy(archive);
    free(out_default);
    free(har_default);
    return st == HQ_OK ? HQ_EXIT_OK : HQ_EXIT_FAILURE;
}

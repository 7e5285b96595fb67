/* hq_diag_main.c — `hq-diag`: the diagnostic front door. Parses the command line, finds the
 * inspector modules, and drives the library runner (hq/diag.h); the console, the log and the
 * prompts are in diag_console.c. Exit: 0 ran without error finding, 1 error finding, 2 could not
 * run. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common_cli.h"
#include "diag_console.h"
#include "hq/diag.h"

#ifndef HQ_INSPECTOR_REL_DIR
#define HQ_INSPECTOR_REL_DIR "../lib/hq/inspectors"
#endif
#ifndef HQ_INSPECTOR_INSTALL_FULL_DIR
#define HQ_INSPECTOR_INSTALL_FULL_DIR "/usr/local/lib/hq/inspectors"
#endif

static const hq_cli_option_t diag_options[] = {
    {"-d, --dataset PATH", "calibration data: .npy, .npz or a folder of images"},
    {"-c, --data-count COUNT",
     "samples of the dataset to use (default 64; all when it holds fewer)"},
    {"-a, --hw-arch ARCH", "target hardware (default: the archive's)"},
    {"--log-path PATH", "log file (default hq-diag.log); inspector files go to <stem>_files/"},
    {"--no-interactive", "never ask: take the documented default answers"},
    {"--accept all|none|defaults", "never ask: accept every line, none, or the defaults"},
    {"--output-model-script PATH", "where to write the fixed model script"},
    {"--order INSPECTOR ...", "run exactly these inspectors, in this order"},
    {"--plugin-path DIR", "load inspector modules from DIR too (repeatable)"},
    {"--list-inspectors", "list the inspectors found and exit"},
    {"--json PATH", "write every finding and recommendation as JSON"},
    {"--report PATH.html", "write a self-contained HTML report"},
    {"--reference REF.npz", "framework outputs on the diagnosis samples (stage: translation)"},
    {"--verify", "re-quantize in memory with the accepted lines and measure the gain"},
    {"--verify-data PATH", "held-out samples for --verify (default: the dataset's after calibset)"},
    {"--verify-from PARSED.har", "parsed archive to re-quantize from (script changed the graph)"},
    {"-j, --threads N", "threads of --verify's re-quantizations and emulations"},
    HQ_CLI_QUIET_OPTION,
    {"-h, --help", "show this help"},
    {"--version", "print the version"},
    {NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hq-diag [-d DATASET] [-c DATA_COUNT] [-a HW_ARCH] [--log-path PATH]\n"
            "               [--no-interactive] [--accept all|none|defaults]\n"
            "               [--output-model-script PATH] [--order INSPECTOR ...]\n"
            "               [--plugin-path DIR] [--list-inspectors] [--json PATH]\n"
            "               [--report PATH.html] [--reference REF.npz] [--verify]\n"
            "               [--verify-data PATH] [--verify-from PARSED.har] [-j N] [-q] [-h]\n"
            "               [--version] model.har\n\n"
            "Looks at a quantized model archive and its calibration data, says what most likely\n"
            "hurts accuracy, and offers the model-script lines that fix it.\n\n"
            "options:\n");
    hq_cli_print_options(out, diag_options);
    fprintf(out, "\nInspector modules come from the install's plugin folder, HQ_PLUGIN_PATH\n"
                 "(colon-separated) and --plugin-path. NO_COLOR disables colours.\n"
                 "Exit status: 0 no error finding, 1 at least one error finding, 2 could not run.\n"
                 "See hq-diag(1).\n");
}

typedef struct args {
    const char *model, *dataset, *hw_arch, *log_path, *script_path, *json_path, *report_path;
    const char *reference, *verify_data, *verify_from;
    long long count, threads;
    bool count_given; /* -c was on the command line */
    bool no_interactive, list, quiet, verify;
    hq_diag_accept_t accept; /* --accept; set, it implies --no-interactive */
    const char **order;
    int order_count;
    const char **plugin_dirs;
    int plugin_dir_count;
} args_t;

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool looks_like_model(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') || (n > 4 && !strcmp(s + n - 4, ".har")) || is_file(s);
}

/* The folder of this run's inspector files: the log's path without its extension, plus
 * "_files" ("runs/a.log": "runs/a_files"), so that runs with their own logs never share a file. */
static void files_folder(const char *log_path, char *out, size_t size)
{
    const char *slash = strrchr(log_path, '/');
    const char *base = slash ? slash + 1 : log_path;
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot > base ? (size_t)(dot - log_path) : strlen(log_path);
    snprintf(out, size, "%.*s_files", (int)stem, log_path);
}

/* Every file hq-diag may write, checked before any work: the log (and the folder of the
 * inspectors' files next to it), the model script when named, the JSON and the HTML report.
 * Returns -1 when all can be written, else the exit status. */
static int check_outputs(const args_t *a)
{
    const struct {
        const char *option, *path;
    } outputs[] = {
        {"--log-path", a->log_path},
        {"--output-model-script", a->script_path},
        {"--json", a->json_path},
        {"--report", a->report_path},
    };
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++)
        if (outputs[i].path &&
            hq_cli_check_output_file("hq-diag", outputs[i].option, outputs[i].path) != HQ_EXIT_OK)
            return HQ_EXIT_FAILURE;
    char files[PATH_MAX];
    files_folder(a->log_path, files, sizeof files);
    struct stat sb;
    if (stat(files, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        fprintf(stderr,
                "hq-diag: --log-path %s: %s, the folder of the inspectors' files, is not a "
                "folder\n",
                a->log_path, files);
        return HQ_EXIT_FAILURE;
    }
    if (stat(files, &sb) == 0 &&
        hq_cli_check_output_folder("hq-diag", "--log-path", files) != HQ_EXIT_OK)
        return HQ_EXIT_FAILURE;
    return -1;
}

/* Returns -1 on success, else the exit status. */
static int parse_args(int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof *a);
    a->count = 64;
    a->log_path = "hq-diag.log";
    a->order = calloc((size_t)argc + 1, sizeof *a->order);
    a->plugin_dirs = calloc((size_t)argc + 1, sizeof *a->plugin_dirs);
    if (!a->order || !a->plugin_dirs) {
        fprintf(stderr, "hq-diag: out of memory\n");
        return HQ_EXIT_FAILURE;
    }
    bool order_given = false;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char **value = NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return HQ_EXIT_OK;
        } else if (!strcmp(o, "--version")) {
            printf("hq-diag %s (inspector ABI %u)\n", hq_version(), HQ_INSPECTOR_ABI_VERSION);
            return HQ_EXIT_OK;
        } else if (!strcmp(o, "-d") || !strcmp(o, "--dataset")) {
            value = &a->dataset;
        } else if (!strcmp(o, "-a") || !strcmp(o, "--hw-arch")) {
            value = &a->hw_arch;
        } else if (!strcmp(o, "--log-path")) {
            value = &a->log_path;
        } else if (!strcmp(o, "--output-model-script")) {
            value = &a->script_path;
        } else if (!strcmp(o, "--json")) {
            value = &a->json_path;
        } else if (!strcmp(o, "--report")) {
            value = &a->report_path;
        } else if (!strcmp(o, "--reference")) {
            value = &a->reference;
        } else if (!strcmp(o, "--verify")) {
            a->verify = true;
        } else if (!strcmp(o, "--verify-data")) {
            value = &a->verify_data;
        } else if (!strcmp(o, "--verify-from")) {
            value = &a->verify_from;
        } else if (!strcmp(o, "-j") || !strcmp(o, "--threads")) {
            if (++i >= argc || !hq_cli_parse_int(argv[i], 1, 256, &a->threads)) {
                fprintf(stderr, "hq-diag: %s: threads must be an integer from 1 to 256\n", o);
                return HQ_EXIT_FAILURE;
            }
        } else if (!strcmp(o, "--accept")) {
            const char *v = i + 1 < argc ? argv[++i] : "";
            if (!strcmp(v, "all"))
                a->accept = HQ_DIAG_ACCEPT_ALL;
            else if (!strcmp(v, "none"))
                a->accept = HQ_DIAG_ACCEPT_NONE;
            else if (strcmp(v, "defaults")) {
                fprintf(stderr, "hq-diag: --accept takes all, none or defaults, not '%s'\n", v);
                return HQ_EXIT_FAILURE;
            }
            a->no_interactive = true;
        } else if (!strcmp(o, "--no-interactive")) {
            a->no_interactive = true;
        } else if (!strcmp(o, "--list-inspectors")) {
            a->list = true;
        } else if (hq_cli_is_quiet(o)) {
            a->quiet = true;
        } else if (!strcmp(o, "-c") || !strcmp(o, "--data-count")) {
            if (++i >= argc) {
                fprintf(stderr, "hq-diag: %s needs a number\n", o);
                return HQ_EXIT_FAILURE;
            }
            char *end;
            errno = 0;
            a->count = strtoll(argv[i], &end, 10);
            if (errno || *end || end == argv[i] || a->count < 1) {
                fprintf(stderr, "hq-diag: %s: '%s' is not a positive number\n", o, argv[i]);
                return HQ_EXIT_FAILURE;
            }
            a->count_given = true;
        } else if (!strcmp(o, "--plugin-path")) {
            if (++i >= argc) {
                fprintf(stderr, "hq-diag: %s needs a folder\n", o);
                return HQ_EXIT_FAILURE;
            }
            a->plugin_dirs[a->plugin_dir_count++] = argv[i];
        } else if (!strcmp(o, "--order")) {
            order_given = true;
            /* names until the next option; "A,B" also splits */
            while (i + 1 < argc && argv[i + 1][0] != '-') {
                char *names = argv[++i];
                for (char *save = NULL, *tok = strtok_r(names, ",", &save); tok;
                     tok = strtok_r(NULL, ",", &save))
                    a->order[a->order_count++] = tok;
            }
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "hq-diag: unknown option '%s' (see hq-diag --help)\n", o);
            return HQ_EXIT_FAILURE;
        } else if (a->model) {
            fprintf(stderr, "hq-diag: one archive at a time ('%s' and '%s')\n", a->model, o);
            return HQ_EXIT_FAILURE;
        } else {
            a->model = o;
        }
        if (value) {
            if (++i >= argc || !argv[i][0]) {
                fprintf(stderr, "hq-diag: %s needs a value\n", o);
                return HQ_EXIT_FAILURE;
            }
            *value = argv[i];
        }
    }
    /* `--order A B model.har`: the model is the last word when it names a file */
    if (!a->model && a->order_count > 0 && looks_like_model(a->order[a->order_count - 1]))
        a->model = a->order[--a->order_count];
    if (order_given && a->order_count == 0) {
        fprintf(stderr, "hq-diag: --order needs at least one inspector name\n");
        return HQ_EXIT_FAILURE;
    }
    if (!a->model && !a->list) {
        usage(stderr);
        return HQ_EXIT_FAILURE;
    }
    if ((a->verify_data || a->verify_from) && !a->verify) {
        fprintf(stderr, "hq-diag: %s is an option of --verify: add --verify\n",
                a->verify_data ? "--verify-data" : "--verify-from");
        return HQ_EXIT_FAILURE;
    }
    return a->list ? -1 : check_outputs(a);
}

/* The built-in plugin folder: next to the executable in a build tree, relative to it in an
 * install (relocatable), then the compiled-in install path. Never the current directory. */
static void builtin_dir(char *out, size_t size)
{
    out[0] = '\0';
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            struct stat sb;
            snprintf(out, size, "%s/hq-inspectors", exe);
            if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode))
                return;
            snprintf(out, size, "%s/%s", exe, HQ_INSPECTOR_REL_DIR);
            if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode))
                return;
        }
    }
    snprintf(out, size, "%s", HQ_INSPECTOR_INSTALL_FULL_DIR);
}

static int load_plugins(hq_diag_t *diag, const args_t *a, diag_console_t *console)
{
    hq_error_t err = {0};
    char dir[PATH_MAX + 64];
    builtin_dir(dir, sizeof dir);
    diag_console_log(console, NULL, "debug", "built-in inspector folder: %s", dir);
    if (hq_diag_load_plugins(diag, dir, false, &err) != HQ_OK) {
        hq_cli_report("hq-diag", err.status, &err);
        return HQ_EXIT_FAILURE;
    }
    const char *env = getenv("HQ_PLUGIN_PATH");
    if (env && env[0]) {
        char *copy = strdup(env);
        for (char *save = NULL, *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok;
             tok = strtok_r(NULL, ":", &save)) {
            if (!tok[0])
                continue; /* an empty entry would mean the current directory: never */
            if (hq_diag_load_plugins(diag, tok, false, &err) != HQ_OK) {
                hq_cli_report("hq-diag", err.status, &err);
                free(copy);
                return HQ_EXIT_FAILURE;
            }
        }
        free(copy);
    }
    for (int i = 0; i < a->plugin_dir_count; i++) {
        struct stat sb;
        hq_status_t st = stat(a->plugin_dirs[i], &sb) == 0 && S_ISREG(sb.st_mode)
                             ? hq_diag_load_plugin(diag, a->plugin_dirs[i], &err)
                             : hq_diag_load_plugins(diag, a->plugin_dirs[i], true, &err);
        if (st != HQ_OK) {
            if (S_ISREG(sb.st_mode) && st != HQ_ERR_NOMEM) {
                diag_console_line(console, HQ_DIAG_WARNING, false, "Refused plugin %s",
                                  err.message);
                continue;
            }
            fprintf(stderr, "hq-diag: --plugin-path %s\n", err.message);
            return HQ_EXIT_FAILURE;
        }
    }
    return -1;
}

static void list_inspectors(const hq_diag_t *diag)
{
    static const char *const priorities[] = {"HIGH", "MEDIUM", "LOW"};
    static const struct {
        uint32_t flag;
        const char *word;
    } needs[] = {
        {HQ_NEEDS_DATASET, "dataset"},
        {HQ_NEEDS_QUANTIZED, "quantized"},
        {HQ_NEEDS_NOISE_ANALYSIS, "noise"},
        {HQ_NEEDS_RGB_IMAGES, "rgb-images"},
        {HQ_NEEDS_FP_OPTIMIZED, "fp-optimized"},
        {HQ_NEEDS_FLOAT_STATS, "float-stats"},
        {HQ_NEEDS_QUANTIZED_STATS, "quantized-stats"},
        {HQ_NEEDS_NATIVE_STATS, "native-stats"},
    };
    if (hq_diag_inspector_count(diag) == 0)
        printf("no inspector found\n");
    for (int i = 0; i < hq_diag_inspector_count(diag); i++) {
        const hq_inspector_t *d = hq_diag_inspector(diag, i);
        printf("%-28s %-6s  %s\n", d->name, priorities[d->priority],
               d->description ? d->description : "");
        printf("%-28s         needs:", "");
        bool any = false;
        for (size_t k = 0; k < sizeof needs / sizeof needs[0]; k++)
            if (d->needs & needs[k].flag) {
                printf(" %s", needs[k].word);
                any = true;
            }
        printf("%s  (%s)\n", any ? "" : " nothing", hq_diag_inspector_path(diag, i));
    }
}

/* Creates `path` empty unless it exists: true when this run made it (the script written there
 * then replaces it), so two runs at once never pick the same name. */
static bool reserve(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* "<stem>_<n><ext>" for the first n >= 1 that does not exist, reserved. */
static void numbered_name(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash))
        dot = path + strlen(path);
    for (int n = 1; n < 10000; n++) {
        snprintf(out, size, "%.*s_%d%s", (int)(dot - path), path, n, dot);
        if (reserve(out))
            return;
    }
}

static int write_script(hq_diag_t *diag, const args_t *a, diag_console_t *console, bool interactive)
{
    hq_archive_t *archive = hq_diag_archive(diag);
    char def[PATH_MAX];
    const char *path = a->script_path;
    if (!path) {
        snprintf(def, sizeof def, "diagnostic_%s.alls", hq_archive_net_name(archive));
        path = def;
    }
    if (hq_diag_accepted_count(diag) == 0 && !a->script_path) {
        diag_console_line(console, HQ_DIAG_INFO, false,
                          "No recommendation accepted; no model script written");
        return -1;
    }
    char other[PATH_MAX + 16];
    bool reserved = !a->script_path && reserve(path);
    if (!reserved && access(path, F_OK) == 0) {
        bool overwrite = false;
        if (interactive) {
            static const char *const yes_no[] = {"y", "n"};
            char question[PATH_MAX + 64];
            snprintf(question, sizeof question, "%s exists. Overwrite it?", path);
            overwrite = diag_console_ask(console, NULL, question, yes_no, 2, 1) == 0;
        }
        if (!overwrite) {
            numbered_name(path, other, sizeof other);
            diag_console_line(console, HQ_DIAG_WARNING, false,
                              "%s exists; writing the model script to %s instead", path, other);
            path = other;
            reserved = true;
        }
    }
    hq_error_t err = {0};
    if (hq_diag_write_script(diag, path, &err) != HQ_OK) {
        if (reserved)
            unlink(path);
        hq_cli_report("hq-diag", err.status, &err);
        return HQ_EXIT_FAILURE;
    }
    diag_console_line(console, HQ_DIAG_INFO, false,
                      "Model script with %d accepted recommendation(s) written to %s "
                      "(use: hq optimize -m %s)",
                      hq_diag_accepted_count(diag), path, path);
    return -1;
}

/* Opens the log for this run: refused (exit status) when another process holds its lock, else
 * locked and emptied. The lock (fcntl, released by the kernel when the process ends, so a crash
 * leaves none) keeps two runs from writing one log and one files folder. *out is the stream. */
static int open_log(const char *path, FILE **out)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        fprintf(stderr, "hq-diag: %s: cannot open the log file: %s\n", path, strerror(errno));
        return HQ_EXIT_FAILURE;
    }
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &lock) != 0) {
        struct flock holder = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        bool known = fcntl(fd, F_GETLK, &holder) == 0 && holder.l_type != F_UNLCK;
        fprintf(stderr,
                "hq-diag: --log-path %s: in use by another hq-diag run (process %ld); give "
                "each run its own --log-path\n",
                path, known ? (long)holder.l_pid : -1L);
        close(fd);
        return HQ_EXIT_FAILURE;
    }
    FILE *file = ftruncate(fd, 0) == 0 ? fdopen(fd, "w") : NULL;
    if (!file) {
        fprintf(stderr, "hq-diag: %s: cannot open the log file: %s\n", path, strerror(errno));
        close(fd);
        return HQ_EXIT_FAILURE;
    }
    *out = file;
    return -1;
}

int main(int argc, char **argv)
{
    args_t a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) {
        free(a.order);
        free(a.plugin_dirs);
        return rc;
    }
    diag_console_t console;
    /* The log is held in memory until the inputs proved readable: bad input writes no file. */
    char *pending = NULL;
    size_t pending_len = 0;
    FILE *log = a.list ? NULL : open_memstream(&pending, &pending_len);
    diag_console_init(&console, stdout, log, a.quiet);
    bool interactive =
        !a.no_interactive && !a.list && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (interactive) {
        console.in = stdin;
        console.prompt = stdout;
    }
    char out_dir[PATH_MAX];
    files_folder(a.log_path, out_dir, sizeof out_dir);
    hq_diag_options_t options = {
        .hw_arch = a.hw_arch,
        .sample_count = a.count,
        .output_dir = out_dir,
        .on_event = diag_console_event,
        .event_user = &console,
        .ask = interactive ? diag_console_ask : NULL,
        .ask_user = &console,
        .pick = interactive ? diag_console_pick : NULL,
        .accept = a.accept,
    };
    hq_error_t err = {0};
    hq_diag_t *diag = NULL;
    rc = -1;
    if (hq_diag_create(&options, &diag, &err) != HQ_OK) {
        hq_cli_report("hq-diag", err.status, &err);
        rc = HQ_EXIT_FAILURE;
    }
    if (rc < 0)
        rc = load_plugins(diag, &a, &console);
    if (rc < 0 && a.list) {
        list_inspectors(diag);
        rc = HQ_EXIT_OK;
    }
    if (rc < 0 && a.order_count > 0 &&
        hq_diag_set_order(diag, a.order, a.order_count, &err) != HQ_OK) {
        hq_cli_report("hq-diag", err.status, &err);
        rc = HQ_EXIT_FAILURE;
    }
    if (rc < 0) {
        diag_console_log(&console, NULL, "info", "hq-diag %s, %s, interactive: %s", hq_version(),
                         a.model, interactive ? "yes" : "no");
        if (hq_diag_open(diag, a.model, a.dataset, &err) != HQ_OK) {
            hq_cli_report("hq-diag", err.status, &err);
            rc = HQ_EXIT_FAILURE;
        }
    }
    /* --reference and --verify are checked before any work, like the inputs */
    if (rc < 0 && a.reference && hq_diag_set_reference(diag, a.reference, &err) != HQ_OK) {
        hq_cli_report("hq-diag", err.status, &err);
        rc = HQ_EXIT_FAILURE;
    }
    if (rc < 0 && a.verify) {
        hq_diag_verify_options_t verify = {
            .data_path = a.verify_data, .from_path = a.verify_from, .threads = (int)a.threads};
        if (hq_diag_set_verify(diag, &verify, &err) != HQ_OK) {
            hq_cli_report("hq-diag", err.status, &err);
            rc = HQ_EXIT_FAILURE;
        }
    }
    if (rc < 0 && log) {
        fflush(log);
        FILE *file = NULL;
        rc = open_log(a.log_path, &file);
        if (file) {
            fwrite(pending, 1, pending_len, file);
            fflush(file);
            fclose(log);
            log = console.log = file;
        }
    }
    if (rc < 0) {
        hq_archive_t *archive = hq_diag_archive(diag);
        diag_console_line(
            &console, HQ_DIAG_INFO, false, "Model %s: network %s, %s, %s; %s%s; %d inspector(s)",
            a.model, hq_archive_net_name(archive), hq_model_state_name(hq_archive_state(archive)),
            a.hw_arch ? a.hw_arch : hq_archive_hw_arch(archive),
            a.dataset ? "dataset " : "no dataset", a.dataset ? a.dataset : "",
            hq_diag_inspector_count(diag));
        int64_t used = hq_diag_sample_count(diag);
        if (a.dataset && a.count_given && used < a.count)
            diag_console_line(&console, HQ_DIAG_WARNING, false,
                              "-c %lld asked for more samples than the dataset holds; using all "
                              "%lld",
                              a.count, (long long)used);
        if (hq_diag_run(diag, &err) != HQ_OK) {
            if (err.status == HQ_ERR_STATE)
                diag_console_line(&console, HQ_DIAG_ERROR, true, "%s", err.message);
            else
                hq_cli_report("hq-diag", err.status, &err);
            rc = HQ_EXIT_FAILURE;
        }
    }
    if (rc < 0 && a.verify && hq_diag_verify(diag, &err) != HQ_OK) {
        hq_cli_report("hq-diag", err.status, &err);
        rc = HQ_EXIT_FAILURE;
    }
    if (rc < 0)
        rc = write_script(diag, &a, &console, interactive);
    if (rc < 0 && a.json_path && hq_diag_write_json(diag, a.json_path, &err) != HQ_OK) {
        hq_cli_report("hq-diag", err.status, &err);
        rc = HQ_EXIT_FAILURE;
    }
    if (rc < 0 && a.report_path && hq_diag_write_html(diag, a.report_path, &err) != HQ_OK) {
        hq_cli_report("hq-diag", err.status, &err);
        rc = HQ_EXIT_FAILURE;
    }
    if (rc < 0) {
        int errors = hq_diag_finding_count(diag, HQ_DIAG_ERROR);
        int warnings = hq_diag_finding_count(diag, HQ_DIAG_WARNING);
        diag_console_line(&console, HQ_DIAG_INFO, false,
                          "Done: %d error(s), %d warning(s), %d info; log in %s%s%s%s%s", errors,
                          warnings, hq_diag_finding_count(diag, HQ_DIAG_INFO), a.log_path,
                          a.json_path ? ", JSON in " : "", a.json_path ? a.json_path : "",
                          a.report_path ? ", report in " : "", a.report_path ? a.report_path : "");
        rc = errors ? HQ_EXIT_FINDINGS : HQ_EXIT_OK;
    }
    hq_diag_destroy(diag);
    if (log)
        fclose(log);
    free(pending);
    free(a.order);
    free(a.plugin_dirs);
    return rc;
}

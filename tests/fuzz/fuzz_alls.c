/* fuzz_alls.c — libFuzzer target for the model-script parser, printer and globs.
 * Checks the round-trip property: for every input the parser accepts, print -> parse -> print
 * is identical text and the re-parsed commands equal the originals structurally (all but the line
 * number, since a command written over several lines prints on one); each command
 * printed alone and appended to a fresh script parses back to the same command. Glob values are
 * run through hq_glob_match and every command through the vocabulary check. Any violation
 * aborts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/script.h"
#include "script/script_internal.h"
#include "script/script_query.h"

static void violation(const char *what, const char *detail)
{
    fprintf(stderr, "round-trip violation: %s\n%s\n", what, detail ? detail : "");
    abort();
}

static void exercise_globs(const hq_value_t *value)
{
    static const char *names[] = {"net/conv1", "conv12", "net/block_1/conv-3.a", "", "a/b/c"};
    if (value->kind == HQ_VALUE_GLOB)
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            (void)hq_glob_match(value->text, names[i]);
    for (int i = 0; i < value->item_count; i++)
        exercise_globs(&value->items[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hq_error_t err;
    hq_script_t *script = NULL;
    if (hq_script_parse((const char *)data, size, "fuzz.alls", &script, &err) != HQ_OK) {
        if (script || strncmp(err.message, "fuzz.alls", 9) != 0 || strchr(err.message, '\n'))
            violation("failed parse left a script or an ill-formed message", err.message);
        return 0;
    }
    char *first = NULL;
    if (hq_script_print(script, &first, &err) != HQ_OK)
        violation("parsed script does not print", err.message);
    hq_script_t *again = NULL;
    if (hq_script_parse(first, strlen(first), "printed.alls", &again, &err) != HQ_OK)
        violation("printed script does not parse", err.message);
    if (hq_script_command_count(again) != hq_script_command_count(script))
        violation("command count changed", first);
    hq_script_t *rebuilt = NULL;
    if (hq_script_create(&rebuilt, &err) != HQ_OK)
        abort();
    for (int i = 0; i < hq_script_command_count(script); i++) {
        const hq_command_t *a = hq_script_command(script, i);
        hq_command_t b = *hq_script_command(again, i);
        b.line = a->line;
        if (!hqi_command_equal(a, &b))
            violation("re-parsed command differs", first);
        for (int j = 0; j < a->arg_count; j++)
            exercise_globs(&a->args[j].value);
        /* the vocabulary check: an error is one line naming the script */
        if (hqi_script_check_command(a, "fuzz.alls", NULL, NULL, NULL, &err) != HQ_OK &&
            (strncmp(err.message, "fuzz.alls:", 10) != 0 || strchr(err.message, '\n')))
            violation("vocabulary check gave an ill-formed message", err.message);
        char *line = NULL;
        if (hq_command_print(a, &line, &err) != HQ_OK)
            violation("command does not print", err.message);
        if (hq_script_append_line(rebuilt, line, &err) != HQ_OK)
            violation("printed command does not append", err.message);
        hq_command_t copy = *hq_script_command(rebuilt, i);
        copy.line = a->line;
        if (!hqi_command_equal(a, &copy))
            violation("appended command differs", line);
        free(line);
    }
    char *second = NULL;
    if (hq_script_print(again, &second, &err) != HQ_OK)
        violation("re-parsed script does not print", err.message);
    if (strcmp(first, second) != 0)
        violation("second print differs from the first", first);
    char *third = NULL;
    if (hq_script_print(rebuilt, &third, &err) != HQ_OK || strcmp(first, third) != 0)
        violation("script rebuilt line by line prints differently", first);
    free(first);
    free(second);
    free(third);
    hq_script_destroy(rebuilt);
    hq_script_destroy(again);
    hq_script_destroy(script);
    return 0;
}

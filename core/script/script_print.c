/* script_print.c — prints commands and scripts in canonical form:
 *   `a, b = cmd(x, [1, 2], k=v, s='it\'s')  # comment`
 * Numbers keep the literal as written, strings are re-escaped with the quote they were written
 * with, globs and comments are printed verbatim. Anything that would not parse back as the same
 * command (a hand-built value with a space in an identifier, say) is refused, so that print ->
 * parse -> print is the identity for every command. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script/script_internal.h"
#include "util/util.h"

typedef struct printer {
    hqi_buf_t buf;
    int line; /* for messages */
    hq_error_t *err;
} printer_t;

static hq_status_t refuse(printer_t *pr, const char *what)
{
    return hqi_error(pr->err, HQ_ERR_ARGUMENT, "model script command on line %d: %s", pr->line,
                     what);
}

static void put(printer_t *pr, const char *s)
{
    hqi_buf_append(&pr->buf, s, strlen(s));
}

static bool is_name(const char *s)
{
    return hqi_script_is_single_token(s, HQ_VALUE_IDENT) &&
           hqi_script_is_ident_start((unsigned char)s[0]);
}

static bool is_glob_text(const char *s)
{
    if (!s)
        return false;
    int depth = 0;
    bool blank = true;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (!hqi_script_is_glob_char(*c))
            return false;
        if (*c == '{')
            depth++;
        else if (*c == '}' && --depth < 0)
            return false;
        if (*c != ' ' && *c != '\t')
            blank = false;
    }
    return depth == 0 && !blank;
}

/* A brace-list result as the parser keeps it: `{}` or `{a, b}`, braces included. */
static bool is_result_list(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 2 || s[0] != '{' || s[n - 1] != '}')
        return false;
    for (size_t i = 1; i + 1 < n; i++)
        if (!hqi_script_is_glob_char((unsigned char)s[i]))
            return false;
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        depth += s[i] == '{' ? 1 : s[i] == '}' ? -1 : 0;
        if (depth <= 0 && i + 1 < n)
            return false;
    }
    return depth == 0;
}

static void put_string(printer_t *pr, const char *text, char quote)
{
    char q[2] = {quote, '\0'};
    put(pr, q);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        char escaped[8];
        if (*c == '\\' || *c == (unsigned char)quote) {
            escaped[0] = '\\';
            escaped[1] = (char)*c;
            escaped[2] = '\0';
        } else if (*c == '\n') {
            strcpy(escaped, "\\n");
        } else if (*c == '\t') {
            strcpy(escaped, "\\t");
        } else if (*c == '\r') {
            strcpy(escaped, "\\r");
        } else if (*c < 0x20 || *c == 0x7f) {
            snprintf(escaped, sizeof escaped, "\\x%02x", *c);
        } else {
            escaped[0] = (char)*c;
            escaped[1] = '\0';
        }
        put(pr, escaped);
    }
    put(pr, q);
}

static hq_status_t put_value(printer_t *pr, const hq_value_t *value, int depth)
{
    if (depth >= HQI_SCRIPT_MAX_DEPTH)
        return refuse(pr, "lists nested too deeply");
    switch (value->kind) {
    case HQ_VALUE_NUMBER:
        if (value->text) {
            if (!hqi_script_is_single_token(value->text, HQ_VALUE_NUMBER))
                return refuse(pr, "number text is not a number literal");
            put(pr, value->text);
        } else {
            if (!isfinite(value->number))
                return refuse(pr, "number is not finite");
            hqi_buf_printf(&pr->buf, "%.17g", value->number);
        }
        return HQ_OK;
    case HQ_VALUE_IDENT:
        if (!hqi_script_is_single_token(value->text, HQ_VALUE_IDENT))
            return refuse(pr, "identifier value is not a valid identifier");
        put(pr, value->text);
        return HQ_OK;
    case HQ_VALUE_STRING:
        if (!value->text)
            return refuse(pr, "string value has no text");
        put_string(pr, value->text, value->quote == '\'' ? '\'' : '"');
        return HQ_OK;
    case HQ_VALUE_GLOB:
        if (!is_glob_text(value->text))
            return refuse(pr, "glob text is empty, unbalanced or has characters globs cannot hold");
        put(pr, "{");
        put(pr, value->text);
        put(pr, "}");
        return HQ_OK;
    case HQ_VALUE_LIST:
        if (value->item_count < 0 || (value->item_count > 0 && !value->items))
            return refuse(pr, "list has no items array");
        put(pr, "[");
        for (int i = 0; i < value->item_count; i++) {
            if (i > 0)
                put(pr, ", ");
            hq_status_t st = put_value(pr, &value->items[i], depth + 1);
            if (st != HQ_OK)
                return st;
        }
        put(pr, "]");
        return HQ_OK;
    }
    return refuse(pr, "unknown value kind");
}

static hq_status_t put_comment(printer_t *pr, const char *comment)
{
    size_t len = strlen(comment);
    if (strchr(comment, '\n') || (len > 0 && comment[len - 1] == '\r'))
        return refuse(pr, "comment holds a line break");
    put(pr, "#");
    put(pr, comment);
    return HQ_OK;
}

static hq_status_t put_command(printer_t *pr, const hq_command_t *command)
{
    pr->line = command->line;
    if (!command->name) {
        if (command->result_count > 0 || command->arg_count > 0)
            return refuse(pr, "results or arguments without a command name");
        return command->comment ? put_comment(pr, command->comment) : HQ_OK;
    }
    if (!is_name(command->name))
        return refuse(pr, "command name is not a valid identifier");
    if (command->result_count < 0 || command->arg_count < 0 ||
        (command->result_count > 0 && !command->results) ||
        (command->arg_count > 0 && !command->args))
        return refuse(pr, "inconsistent result or argument count");
    for (int i = 0; i < command->result_count; i++) {
        if (!is_name(command->results[i]) && !is_result_list(command->results[i]))
            return refuse(pr, "result name is not a valid identifier or brace list");
        put(pr, i > 0 ? ", " : "");
        put(pr, command->results[i]);
    }
    if (command->result_count > 0)
        put(pr, " = ");
    put(pr, command->name);
    put(pr, "(");
    for (int i = 0; i < command->arg_count; i++) {
        const hq_arg_t *arg = &command->args[i];
        if (i > 0)
            put(pr, ", ");
        if (arg->key) {
            if (!hqi_script_is_single_token(arg->key, HQ_VALUE_IDENT))
                return refuse(pr, "keyword is not a valid identifier");
            for (int j = 0; j < i; j++)
                if (command->args[j].key && strcmp(command->args[j].key, arg->key) == 0)
                    return refuse(pr, "duplicate keyword argument");
            put(pr, arg->key);
            put(pr, "=");
        }
        hq_status_t st = put_value(pr, &arg->value, 0);
        if (st != HQ_OK)
            return st;
    }
    put(pr, ")");
    if (command->comment) {
        put(pr, "  ");
        return put_comment(pr, command->comment);
    }
    return HQ_OK;
}

/* Hands the buffer over as a NUL-terminated string. */
static hq_status_t finish(printer_t *pr, hq_status_t st, char **text)
{
    if (st == HQ_OK) {
        hqi_buf_append(&pr->buf, "", 1);
        if (pr->buf.failed)
            st = hqi_nomem(pr->err, "model script printer");
    }
    if (st != HQ_OK) {
        hqi_buf_free(&pr->buf);
        return st;
    }
    *text = (char *)pr->buf.data;
    return HQ_OK;
}

HQ_API hq_status_t hq_command_print(const hq_command_t *command, char **text, hq_error_t *err)
{
    if (!command || !text)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_command_print: %s is NULL",
                         command ? "text" : "command");
    *text = NULL;
    printer_t pr = {.err = err};
    return finish(&pr, put_command(&pr, command), text);
}

HQ_API hq_status_t hq_script_print(const hq_script_t *script, char **text, hq_error_t *err)
{
    if (!script || !text)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_script_print: %s is NULL",
                         script ? "text" : "script");
    *text = NULL;
    printer_t pr = {.err = err};
    hq_status_t st = HQ_OK;
    for (int i = 0; i < script->count && st == HQ_OK; i++) {
        st = put_command(&pr, &script->commands[i]);
        put(&pr, "\n");
    }
    return finish(&pr, st, text);
}

/* script.c — the model script object: splitting text into lines for the parser, the command
 * list (append, remove, look up), argument accessors, cleanup and structural equality. */
#include <stdlib.h>
#include <string.h>

#include "script/script_internal.h"
#include "script/script_query.h"
#include "util/util.h"

/* Name used in messages for scripts that did not come from a file. */
static const char default_name[] = "<script>";

void hqi_value_clear(hq_value_t *value)
{
    if (!value)
        return;
    free(value->text);
    for (int i = 0; i < value->item_count; i++)
        hqi_value_clear(&value->items[i]);
    free(value->items);
    memset(value, 0, sizeof *value);
}

void hqi_command_clear(hq_command_t *command)
{
    if (!command)
        return;
    for (int i = 0; i < command->result_count; i++)
        free(command->results[i]);
    free(command->results);
    free(command->name);
    for (int i = 0; i < command->arg_count; i++) {
        free(command->args[i].key);
        hqi_value_clear(&command->args[i].value);
    }
    free(command->args);
    free(command->comment);
    memset(command, 0, sizeof *command);
}

static bool same_string(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool hqi_value_equal(const hq_value_t *a, const hq_value_t *b)
{
    if (a->kind != b->kind || !same_string(a->text, b->text))
        return false;
    switch (a->kind) {
    case HQ_VALUE_NUMBER:
        return a->number == b->number || (a->number != a->number && b->number != b->number);
    case HQ_VALUE_STRING:
        return a->quote == b->quote;
    case HQ_VALUE_LIST:
        if (a->item_count != b->item_count)
            return false;
        for (int i = 0; i < a->item_count; i++)
            if (!hqi_value_equal(&a->items[i], &b->items[i]))
                return false;
        return true;
    default:
        return true;
    }
}

bool hqi_command_equal(const hq_command_t *a, const hq_command_t *b)
{
    if (a->line != b->line || a->result_count != b->result_count || a->arg_count != b->arg_count ||
        !same_string(a->name, b->name) || !same_string(a->comment, b->comment))
        return false;
    for (int i = 0; i < a->result_count; i++)
        if (!same_string(a->results[i], b->results[i]))
            return false;
    for (int i = 0; i < a->arg_count; i++)
        if (!same_string(a->args[i].key, b->args[i].key) ||
            !hqi_value_equal(&a->args[i].value, &b->args[i].value))
            return false;
    return true;
}

HQ_API hq_status_t hq_script_create(hq_script_t **out, hq_error_t *err)
{
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_script_create: out is NULL");
    *out = NULL;
    hq_script_t *script = calloc(1, sizeof *script);
    if (!script)
        return hqi_nomem(err, default_name);
    script->name = hqi_strdup(default_name);
    if (!script->name) {
        free(script);
        return hqi_nomem(err, default_name);
    }
    *out = script;
    return HQ_OK;
}

HQ_API void hq_script_destroy(hq_script_t *script)
{
    if (!script)
        return;
    for (int i = 0; i < script->count; i++)
        hqi_command_clear(&script->commands[i]);
    free(script->commands);
    free(script->name);
    free(script);
}

/* Makes room for one more command. */
static hq_status_t reserve_one(hq_script_t *script, hq_error_t *err)
{
    if (script->count < script->capacity)
        return HQ_OK;
    if (script->capacity > (1 << 28))
        return hqi_error(err, HQ_ERR_LIMIT, "%s: too many commands", script->name);
    int grown = script->capacity ? script->capacity * 2 : 16;
    hq_command_t *commands = realloc(script->commands, (size_t)grown * sizeof *commands);
    if (!commands)
        return hqi_nomem(err, script->name);
    script->commands = commands;
    script->capacity = grown;
    return HQ_OK;
}

/* Where the command that starts at text[pos] ends: at the first line break outside every open
 * parenthesis and bracket (so a long command may continue over several lines, as Hailo's scripts
 * write them), or at the end of the text. Strings, globs and '#' comments are skipped so that a
 * bracket inside them does not count; a string or comment never runs past its own line. Sets
 * *newlines to the line breaks inside the command. */
static size_t logical_line_end(const char *text, size_t len, size_t pos, int *newlines)
{
    int depth = 0;
    *newlines = 0;
    for (size_t i = pos; i < len; i++) {
        char c = text[i];
        if (c == '\n') {
            if (depth <= 0)
                return i;
            ++*newlines;
        } else if (c == '(' || c == '[') {
            depth++;
        } else if (c == ')' || c == ']') {
            depth--;
        } else if (c == '#') {
            while (i + 1 < len && text[i + 1] != '\n')
                i++;
        } else if (c == '"' || c == '\'') {
            while (i + 1 < len && text[i + 1] != '\n' && text[i + 1] != c) {
                if (text[i + 1] == '\\' && i + 2 < len && text[i + 2] != '\n')
                    i++;
                i++;
            }
            if (i + 1 < len && text[i + 1] == c)
                i++;
        } else if (c == '{') {
            int braces = 1;
            while (i + 1 < len && text[i + 1] != '\n' && braces > 0) {
                i++;
                braces += text[i] == '{' ? 1 : text[i] == '}' ? -1 : 0;
            }
        }
    }
    return len;
}

/* Parses one command (line breaks inside it only within open parentheses or brackets; trailing
 * '\r's are dropped here) and appends it. */
static hq_status_t append_parsed(hq_script_t *script, const char *text, size_t len, int line,
                                 hq_error_t *err)
{
    while (len > 0 && text[len - 1] == '\r')
        len--;
    hq_status_t st = reserve_one(script, err);
    if (st != HQ_OK)
        return st;
    hq_command_t command;
    st = hqi_script_parse_line(text, len, script->name, line, &command, err);
    if (st != HQ_OK)
        return st;
    script->commands[script->count++] = command;
    return HQ_OK;
}

HQ_API hq_status_t hq_script_parse(const char *text, size_t len, const char *name,
                                   hq_script_t **out, hq_error_t *err)
{
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_script_parse: out is NULL");
    *out = NULL;
    if (!name)
        name = default_name;
    if (!text && len > 0)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: script text is NULL", name);
    if (len > HQI_SCRIPT_MAX_BYTES)
        return hqi_error(err, HQ_ERR_LIMIT, "%s: script is %zu bytes, more than the %zu allowed",
                         name, len, HQI_SCRIPT_MAX_BYTES);
    hq_script_t *script;
    hq_status_t st = hq_script_create(&script, err);
    if (st != HQ_OK)
        return st;
    free(script->name);
    script->name = hqi_strdup(name);
    if (!script->name) {
        hq_script_destroy(script);
        return hqi_nomem(err, name);
    }
    size_t pos = 0;
    int line = 1;
    while (pos < len) {
        int newlines = 0;
        size_t end = logical_line_end(text, len, pos, &newlines);
        st = append_parsed(script, text + pos, end - pos, line, err);
        if (st != HQ_OK) {
            hq_script_destroy(script);
            return st;
        }
        line += newlines + 1;
        pos = end < len ? end + 1 : len;
    }
    *out = script;
    return HQ_OK;
}

const char *hqi_script_name(const hq_script_t *script)
{
    return script ? script->name : NULL;
}

HQ_API int hq_script_command_count(const hq_script_t *script)
{
    return script ? script->count : 0;
}

HQ_API const hq_command_t *hq_script_command(const hq_script_t *script, int index)
{
    if (!script || index < 0 || index >= script->count)
        return NULL;
    return &script->commands[index];
}

HQ_API hq_status_t hq_script_append_line(hq_script_t *script, const char *line, hq_error_t *err)
{
    if (!script || !line)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_script_append_line: %s is NULL",
                         script ? "line" : "script");
    int number = script->count > 0 ? script->commands[script->count - 1].line + 1 : 1;
    if (number <= 0)
        number = script->count + 1;
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\n')
        len--;
    const char *newline = memchr(line, '\n', len);
    if (newline)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s:%d:%zu: expected one line, found a line break",
                         script->name, number, (size_t)(newline - line) + 1);
    return append_parsed(script, line, len, number, err);
}

HQ_API hq_status_t hq_script_remove(hq_script_t *script, int index, hq_error_t *err)
{
    if (!script)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_script_remove: script is NULL");
    if (index < 0 || index >= script->count)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: no command at index %d (the script has %d)",
                         script->name, index, script->count);
    hqi_command_clear(&script->commands[index]);
    memmove(&script->commands[index], &script->commands[index + 1],
            (size_t)(script->count - index - 1) * sizeof *script->commands);
    script->count--;
    return HQ_OK;
}

HQ_API const hq_value_t *hq_command_kwarg(const hq_command_t *command, const char *key)
{
    if (!command || !key)
        return NULL;
    for (int i = 0; i < command->arg_count; i++)
        if (command->args[i].key && strcmp(command->args[i].key, key) == 0)
            return &command->args[i].value;
    return NULL;
}

HQ_API const hq_value_t *hq_command_positional(const hq_command_t *command, int index)
{
    if (!command || index < 0)
        return NULL;
    for (int i = 0; i < command->arg_count; i++) {
        if (command->args[i].key)
            continue;
        if (index-- == 0)
            return &command->args[i].value;
    }
    return NULL;
}

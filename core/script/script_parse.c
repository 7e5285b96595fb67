/* script_parse.c — tokenizer and recursive-descent parser for one line of a model script
 * (.alls). The grammar is in include/hq/script.h; this file decides the lexical details:
 *   number  := [+-] (digits ['.' digits*] | '.' digits) [(e|E) [+-] digits]
 *              (a word that starts like a number but goes on with identifier characters, such as
 *              `1x1_conv`, is an identifier when it starts with a digit, an error otherwise)
 *   ident   := (letter | '_' | digit) {letter | digit | '_' | '/' | '.' | '-'}
 *   string  := '"' ... '"' | '\'' ... '\''   escapes \\ \' \" \n \t \r \xHH; any other
 *              backslash is kept as written (like Python)
 *   glob    := '{' ... '}'   identifier characters, * ? [ ] ! ^ , spaces and nested { }
 *   comment := '#' to the end of the line, kept verbatim when it ends the command; a comment on
 *              a line that the command continues past is dropped
 * A command may continue over several lines while a parenthesis or bracket is open (script.c
 * cuts the text into commands); line breaks inside one are white space here. Every error names
 * "<file>:<line>:<column>", the line and column (1-based, in bytes) of the offending token. Input is hostile: no recursion deeper than HQI_SCRIPT_MAX_DEPTH, no unchecked sizes. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script/script_internal.h"
#include "util/util.h"

typedef enum token_kind {
    TOKEN_END = 0, /* end of the line */
    TOKEN_IDENT,
    TOKEN_NUMBER,
    TOKEN_STRING, /* from the opening to past the closing quote */
    TOKEN_GLOB,   /* from '{' to past the matching '}' */
    TOKEN_LPAREN,
    TOKEN_RPAREN,
    TOKEN_LBRACKET,
    TOKEN_RBRACKET,
    TOKEN_COMMA,
    TOKEN_EQUALS,
    TOKEN_COMMENT, /* from '#' to the end of the line */
} token_kind_t;

typedef struct token {
    token_kind_t kind;
    size_t start; /* byte offset in the line */
    size_t end;   /* one past the last byte */
} token_t;

typedef struct parser {
    const char *text; /* the line, without its line ending */
    size_t len;
    size_t pos;       /* where the next token starts being looked for */
    token_t token;    /* current lookahead */
    size_t prev_end;  /* one past the token before the lookahead */
    size_t last_text; /* offset of the command's last non-blank byte (or len when blank) */
    const char *name; /* file name for messages */
    int line;         /* the line the command starts on */
    hq_error_t *err;
} parser_t;

bool hqi_script_is_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

bool hqi_script_is_ident_char(unsigned char c)
{
    return hqi_script_is_ident_start(c) || is_digit(c) || c == '/' || c == '.' || c == '-';
}

bool hqi_script_is_glob_char(unsigned char c)
{
    return hqi_script_is_ident_char(c) || c == '*' || c == '?' || c == '[' || c == ']' ||
           c == '!' || c == '^' || c == ',' || c == ' ' || c == '\t' || c == '{' || c == '}';
}

static hq_status_t fail(parser_t *p, hq_status_t status, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static hq_status_t fail(parser_t *p, hq_status_t status, size_t offset, const char *fmt, ...)
{
    char what[HQ_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int line = p->line;
    size_t column = offset;
    for (size_t i = 0; i < offset && i < p->len; i++)
        if (p->text[i] == '\n') {
            line++;
            column = offset - i - 1;
        }
    return hqi_error(p->err, status, "%s:%d:%zu: %s", p->name, line, column + 1, what);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Offset of the line break between the previous token and the lookahead, or (size_t)-1: an
 * error there reads "found end of line", as it would on a one-line command. */
static size_t break_before_token(const parser_t *p)
{
    for (size_t i = p->prev_end; i < p->token.start && i < p->len; i++)
        if (p->text[i] == '\n')
            return i;
    return (size_t)-1;
}

/* A character as an error message shows it: 'x' or '\xHH'. */
static void describe_char(unsigned char c, char *out, size_t size)
{
    if (c >= 0x20 && c < 0x7f && c != '\'')
        snprintf(out, size, "'%c'", c);
    else
        snprintf(out, size, "'\\x%02x'", c);
}

/* The current token as an error message shows it ("')'", "end of line", "'conv1'"). */
static void describe_token(const parser_t *p, const token_t *t, char *out, size_t size)
{
    switch (t->kind) {
    case TOKEN_END:
        snprintf(out, size, "end of line");
        return;
    case TOKEN_COMMENT:
        snprintf(out, size, "a '#' comment");
        return;
    case TOKEN_STRING:
        snprintf(out, size, "a string");
        return;
    case TOKEN_GLOB:
        snprintf(out, size, "a glob");
        return;
    case TOKEN_IDENT:
    case TOKEN_NUMBER: {
        size_t n = t->end - t->start;
        int shown = n > 40 ? 40 : (int)n;
        snprintf(out, size, "'%.*s%s'", shown, p->text + t->start, n > 40 ? "..." : "");
        return;
    }
    default:
        describe_char((unsigned char)p->text[t->start], out, size);
        return;
    }
}

static size_t scan_digits(const char *s, size_t len, size_t i)
{
    while (i < len && is_digit((unsigned char)s[i]))
        i++;
    return i;
}

/* Length of the number starting at s[0], or 0 when s does not start with one. */
static size_t scan_number(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    size_t int_end = scan_digits(s, len, i);
    size_t digits = int_end - i;
    i = int_end;
    if (i < len && s[i] == '.') {
        size_t frac_end = scan_digits(s, len, i + 1);
        digits += frac_end - (i + 1);
        if (digits > 0)
            i = frac_end;
    }
    if (digits == 0)
        return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < len && (s[j] == '+' || s[j] == '-'))
            j++;
        size_t exp_end = scan_digits(s, len, j);
        if (exp_end > j)
            i = exp_end;
    }
    return i;
}

static hq_status_t lex(parser_t *p, token_t *t)
{
    const char *s = p->text;
    size_t len = p->len;
    size_t i = p->pos;
    for (;;) {
        while (i < len && is_blank(s[i]))
            i++;
        if (i >= len || s[i] != '#')
            break;
        size_t end = i;
        while (end < len && s[end] != '\n')
            end++;
        if (p->last_text < end) /* the comment that ends the command: a token */
            break;
        i = end; /* a comment on a line the command continues past */
    }
    t->start = i;
    if (i >= len) {
        t->kind = TOKEN_END;
        t->end = i;
        p->pos = i;
        return HQ_OK;
    }
    unsigned char c = (unsigned char)s[i];
    static const char punctuation[] = "()[],=";
    static const token_kind_t punctuation_kinds[] = {TOKEN_LPAREN,   TOKEN_RPAREN, TOKEN_LBRACKET,
                                                     TOKEN_RBRACKET, TOKEN_COMMA,  TOKEN_EQUALS};
    const char *punct = c ? strchr(punctuation, c) : NULL;
    if (punct) {
        t->kind = punctuation_kinds[punct - punctuation];
        t->end = i + 1;
    } else if (c == '#') {
        size_t j = i;
        while (j < len && s[j] != '\n' && s[j] != '\r')
            j++;
        t->kind = TOKEN_COMMENT;
        t->end = j;
    } else if (hqi_script_is_ident_start(c)) {
        size_t j = i + 1;
        while (j < len && hqi_script_is_ident_char((unsigned char)s[j]))
            j++;
        t->kind = TOKEN_IDENT;
        t->end = j;
    } else if (is_digit(c) || c == '+' || c == '-' || c == '.') {
        size_t n = scan_number(s + i, len - i);
        if (n == 0) {
            char shown[16];
            describe_char(c, shown, sizeof shown);
            return fail(p, HQ_ERR_FORMAT, i, "stray character %s", shown);
        }
        size_t j = i + n;
        if (j < len && hqi_script_is_ident_char((unsigned char)s[j])) {
            if (!is_digit(c))
                return fail(p, HQ_ERR_FORMAT, i, "malformed number '%.*s'",
                            (int)(j + 1 - i > 40 ? 40 : j + 1 - i), s + i);
            while (j < len && hqi_script_is_ident_char((unsigned char)s[j]))
                j++;
            t->kind = TOKEN_IDENT;
        } else {
            t->kind = TOKEN_NUMBER;
        }
        t->end = j;
    } else if (c == '"' || c == '\'') {
        size_t j = i + 1;
        while (j < len && (unsigned char)s[j] != c && s[j] != '\n') {
            if (s[j] == '\\' && j + 1 < len && s[j + 1] != '\n')
                j++;
            j++;
        }
        if (j >= len || s[j] == '\n')
            return fail(p, HQ_ERR_FORMAT, i, "unterminated string: no closing %c", c);
        t->kind = TOKEN_STRING;
        t->end = j + 1;
    } else if (c == '{') {
        size_t j = i + 1;
        size_t depth = 1;
        while (j < len && depth > 0) {
            unsigned char g = (unsigned char)s[j];
            if (!hqi_script_is_glob_char(g)) {
                char shown[16];
                describe_char(g, shown, sizeof shown);
                return fail(p, HQ_ERR_FORMAT, j, "unexpected %s in glob, expected '}'", shown);
            }
            if (g == '{')
                depth++;
            else if (g == '}')
                depth--;
            j++;
        }
        if (depth > 0)
            return fail(p, HQ_ERR_FORMAT, i, "unterminated glob: no closing '}'");
        t->kind = TOKEN_GLOB;
        t->end = j;
    } else {
        char shown[16];
        describe_char(c, shown, sizeof shown);
        return fail(p, HQ_ERR_FORMAT, i, "stray character %s", shown);
    }
    p->pos = t->end;
    return HQ_OK;
}

static hq_status_t advance(parser_t *p)
{
    p->prev_end = p->token.end;
    return lex(p, &p->token);
}

bool hqi_script_is_single_token(const char *text, hq_value_kind_t kind)
{
    if (!text)
        return false;
    size_t len = strlen(text);
    parser_t p = {.text = text, .len = len, .last_text = len, .name = "", .line = 0, .err = NULL};
    token_t t;
    if (len == 0 || lex(&p, &t) != HQ_OK || t.start != 0 || t.end != len)
        return false;
    return (kind == HQ_VALUE_IDENT && t.kind == TOKEN_IDENT) ||
           (kind == HQ_VALUE_NUMBER && t.kind == TOKEN_NUMBER);
}

static char *token_text(const parser_t *p, const token_t *t)
{
    return hqi_strndup(p->text + t->start, t->end - t->start);
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Unescapes the string token into value->text. */
static hq_status_t decode_string(parser_t *p, const token_t *t, hq_value_t *value)
{
    const char *s = p->text;
    size_t end = t->end - 1; /* the closing quote */
    char *out = malloc(end - t->start);
    if (!out)
        return hqi_nomem(p->err, p->name);
    size_t n = 0;
    for (size_t i = t->start + 1; i < end; i++) {
        char c = s[i];
        if (c != '\\') {
            out[n++] = c;
            continue;
        }
        char e = s[i + 1]; /* the lexer guarantees a character after a backslash */
        switch (e) {
        case '\\':
        case '\'':
        case '"':
            out[n++] = e;
            i++;
            break;
        case 'n':
            out[n++] = '\n';
            i++;
            break;
        case 't':
            out[n++] = '\t';
            i++;
            break;
        case 'r':
            out[n++] = '\r';
            i++;
            break;
        case 'x': {
            int hi = i + 2 < end ? hex_value((unsigned char)s[i + 2]) : -1;
            int lo = i + 3 < end ? hex_value((unsigned char)s[i + 3]) : -1;
            if (hi < 0 || lo < 0) {
                out[n++] = '\\'; /* kept as written, like an unknown escape */
                break;
            }
            if (hi == 0 && lo == 0) {
                free(out);
                return fail(p, HQ_ERR_FORMAT, i, "NUL character escape in string");
            }
            out[n++] = (char)(hi * 16 + lo);
            i += 3;
            break;
        }
        default:
            out[n++] = '\\';
            break; /* unknown escape: keep the backslash */
        }
    }
    out[n] = '\0';
    value->kind = HQ_VALUE_STRING;
    value->text = out;
    value->quote = s[t->start];
    return HQ_OK;
}

static hq_status_t parse_value(parser_t *p, hq_value_t *value, int depth);

static hq_status_t parse_list(parser_t *p, hq_value_t *value, int depth)
{
    size_t open = p->token.start;
    if (depth >= HQI_SCRIPT_MAX_DEPTH)
        return fail(p, HQ_ERR_LIMIT, open, "lists nested deeper than %d levels",
                    HQI_SCRIPT_MAX_DEPTH);
    value->kind = HQ_VALUE_LIST;
    hq_status_t st = advance(p);
    if (st != HQ_OK)
        return st;
    if (p->token.kind == TOKEN_RBRACKET)
        return advance(p);
    int capacity = 0;
    for (;;) {
        if (value->item_count == capacity) {
            if (capacity > INT_MAX / 2 - 1)
                return fail(p, HQ_ERR_LIMIT, p->token.start, "too many list items");
            int grown = capacity ? capacity * 2 : 4;
            hq_value_t *items = realloc(value->items, (size_t)grown * sizeof *items);
            if (!items)
                return hqi_nomem(p->err, p->name);
            value->items = items;
            capacity = grown;
        }
        hq_value_t *item = &value->items[value->item_count];
        memset(item, 0, sizeof *item);
        st = parse_value(p, item, depth + 1);
        value->item_count++; /* counted even on failure so that the cleanup frees it */
        if (st != HQ_OK)
            return st;
        if (p->token.kind == TOKEN_COMMA) {
            if ((st = advance(p)) != HQ_OK)
                return st;
            continue;
        }
        if (p->token.kind == TOKEN_RBRACKET)
            return advance(p);
        char found[64];
        describe_token(p, &p->token, found, sizeof found);
        size_t line_end = break_before_token(p);
        if (line_end != (size_t)-1 && p->token.kind != TOKEN_RBRACKET)
            return fail(p, HQ_ERR_FORMAT, line_end,
                        "expected ']' to close the list opened at column %zu, found end of line",
                        open + 1);
        if (p->token.kind == TOKEN_END || p->token.kind == TOKEN_COMMENT ||
            p->token.kind == TOKEN_RPAREN)
            return fail(p, HQ_ERR_FORMAT, p->token.start,
                        "expected ']' to close the list opened at column %zu, found %s", open + 1,
                        found);
        return fail(p, HQ_ERR_FORMAT, p->token.start, "expected ',' or ']' in list, found %s",
                    found);
    }
}

static hq_status_t parse_value(parser_t *p, hq_value_t *value, int depth)
{
    token_t t = p->token;
    switch (t.kind) {
    case TOKEN_NUMBER:
    case TOKEN_IDENT:
        value->kind = t.kind == TOKEN_NUMBER ? HQ_VALUE_NUMBER : HQ_VALUE_IDENT;
        value->text = token_text(p, &t);
        if (!value->text)
            return hqi_nomem(p->err, p->name);
        if (t.kind == TOKEN_NUMBER)
            value->number = strtod(value->text, NULL);
        return advance(p);
    case TOKEN_STRING: {
        hq_status_t st = decode_string(p, &t, value);
        return st != HQ_OK ? st : advance(p);
    }
    case TOKEN_GLOB: {
        size_t i = t.start + 1;
        while (i < t.end - 1 && (p->text[i] == ' ' || p->text[i] == '\t'))
            i++;
        if (i == t.end - 1)
            return fail(p, HQ_ERR_FORMAT, t.start, "empty glob '{}'");
        value->kind = HQ_VALUE_GLOB;
        value->text = hqi_strndup(p->text + t.start + 1, t.end - t.start - 2);
        if (!value->text)
            return hqi_nomem(p->err, p->name);
        return advance(p);
    }
    case TOKEN_LBRACKET:
        return parse_list(p, value, depth);
    default: {
        char found[64];
        describe_token(p, &t, found, sizeof found);
        return fail(p, HQ_ERR_FORMAT, t.start, "expected a value, found %s", found);
    }
    }
}

static hq_status_t parse_argument(parser_t *p, hq_command_t *command)
{
    hq_status_t st;
    hq_arg_t *arg = &command->args[command->arg_count];
    memset(arg, 0, sizeof *arg);
    command->arg_count++; /* counted at once so that the cleanup frees a half-parsed argument */
    if (p->token.kind == TOKEN_IDENT) {
        token_t key = p->token;
        size_t saved = p->pos;
        token_t next;
        if ((st = lex(p, &next)) != HQ_OK)
            return st;
        if (next.kind == TOKEN_EQUALS) {
            size_t key_len = key.end - key.start;
            for (int i = 0; i + 1 < command->arg_count; i++) {
                const char *other = command->args[i].key;
                if (other && strlen(other) == key_len &&
                    memcmp(other, p->text + key.start, key_len) == 0)
                    return fail(p, HQ_ERR_FORMAT, key.start, "duplicate keyword argument '%s'",
                                other);
            }
            arg->key = token_text(p, &key);
            if (!arg->key)
                return hqi_nomem(p->err, p->name);
            if ((st = advance(p)) != HQ_OK)
                return st;
            return parse_value(p, &arg->value, 0);
        }
        p->pos = saved;
    }
    return parse_value(p, &arg->value, 0);
}

static hq_status_t parse_arguments(parser_t *p, hq_command_t *command, size_t open)
{
    hq_status_t st;
    if (p->token.kind == TOKEN_RPAREN)
        return advance(p);
    int capacity = 0;
    for (;;) {
        if (command->arg_count == HQI_SCRIPT_MAX_ARGS)
            return fail(p, HQ_ERR_LIMIT, p->token.start, "more than %d arguments",
                        HQI_SCRIPT_MAX_ARGS);
        if (command->arg_count == capacity) {
            int grown = capacity ? capacity * 2 : 4;
            hq_arg_t *args = realloc(command->args, (size_t)grown * sizeof *args);
            if (!args)
                return hqi_nomem(p->err, p->name);
            command->args = args;
            capacity = grown;
        }
        if ((st = parse_argument(p, command)) != HQ_OK)
            return st;
        if (p->token.kind == TOKEN_COMMA) {
            if ((st = advance(p)) != HQ_OK)
                return st;
            continue;
        }
        if (p->token.kind == TOKEN_RPAREN)
            return advance(p);
        char found[64];
        describe_token(p, &p->token, found, sizeof found);
        size_t line_end = break_before_token(p);
        if (line_end != (size_t)-1)
            return fail(p, HQ_ERR_FORMAT, line_end,
                        "expected ')' after argument list (opened at column %zu), found end of line",
                        open + 1);
        if (p->token.kind == TOKEN_END || p->token.kind == TOKEN_COMMENT)
            return fail(p, HQ_ERR_FORMAT, p->token.start,
                        "expected ')' after argument list (opened at column %zu), found %s",
                        open + 1, found);
        return fail(p, HQ_ERR_FORMAT, p->token.start,
                    "expected ',' or ')' after argument, found %s", found);
    }
}

static hq_status_t take_comment(parser_t *p, hq_command_t *command)
{
    const token_t *t = &p->token;
    command->comment = hqi_strndup(p->text + t->start + 1, t->end - t->start - 1);
    if (!command->comment)
        return hqi_nomem(p->err, p->name);
    return advance(p);
}

static hq_status_t expect_name(parser_t *p, const char *what)
{
    const token_t *t = &p->token;
    if (t->kind == TOKEN_IDENT && hqi_script_is_ident_start((unsigned char)p->text[t->start]))
        return HQ_OK;
    char found[64];
    describe_token(p, t, found, sizeof found);
    return fail(p, HQ_ERR_FORMAT, t->start, "expected %s, found %s", what, found);
}

/* A result target: a name, or a brace list (`{}`, `{a, b}`) as Hailo's scripts write for layers a
 * command creates. */
static hq_status_t expect_result(parser_t *p, const char *what)
{
    return p->token.kind == TOKEN_GLOB ? HQ_OK : expect_name(p, what);
}

static hq_status_t push_result(parser_t *p, hq_command_t *command, const token_t *t)
{
    if (command->result_count == HQI_SCRIPT_MAX_ARGS)
        return fail(p, HQ_ERR_LIMIT, t->start, "more than %d result names", HQI_SCRIPT_MAX_ARGS);
    char **results =
        realloc(command->results, ((size_t)command->result_count + 1) * sizeof *results);
    if (!results)
        return hqi_nomem(p->err, p->name);
    command->results = results;
    results[command->result_count] = token_text(p, t);
    if (!results[command->result_count])
        return hqi_nomem(p->err, p->name);
    command->result_count++;
    return HQ_OK;
}

static hq_status_t parse_line(parser_t *p, hq_command_t *command)
{
    hq_status_t st;
    for (size_t i = 0; i < p->len; i++)
        if (p->text[i] == '\0')
            return fail(p, HQ_ERR_FORMAT, i, "NUL byte in input");
    if ((st = advance(p)) != HQ_OK)
        return st;
    if (p->token.kind == TOKEN_END)
        return HQ_OK;
    if (p->token.kind == TOKEN_COMMENT)
        return take_comment(p, command);
    if ((st = expect_result(p, "a command name")) != HQ_OK)
        return st;
    token_t name = p->token;
    if ((st = advance(p)) != HQ_OK)
        return st;
    if (name.kind == TOKEN_GLOB && p->token.kind != TOKEN_COMMA && p->token.kind != TOKEN_EQUALS) {
        char found[64];
        describe_token(p, &p->token, found, sizeof found);
        return fail(p, HQ_ERR_FORMAT, p->token.start,
                    "expected ',' or '=' after the result list, found %s", found);
    }
    if (p->token.kind == TOKEN_COMMA || p->token.kind == TOKEN_EQUALS) {
        if ((st = push_result(p, command, &name)) != HQ_OK)
            return st;
        while (p->token.kind == TOKEN_COMMA) {
            if ((st = advance(p)) != HQ_OK ||
                (st = expect_result(p, "a result name after ','")) != HQ_OK ||
                (st = push_result(p, command, &p->token)) != HQ_OK || (st = advance(p)) != HQ_OK)
                return st;
        }
        if (p->token.kind != TOKEN_EQUALS) {
            char found[64];
            describe_token(p, &p->token, found, sizeof found);
            return fail(p, HQ_ERR_FORMAT, p->token.start,
                        "expected '=' after result names, found %s", found);
        }
        if ((st = advance(p)) != HQ_OK ||
            (st = expect_name(p, "a command name after '='")) != HQ_OK)
            return st;
        name = p->token;
        if ((st = advance(p)) != HQ_OK)
            return st;
    }
    command->name = token_text(p, &name);
    if (!command->name)
        return hqi_nomem(p->err, p->name);
    if (p->token.kind != TOKEN_LPAREN) {
        char found[64];
        describe_token(p, &p->token, found, sizeof found);
        return fail(p, HQ_ERR_FORMAT, p->token.start,
                    "expected '(' after command name '%.*s', found %s",
                    (int)(name.end - name.start > 64 ? 64 : name.end - name.start),
                    p->text + name.start, found);
    }
    size_t open = p->token.start;
    if ((st = advance(p)) != HQ_OK || (st = parse_arguments(p, command, open)) != HQ_OK)
        return st;
    if (p->token.kind == TOKEN_COMMENT && (st = take_comment(p, command)) != HQ_OK)
        return st;
    if (p->token.kind != TOKEN_END) {
        char found[64];
        describe_token(p, &p->token, found, sizeof found);
        return fail(p, HQ_ERR_FORMAT, p->token.start,
                    "unexpected %s after ')', expected end of line or a '#' comment", found);
    }
    return HQ_OK;
}

hq_status_t hqi_script_parse_line(const char *text, size_t len, const char *name, int line,
                                  hq_command_t *command, hq_error_t *err)
{
    memset(command, 0, sizeof *command);
    command->line = line;
    size_t last_text = len;
    while (last_text > 0 && is_blank(text[last_text - 1]))
        last_text--;
    last_text = last_text > 0 ? last_text - 1 : len;
    parser_t p = {.text = text, .len = len, .last_text = last_text, .name = name, .line = line,
                  .err = err};
    hq_status_t st = parse_line(&p, command);
    if (st != HQ_OK) {
        hqi_command_clear(command);
        command->line = line;
    }
    return st;
}

/* glob.c — layer-name globs for model-script commands (`quantization_param({conv*}, ...)`).
 *
 * A pattern is a comma-separated list of alternatives (the text of `{conv1, conv2}`), each of
 * which may hold `{a,b}` alternatives of its own; braces are expanded first (at most
 * GLOB_MAX_EXPANSIONS patterns, else nothing matches), blanks around alternatives are dropped.
 * Each brace-free pattern then matches with `*` (any run, '/' included), `?` (one character)
 * and `[abc]` / `[a-z]` / `[!abc]` / `[^abc]` classes (an unclosed '[' is a literal). A pattern
 * with no '/' is matched against the bare layer name, after the last '/' of the scoped name;
 * a pattern with a '/' against the full scoped name. */
#include <stdlib.h>
#include <string.h>

#include "script/script_internal.h"
#include "util/util.h"

#define GLOB_MAX_EXPANSIONS 1024
#define GLOB_MAX_PATTERN 4096

/* End of the class that starts at p ('['), or NULL when it is not closed. */
static const char *class_end(const char *p, const char *end)
{
    const char *q = p + 1;
    if (q < end && (*q == '!' || *q == '^'))
        q++;
    if (q < end && *q == ']')
        q++; /* a ']' first in the class is a member */
    while (q < end && *q != ']')
        q++;
    return q < end ? q : NULL;
}

static bool class_matches(const char *p, const char *close, unsigned char c)
{
    const char *q = p + 1;
    bool negate = false;
    if (*q == '!' || *q == '^') {
        negate = true;
        q++;
    }
    bool hit = false;
    while (q < close) {
        if (q + 2 < close && q[1] == '-') {
            if ((unsigned char)q[0] <= c && c <= (unsigned char)q[2])
                hit = true;
            q += 3;
        } else {
            if ((unsigned char)*q == c)
                hit = true;
            q++;
        }
    }
    return hit != negate;
}

/* Matches one brace-free pattern [p, pend) against [s, send). Classic single-backtrack star
 * matching: correct for globs, linear in practice, quadratic at worst. */
static bool match_plain(const char *p, const char *pend, const char *s, const char *send)
{
    const char *star_p = NULL, *star_s = NULL;
    while (s < send) {
        if (p < pend && *p == '*') {
            while (p < pend && *p == '*')
                p++;
            star_p = p;
            star_s = s;
            continue;
        }
        if (p < pend) {
            if (*p == '?') {
                p++;
                s++;
                continue;
            }
            if (*p == '[') {
                const char *close = class_end(p, pend);
                if (close) {
                    if (class_matches(p, close, (unsigned char)*s)) {
                        p = close + 1;
                        s++;
                        continue;
                    }
                    goto mismatch;
                }
            }
            if (*p == *s) {
                p++;
                s++;
                continue;
            }
        }
    mismatch:
        if (!star_p)
            return false;
        p = star_p;
        s = ++star_s;
    }
    while (p < pend && *p == '*')
        p++;
    return p == pend;
}

typedef struct expansion {
    char **patterns;
    int count;
    bool overflow; /* too many patterns or out of memory: the glob matches nothing */
} expansion_t;

static void add_pattern(expansion_t *ex, char *pattern)
{
    if (!pattern || ex->overflow || ex->count >= GLOB_MAX_EXPANSIONS) {
        free(pattern);
        ex->overflow = true;
        return;
    }
    char **grown = realloc(ex->patterns, ((size_t)ex->count + 1) * sizeof *grown);
    if (!grown) {
        free(pattern);
        ex->overflow = true;
        return;
    }
    ex->patterns = grown;
    ex->patterns[ex->count++] = pattern;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Expands the first brace group of `pattern` (a NUL-terminated string it does not keep) and
 * recurses on each alternative; brace-free patterns are added trimmed. */
static void expand(expansion_t *ex, const char *pattern)
{
    if (ex->overflow)
        return;
    size_t len = strlen(pattern);
    const char *end = pattern + len;
    const char *open = NULL;
    const char *close = NULL;
    for (const char *p = pattern; p < end; p++) {
        if (*p == '[') {
            const char *c = class_end(p, end);
            if (c) {
                p = c;
                continue;
            }
        }
        if (*p == '{') {
            int depth = 0;
            const char *q = p;
            for (; q < end; q++) {
                if (*q == '{')
                    depth++;
                else if (*q == '}' && --depth == 0)
                    break;
            }
            if (q < end) {
                open = p;
                close = q;
                break;
            }
        }
    }
    if (!open) {
        const char *b = pattern;
        while (b < end && is_blank(*b))
            b++;
        while (end > b && is_blank(end[-1]))
            end--;
        add_pattern(ex, hqi_strndup(b, (size_t)(end - b)));
        return;
    }
    /* Alternatives between open and close, split at top-level commas. */
    const char *alt = open + 1;
    int depth = 0;
    for (const char *q = open + 1; q <= close && !ex->overflow; q++) {
        if (q < close && *q == '{') {
            depth++;
        } else if (q < close && *q == '}') {
            depth--;
        } else if (q == close || (*q == ',' && depth == 0)) {
            const char *a = alt, *z = q;
            while (a < z && is_blank(*a))
                a++;
            while (z > a && is_blank(z[-1]))
                z--;
            size_t prefix = (size_t)(open - pattern);
            size_t middle = (size_t)(z - a);
            size_t suffix = (size_t)(end - (close + 1));
            char *next = malloc(prefix + middle + suffix + 1);
            if (!next) {
                ex->overflow = true;
                return;
            }
            memcpy(next, pattern, prefix);
            memcpy(next + prefix, a, middle);
            memcpy(next + prefix + middle, close + 1, suffix);
            next[prefix + middle + suffix] = '\0';
            expand(ex, next);
            free(next);
            alt = q + 1;
        }
    }
}

HQ_API bool hq_glob_match(const char *pattern, const char *layer_name)
{
    if (!pattern || !layer_name)
        return false;
    size_t len = strlen(pattern);
    if (len > GLOB_MAX_PATTERN)
        return false;
    /* Wrapping in braces makes top-level commas separate alternatives too (when the braces
     * of the pattern balance; otherwise they are literals and wrapping would pair them). */
    int depth = 0;
    for (const char *c = pattern; *c && depth >= 0; c++)
        depth += *c == '{' ? 1 : *c == '}' ? -1 : 0;
    bool wrap = depth == 0;
    char *wrapped = malloc(len + 3);
    if (!wrapped)
        return false;
    wrapped[0] = '{';
    memcpy(wrapped + 1, pattern, len);
    wrapped[len + 1] = '}';
    wrapped[len + 2] = '\0';
    if (!wrap) {
        memmove(wrapped, wrapped + 1, len);
        wrapped[len] = '\0';
    }
    expansion_t ex = {0};
    expand(&ex, wrapped);
    free(wrapped);
    bool matched = false;
    const char *full_end = layer_name + strlen(layer_name);
    const char *slash = strrchr(layer_name, '/');
    const char *bare = slash ? slash + 1 : layer_name;
    for (int i = 0; i < ex.count; i++) {
        const char *p = ex.patterns[i];
        if (!matched && !ex.overflow && *p) {
            const char *subject = strchr(p, '/') ? layer_name : bare;
            matched = match_plain(p, p + strlen(p), subject, full_end);
        }
        free(ex.patterns[i]);
    }
    free(ex.patterns);
    return matched;
}

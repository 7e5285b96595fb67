# hq.bash — bash completion for `hq` and `hq-diag`, installed as
# share/bash-completion/completions/hq and .../hq-diag.
#
# The words come from the programs themselves, so they cannot drift from them: subcommands from
# `hq --help`, each command's flags from its own --help (the option lines, "  -x, --long VALUE"),
# and the inspector names that `hq-diag --order` takes from `hq-diag --list-inspectors` (with the
# --plugin-path folders already on the command line). File names are completed everywhere else.

# Prints the flags of the option lines of `"$@" --help`, one per line.
_hq_help_flags()
{
    local line word
    local -a words
    "$@" --help 2>/dev/null | while IFS= read -r line; do
        [[ $line == "  -"* ]] || continue
        read -ra words <<<"$line"
        for word in "${words[@]}"; do
            [[ $word == -* ]] || break
            printf '%s\n' "${word%,}"
        done
    done
}

# Prints the subcommands that `hq --help` lists under "commands:".
_hq_subcommands()
{
    "$1" --help 2>/dev/null | awk '/^commands:/ { on = 1; next } /^$/ { on = 0 } on { print $1 }'
}

# Sets COMPREPLY to the words of "$1" (one per line) that start with "$2".
_hq_reply()
{
    local candidates=$1 cur=$2 word
    COMPREPLY=()
    while IFS= read -r word; do
        if [[ -n $word && $word == "$cur"* ]]; then
            COMPREPLY+=("$word")
        fi
    done <<<"$candidates"
}

_hq()
{
    local program=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]} prev=""
    if ((COMP_CWORD > 0)); then
        prev=${COMP_WORDS[COMP_CWORD - 1]}
    fi
    COMPREPLY=()
    # the subcommand: the first word after `hq` that is not an option
    local i command=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} != -* ]]; then
            command=${COMP_WORDS[i]}
            break
        fi
    done
    if [[ -z $command ]]; then
        if [[ $cur == -* ]]; then
            _hq_reply "$(_hq_help_flags "$program")" "$cur"
        else
            _hq_reply "$(_hq_subcommands "$program")" "$cur"
        fi
        return 0
    fi
    case $prev in
    --target)
        _hq_reply $'native\nfp_optimized\nquantized' "$cur"
        return 0
        ;;
    --analyze-mode)
        _hq_reply $'simple\nadvanced' "$cur"
        return 0
        ;;
    esac
    if [[ $cur == -* ]]; then
        _hq_reply "$(_hq_help_flags "$program" "$command")" "$cur"
    fi
    return 0 # an empty reply falls back to file names (complete -o default)
}

_hq_diag()
{
    local program=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]}
    COMPREPLY=()
    if [[ $cur == -* ]]; then
        _hq_reply "$(_hq_help_flags "$program")" "$cur"
        return 0
    fi
    # --order takes every word up to the next option
    local i option="" plugin_args=()
    for ((i = COMP_CWORD - 1; i > 0; i--)); do
        if [[ ${COMP_WORDS[i]} == -* ]]; then
            option=${COMP_WORDS[i]}
            break
        fi
    done
    for ((i = 1; i < COMP_CWORD - 1; i++)); do
        if [[ ${COMP_WORDS[i]} == --plugin-path ]]; then
            plugin_args+=(--plugin-path "${COMP_WORDS[i + 1]}")
        fi
    done
    if [[ $option == --order ]]; then
        _hq_reply "$("$program" --list-inspectors "${plugin_args[@]}" 2>/dev/null |
            awk '/^[^ ]/ && $0 != "no inspector found" { print $1 }')" "${cur##*,}"
        # "--order A,B": complete the name after the last comma
        if [[ $cur == *,* ]]; then
            for i in "${!COMPREPLY[@]}"; do
                COMPREPLY[i]=${cur%,*},${COMPREPLY[i]}
            done
        fi
    fi
    return 0
}

complete -o default -F _hq hq
complete -o default -F _hq_diag hq-diag

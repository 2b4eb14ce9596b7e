# bash completion for the stream programs: stream-broker, stream-pub,
# stream-sub, stream-topics, stream-shell, stream-bench, stream-proc and
# stream-top.
#
# One file serves every program (`make install` installs it once per program
# name). Options, and the commands of stream-topics and the modes of
# stream-bench, are read from the program's own --help (once per shell), so
# they cannot drift from the code; what each option's value is (a topic, a
# group, a codec, a file) is known here.
#
# Topic and group names come from the broker through a small cache,
# ${XDG_CACHE_HOME:-~/.cache}/stream/names-KIND-BROKERS, one name per line.
# A cache younger than STREAM_COMPLETION_TTL seconds (default 10) is used as
# it is; an older one is used too, and refreshed in the background; only
# when there is none at all does Tab wait, for `stream-topics --timeout-ms`
# and `timeout` to give up on a dead broker after about a second. A failed
# refresh leaves an empty cache, so a dead broker is not asked again before
# the TTL: completion never hangs the terminal.

# The broker list of the command line being completed (-b/--brokers), else
# $STREAM_BROKERS, else the default.
_stream_brokers() {
    local i w
    for ((i = 1; i < ${#_stream_words[@]}; i++)); do
        w=${_stream_words[i]}
        case $w in
        -b | --brokers) [[ -n ${_stream_words[i + 1]-} ]] && { printf '%s\n' "${_stream_words[i + 1]}"; return; } ;;
        --brokers=*) printf '%s\n' "${w#--brokers=}"; return ;;
        -b?*) printf '%s\n' "${w#-b}"; return ;;
        esac
    done
    printf '%s\n' "${STREAM_BROKERS:-127.0.0.1:9292}"
}

# _stream_refresh KIND BROKERS FILE: asks the broker for the names, briefly.
_stream_refresh() {
    local kind=$1 brokers=$2 file=$3 tmp cmd=list
    [[ $kind == groups ]] && cmd=groups
    command -v stream-topics >/dev/null 2>&1 || return
    mkdir -p "${file%/*}" 2>/dev/null || return
    tmp=$file.$$.$RANDOM
    local to=()
    command -v timeout >/dev/null 2>&1 && to=(timeout 2)
    # The first column of each line; a header line (all capitals) is skipped.
    "${to[@]}" stream-topics -b "$brokers" --timeout-ms 500 "$cmd" </dev/null 2>/dev/null |
        awk 'NR == 1 && $1 ~ /^[A-Z_-]+$/ { next } NF { print $1 }' >"$tmp" 2>/dev/null
    mv -f "$tmp" "$file" 2>/dev/null || rm -f "$tmp"
}

# _stream_names KIND: prints the topic (KIND topics) or group (groups) names.
_stream_names() {
    local kind=$1 brokers dir file now mtime ttl=${STREAM_COMPLETION_TTL:-10}
    brokers=$(_stream_brokers)
    dir=${XDG_CACHE_HOME:-$HOME/.cache}/stream
    file=$dir/names-$kind-${brokers//[^A-Za-z0-9._-]/_}
    if [[ -f $file ]]; then
        printf -v now '%(%s)T' -1
        mtime=$(stat -c %Y -- "$file" 2>/dev/null) || mtime=0
        if ((now - mtime >= ttl)); then
            # Stale: answer from it now, refresh behind the user's back
            # (touched first, so Tabs meanwhile do not start more refreshes).
            touch -- "$file" 2>/dev/null
            (_stream_refresh "$kind" "$brokers" "$file" &) >/dev/null 2>&1
        fi
    else
        _stream_refresh "$kind" "$brokers" "$file"
    fi
    [[ -r $file ]] && cat -- "$file"
}

# _stream_help PROG: options (and commands) from PROG --help, cached per
# program. Sets _stream_opts (every option), _stream_argopts (those that take
# a value) and _stream_cmds (the Commands: or Modes: section's first words).
declare -gA _STREAM_HELP_OPTS _STREAM_HELP_ARGOPTS _STREAM_HELP_CMDS 2>/dev/null
_stream_help() {
    local prog=$1
    if [[ -z ${_STREAM_HELP_OPTS[$prog]+set} ]]; then
        local line spec section= all= args= cmds= w takes
        local -a ws
        while IFS= read -r line; do
            case $line in
            Commands:* | Modes:*) section=cmds; continue ;;
            '' | [A-Za-z]*:) section=; continue ;;
            esac
            # A command starts a line indented by two blanks; deeper lines
            # continue its description. A command listed twice (forms of
            # `group NAME ...`) is offered once.
            if [[ $section == cmds && $line =~ ^\ \ ([a-z][a-z0-9-]*)(\ |$) &&
                " $cmds " != *" ${BASH_REMATCH[1]} "* ]]; then
                cmds+=" ${BASH_REMATCH[1]}"
            fi
            # An option line: "  -t, --topic TOPIC  ..." or "      --json  ...".
            if [[ ! $line =~ ^(\ \ -[A-Za-z]|\ {6}--[a-z]) ]]; then
                # Options written inside other lines ("group NAME --to-offset
                # N|..."): a long option followed by a capitalised word takes
                # a value.
                local rest=$line
                while [[ $rest =~ (--[a-z][a-z0-9-]*)(\ [A-Z][A-Z0-9]*)? ]]; do
                    w=${BASH_REMATCH[1]}
                    if [[ " $all " != *" $w "* ]]; then
                        all+=" $w"
                        [[ -n ${BASH_REMATCH[2]} ]] && args+=" $w"
                    fi
                    rest=${rest#*"${BASH_REMATCH[0]}"}
                done
                continue
            fi
            spec=${line#"${line%%[! ]*}"}
            spec=${spec%%  *} # the option part ends at the first double blank
            spec=${spec//,/}
            read -r -a ws <<<"$spec"
            takes=0
            [[ ${ws[${#ws[@]} - 1]} != -* ]] && takes=1
            for w in "${ws[@]}"; do
                [[ $w == -* ]] || continue
                [[ " $all " == *" $w "* ]] || all+=" $w"
                ((takes)) && args+=" $w"
            done
        done < <("$prog" --help 2>/dev/null)
        _STREAM_HELP_OPTS[$prog]=$all
        _STREAM_HELP_ARGOPTS[$prog]=$args
        _STREAM_HELP_CMDS[$prog]=$cmds
    fi
    _stream_opts=${_STREAM_HELP_OPTS[$prog]}
    _stream_argopts=${_STREAM_HELP_ARGOPTS[$prog]}
    _stream_cmds=${_STREAM_HELP_CMDS[$prog]}
}

# Topic settings (stream-topics -c KEY=VALUE); tests/cli/completion.bats
# checks this list against the settings table.
_stream_topic_settings="segment.bytes segment.ms retention.ms retention.bytes index.interval.bytes
max.message.bytes flush.mode flush.ms cleanup.policy min.cleanable.dirty.ratio
min.compaction.lag.ms max.compaction.lag.ms delete.retention.ms min.insync.replicas
unclean.leader.election.enable"

# _stream_reply WORDS...: COMPREPLY gets the words that start with $cur.
_stream_reply() {
    local w
    for w in "$@"; do
        [[ $w == "$_stream_cur"* ]] && COMPREPLY+=("$w")
    done
}

# The value of option $1 of program $2.
_stream_value() {
    local opt=$1 prog=$2 w
    case $prog:$opt in
    *:-t | *:--topic | stream-topics:--topic | stream-proc:--to) _stream_reply $(_stream_names topics) ;;
    *:-g | *:--group) _stream_reply $(_stream_names groups) ;;
    *:-z | *:--compression) _stream_reply none gzip snappy lz4 zstd ;;
    *:--acks) _stream_reply 0 1 all ;;
    stream-sub:-o | stream-sub:--offset) _stream_reply beginning end stored ;;
    stream-proc:-o | stream-proc:--offset) _stream_reply beginning end ;;
    stream-topics:-c | stream-topics:--config)
        for w in $_stream_topic_settings; do _stream_reply "$w="; done
        compopt -o nospace 2>/dev/null ;;
    stream-topics:--delete-config) _stream_reply $_stream_topic_settings ;;
    stream-broker:--set | stream-broker:-s)
        while IFS= read -r w; do _stream_reply "${w%%=*}="; done < <(stream-broker --list-settings 2>/dev/null)
        compopt -o nospace 2>/dev/null ;;
    stream-broker:--log-level) _stream_reply error warn info debug ;;
    stream-broker:--log-format) _stream_reply text json ;;
    stream-broker:-c | stream-broker:--config | stream-broker:--ready-file | stream-pub:--ack-log | \
    stream-pub:--cacert)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$_stream_cur") ;;
    stream-broker:-d | stream-broker:--data-dir)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$_stream_cur") ;;
    esac
}

# Positional words (not options or their values) before the cursor, for
# stream-topics' command and stream-bench's mode.
_stream_positionals() {
    local i w skip=0
    _stream_pos=()
    for ((i = 1; i < ${#_stream_words[@]}; i++)); do
        w=${_stream_words[i]}
        if ((skip)); then skip=0; continue; fi
        if [[ -n $w && " $_stream_argopts " == *" $w "* ]]; then
            skip=1
            continue
        fi
        [[ $w == -* ]] && continue
        _stream_pos+=("$w")
    done
}

_stream_complete() {
    COMPREPLY=()
    local prog=${COMP_WORDS[0]##*/} i w
    _stream_cur=${COMP_WORDS[COMP_CWORD]}
    # Put back what COMP_WORDBREAKS split: "127.0.0.1" ":" "9292" is one word.
    _stream_words=()
    local glue=0 glued_cur=0
    for ((i = 0; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ ($w == : || $w == =) && ${#_stream_words[@]} -gt 1 ]]; then
            _stream_words[${#_stream_words[@]} - 1]+=$w
            glue=1
        elif ((glue)); then
            _stream_words[${#_stream_words[@]} - 1]+=$w
            glue=0
        else
            _stream_words+=("$w")
        fi
    done
    # After "=" or ":" the word is a value written into an option (--x=v,
    # host:port): nothing to offer.
    ((glue)) && return 0
    local prev=${_stream_words[${#_stream_words[@]} - 1]}
    ((${#_stream_words[@]} > 1)) || prev=

    # stream-proc ... -- CMD [ARG]...: a command, then its arguments (files).
    if [[ $prog == stream-proc ]]; then
        for ((i = 1; i < ${#_stream_words[@]}; i++)); do
            [[ ${_stream_words[i]} == -- ]] || continue
            if ((i == ${#_stream_words[@]} - 1)); then
                mapfile -t COMPREPLY < <(compgen -c -- "$_stream_cur")
            else
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -f -- "$_stream_cur")
            fi
            return 0
        done
    fi

    _stream_help "$prog"
    if [[ -n $prev && " $_stream_argopts " == *" $prev "* ]]; then
        _stream_value "$prev" "$prog"
        return 0
    fi
    if [[ $_stream_cur == -* ]]; then
        _stream_reply $_stream_opts
        return 0
    fi
    _stream_positionals
    case $prog in
    stream-topics)
        if ((${#_stream_pos[@]} == 0)); then
            _stream_reply $_stream_cmds
        else
            case ${_stream_pos[0]} in
            describe | alter | delete) _stream_reply $(_stream_names topics) ;;
            group) ((${#_stream_pos[@]} == 1)) && _stream_reply $(_stream_names groups) ;;
            esac
        fi ;;
    stream-bench)
        ((${#_stream_pos[@]} == 0)) && _stream_reply $_stream_cmds ;;
    stream-shell)
        # A script file.
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$_stream_cur") ;;
    esac
    return 0
}

complete -F _stream_complete stream-broker stream-pub stream-sub stream-topics stream-shell stream-bench stream-proc \
    stream-top

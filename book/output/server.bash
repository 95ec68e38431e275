# What every chapter's output script does with a server, written once.
# Sourced, not run: a chapter script, from the repository root, does
#
#     source book/output/server.bash
#
# (regenerate.sh runs only the *.sh files here, so this one is never run on
# its own). Sourcing it sets `out` (book/output, where the outputs go) and
# `scratch` (a temporary directory for logs not yet kept), and traps EXIT to
# kill a server still running and remove $scratch, so a script that fails
# half way leaves no process behind. SIGKILL also ends a prefork master's
# workers: each one dies with its master (PR_SET_PDEATHSIG).

out=book/output
scratch=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT

# start_server PROGRAM ARGS...: starts PROGRAM (a binary in target/debug, or
# a path such as target/release/ch04-epoll) with ARGS, which should include
# `--addr 127.0.0.1:0`: the OS picks a free port, which the server announces
# on its first line of stdout. Stdout and stderr go to one file,
# $scratch/server.txt, in the order written. Waits for `listening on`, then
# sets server_pid, addr and server_line (the command line as the book shows
# it: the program's name, then ARGS).
start_server() {
    local program=$1
    case "$program" in
    */*) ;;
    *) program=target/debug/$program ;;
    esac
    # Emptied here, not only by the redirection below: that one happens in
    # the background child, and the wait below could meanwhile find the
    # `listening on` line of the previous server in this file.
    : >"$scratch/server.txt"
    "$program" "${@:2}" >"$scratch/server.txt" 2>&1 &
    server_pid=$!
    server_line="$(basename "$1") ${*:2}"
    wait_for_log '^listening on ' ||
        { echo "$1 did not start:" >&2; cat "$scratch/server.txt" >&2; exit 1; }
    addr=$(sed -n 's/^listening on //p' "$scratch/server.txt")
}

# wait_for_log PATTERN: waits (up to 10 s) until the server's output has a
# line matching the grep PATTERN; fails if it does not, or the server exits.
wait_for_log() {
    for _ in $(seq 1000); do
        grep -q -- "$1" "$scratch/server.txt" && return 0
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

# stop_server: SIGTERM, and the server must exit 0 (every server finishes
# what it has, logs, and exits 0); anything else fails the script. Sets
# server_status to the exit status it waited for.
stop_server() {
    kill -TERM "$server_pid"
    server_status=0
    wait "$server_pid" || server_status=$?
    server_pid=
    if [ "$server_status" -ne 0 ]; then
        echo "the server exited with status $server_status after SIGTERM" >&2
        exit 1
    fi
}

# save_server_log FILE: writes the server's command line, then its output.
save_server_log() {
    {
        echo "\$ $server_line"
        cat "$scratch/server.txt"
    } >"$1"
}

# run_client FILE ARGS...: runs the client with ARGS into FILE, its command
# line first.
run_client() {
    local file=$1
    shift
    {
        echo "\$ client $*"
        target/debug/client "$@"
    } >"$file"
}

# three_clients_run NAME: the run chapters 1, 4 and 5 show, the same each
# time so that their outputs compare line for line: the server NAME with
# 200 ms of sleep work per message, 3 clients x 3 messages at once, then
# SIGTERM. Writes $out/NAME-server.txt (the server's command line and
# output) and $out/NAME-client.txt (the client's command line, timeline
# and summary).
three_clients_run() {
    start_server "$1" --addr 127.0.0.1:0 --work-ms 200
    run_client "$scratch/client.txt" 3 --addr "$addr" --messages 3 \
        --work-ms 200
    stop_server
    save_server_log "$out/$1-server.txt"
    mv "$scratch/client.txt" "$out/$1-client.txt"
}

# timeline_pictures NAME: the picture every model chapter shows beside its
# diagram, and the same experiment for the five-at-a-glance section of
# measuring.md. The experiment is the same for every model: 6 clients x 3
# messages, 200 ms of sleep work per message, and --workers 3 for the
# models the registry (`server-models models`) says take it. The client
# draws each run with the server's own log, so that the picture has a row
# per server worker too. Two runs, two pictures in book/images:
#
#   NAME-timeline.svg        the time axis as long as the run
#   NAME-timeline-scale.svg  a 4 s axis, the same for every model: the
#                            slowest, one message at a time, needs
#                            18 x 200 ms = 3.6 s
#
# Needs target/debug/server-models, client and NAME built.
timeline_pictures() {
    local name=$1 pool
    pool_of "$name"
    timeline_run "$name" book/images/"$name"-timeline.svg "${pool[@]}"
    timeline_run "$name" book/images/"$name"-timeline-scale.svg \
        --span-ms 4000 "${pool[@]}"
}

# pool_of NAME: sets the array `pool` to `--workers 3` if the registry
# (`server-models models`) says NAME takes --workers, else to nothing: the
# pools run with three workers in every picture. Needs
# target/debug/server-models built.
pool_of() {
    pool=()
    if target/debug/server-models models | awk -F'\t' -v name="$1" \
        '$1 == name && $5 ~ /--workers/ { found = 1 } END { exit !found }'
    then
        pool=(--workers 3)
    fi
}

# timeline_run NAME SVG [--span-ms MS] [SERVER FLAGS...]: one run of
# timeline_pictures' experiment, drawn to SVG.
timeline_run() {
    local name=$1 svg=$2 span=()
    shift 2
    if [ "${1:-}" = --span-ms ]; then
        span=("$1" "$2")
        shift 2
    fi
    start_server "$name" --addr 127.0.0.1:0 --work-ms 200 "$@"
    target/debug/client 6 --addr "$addr" --messages 3 --work-ms 200 \
        --quiet --server-log "$scratch/server.txt" --svg "$svg" \
        --title "$name${*:+ $*}" "${span[@]}" >/dev/null
    stop_server
}

# children PID: the child processes of PID, one line (a prefork master's
# children are its workers; strace's child is the program it runs).
children() {
    cat "/proc/$1/task/$1/children" 2>/dev/null || true
}

# wait_for_children PID N: waits (up to 5 s) until PID has N children;
# fails the script if it does not.
wait_for_children() {
    for _ in $(seq 500); do
        [ "$(children "$1" | wc -w)" -eq "$2" ] && return 0
        sleep 0.01
    done
    echo "process $1 did not get to $2 children" >&2
    exit 1
}

# slow_client_run NAME: the slow-client run every model chapter draws.
# The server NAME (--workers 3 for the pools, as in timeline_pictures) has
# 200 ms of sleep work per message and a 1 s idle timeout. First this
# script opens 3 connections that send nothing (bash's /dev/tcp: a
# connect, no bytes), then 3 ordinary clients x 3 messages run. A model
# that gives each connection a worker serves the ordinary clients only
# once the silent ones have timed out; an event loop serves them at once.
# Writes book/images/NAME-slow-clients.svg: the client's timeline, split
# by the server's own log (the silent connections are not in it: the
# client draws its own clients only). Needs target/debug/server-models,
# client and NAME built.
slow_client_run() {
    local name=$1 fd silent=() pool
    pool_of "$name"
    start_server "$name" --addr 127.0.0.1:0 --work-ms 200 \
        --idle-timeout-ms 1000 "${pool[@]}"
    for _ in 1 2 3; do
        # The connect returns once the kernel has completed the
        # handshake: the connection is in the server's backlog (or
        # accepted) before the ordinary clients come.
        exec {fd}<>"/dev/tcp/${addr%:*}/${addr##*:}"
        silent+=("$fd")
    done
    target/debug/client 3 --addr "$addr" --messages 3 --work-ms 200 \
        --quiet --server-log "$scratch/server.txt" \
        --svg book/images/"$name"-slow-clients.svg \
        --title "$name${pool[*]:+ ${pool[*]}}, behind 3 silent connections" \
        >/dev/null
    for fd in "${silent[@]}"; do
        exec {fd}>&-
    done
    stop_server
}

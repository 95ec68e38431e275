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

# slow_client_run NAME FLAGS...: the slow-client run every model chapter
# draws. The server NAME (with FLAGS, e.g. `--workers 3`) has 200 ms of
# sleep work per message and a 1 s idle timeout. First this script opens
# 3 connections that send nothing (bash's /dev/tcp: a connect, no bytes),
# then 3 ordinary clients x 3 messages run. A model that gives each
# connection a worker serves the ordinary clients only once the silent
# ones have timed out; an event loop serves them at once. Writes
# $out/NAME-slow-clients.svg: the client's timeline, split by the server's
# own log (the silent connections are not in it: the client draws its own
# clients only).
slow_client_run() {
    local name=$1 fd silent=()
    shift
    start_server "$name" --addr 127.0.0.1:0 --work-ms 200 \
        --idle-timeout-ms 1000 "$@"
    for _ in 1 2 3; do
        # The connect returns once the kernel has completed the
        # handshake: the connection is in the server's backlog (or
        # accepted) before the ordinary clients come.
        exec {fd}<>"/dev/tcp/${addr%:*}/${addr##*:}"
        silent+=("$fd")
    done
    run_client "$scratch/slow-client.txt" 3 --addr "$addr" --messages 3 \
        --work-ms 200 --svg "$out/$name-slow-clients.svg" \
        --server-log "$scratch/server.txt"
    for fd in "${silent[@]}"; do
        exec {fd}>&-
    done
    stop_server
}

#!/usr/bin/env bash
# Regenerates the program output shown in chapter 3 (book/ch03-threaded.md):
# the thread pool under load, a client turned away by the full queue, the
# server's threads while idle, and a forced panic the pool survives.
#
# Writes, in book/output/:
#   ch03-threaded-server.txt  the server's log: which worker served whom,
#                             the busy rejection, the shutdown
#   ch03-threaded-client.txt  the load's summary (6 clients, 3 workers)
#   ch03-threaded-busy.txt    the 7th client, turned away
#   ch03-threaded-threads.txt `ps -L` of the idle server: N+2 threads, asleep
#   ch03-threaded-panic.txt   a handler panics (test hook); the pool stays
#   ch03-threaded-memory.txt  threads, virtual and resident memory of idle
#                             servers with 1, 10 and 1000 workers
# Short work (200 ms per message) keeps the run to a few seconds; the shape
# of the output is what the chapter discusses, not the exact times.
#
# Also draws the chapter's pictures (server.bash's timeline_pictures):
# book/images/ch03-threaded-timeline.svg, and ch03-threaded-timeline-scale.svg
# on the time axis all the models share; the same two of the chapter's first
# server, thread-per-connection-timeline{,-scale}.svg.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash
# The panic message in part 2 without a backtrace, whatever the caller's
# environment says.
export RUST_BACKTRACE=0

WORK_MS=200
WORKERS=3
QUEUE=3
CLIENTS=6
MESSAGES=2

cargo build --quiet -p ch03-threaded -p client -p server-models

# What slow clients do to this model: three silent connections, then
# three ordinary clients, drawn to book/images/ch03-threaded-slow-clients.svg.
slow_client_run ch03-threaded

# --- 1. Load, a busy rejection, the idle threads -------------------------
start_server ch03-threaded --addr 127.0.0.1:0 --work-ms "$WORK_MS" \
    --workers "$WORKERS" --queue "$QUEUE"
wait_for_log "worker-$WORKERS\] ready"
port=${addr##*:}

# The idle server's threads, before any client: all asleep (state S).
{
    echo "\$ ps -L -o lwp,comm,stat,pcpu -p \$(pidof ch03-threaded)"
    ps -L -o lwp,comm,stat,pcpu -p "$server_pid"
} >"$scratch/threads.txt"

run_client "$scratch/client.txt" "$CLIENTS" --addr "$addr" \
    --messages "$MESSAGES" --work-ms "$WORK_MS" --quiet &
load_pid=$!

# Three clients being served, three waiting: the queue is full, so one
# more client is turned away. The reply is read raw, through bash's
# /dev/tcp, to show the exact bytes.
wait_for_log ", $QUEUE waiting"
{
    echo "\$ printf 'package 0\\003' >/dev/tcp/... (a 7th client)"
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'package 0\003' >&3
    cat <&3
    echo
    exec 3>&-
} >"$scratch/busy.txt"

wait "$load_pid"
# SIGTERM: the server lets its workers finish, logs, and exits 0.
stop_server
save_server_log "$out/ch03-threaded-server.txt"
mv "$scratch/client.txt" "$out/ch03-threaded-client.txt"
mv "$scratch/busy.txt" "$out/ch03-threaded-busy.txt"
mv "$scratch/threads.txt" "$out/ch03-threaded-threads.txt"

# --- 2. A forced panic ----------------------------------------------------
# The test hook (CH03_PANIC_ON): a client whose first message is `boom`
# makes its worker panic. The worker catches it and serves the next client.
CH03_PANIC_ON=boom start_server ch03-threaded --addr 127.0.0.1:0 \
    --work-ms "$WORK_MS" --workers 2
wait_for_log 'worker-2\] ready'
port=${addr##*:}
{
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'boom\003' >&3
    # The worker drops the connection while unwinding: a reset, no reply.
    cat <&3 2>/dev/null || true
    exec 3>&-
}
wait_for_log 'panic while serving'
run_client "$scratch/after.txt" 2 --addr "$addr" --messages 1 \
    --work-ms "$WORK_MS" --quiet
threads=$(ps -L -o lwp= -p "$server_pid" | wc -l)
stop_server
{
    echo "\$ CH03_PANIC_ON=boom $server_line"
    # The panic message names this script's build path; keep it short.
    sed -e "s|$PWD/||" "$scratch/server.txt"
    echo
    cat "$scratch/after.txt"
    echo "threads in the server after the panic: $threads"
} >"$out/ch03-threaded-panic.txt"

# --- 3. What a thread costs ---------------------------------------------
# Idle servers with 1, 10 and 1000 workers: threads, virtual size and
# resident memory (KiB), as `ps` reports them.
{
    echo "\$ ps -o nlwp,vsz,rss -p \$(pidof ch03-threaded)  # idle"
    for workers in 1 10 1000; do
        start_server ch03-threaded --addr 127.0.0.1:0 --quiet \
            --workers "$workers"
        # With --quiet there are no `ready` lines: wait for the threads.
        for _ in $(seq 500); do
            [ "$(ps -o nlwp= -p "$server_pid")" -gt "$workers" ] && break
            sleep 0.01
        done
        echo "--workers $workers"
        ps -o nlwp,vsz,rss -p "$server_pid"
        stop_server
    done
} >"$scratch/memory.txt"
mv "$scratch/memory.txt" "$out/ch03-threaded-memory.txt"

echo "wrote $out/ch03-threaded-{server,client,busy,threads,panic,memory}.txt"

# The picture beside the chapter's diagram.
timeline_pictures ch03-threaded
echo "wrote book/images/ch03-threaded-timeline{,-scale}.svg"

# The chapter opens with a thread per connection (the package's second
# binary): its picture too.
timeline_pictures thread-per-connection
echo "wrote book/images/thread-per-connection-timeline{,-scale}.svg"

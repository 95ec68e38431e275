#!/usr/bin/env bash
# Regenerates the thread-cost table in chapter 3 (book/ch03-threaded.md):
# what an idle pool of 1, 10, 100 and 1,000 worker threads costs, as the
# kernel accounts for it.
#
# Writes ch03-threaded-thread-memory.txt. For each pool size it starts the
# release build of the server with --quiet, waits until every worker thread
# exists and the process has settled, and reads:
#   /proc/PID/status        Threads, VmSize (address space reserved),
#                           VmRSS (resident), VmPTE (page tables)
#   /proc/PID/smaps_rollup  Pss and Private_Dirty (the memory that is this
#                           process's own)
# All figures in KiB. Each thread's kernel stack (16 KiB on x86-64) is in
# none of them: it is kernel memory, not the process's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

cargo build --quiet --release -p ch03-threaded

# field FILE NAME: the number on the line `NAME: <n> kB` of FILE.
field() {
    awk -v name="$2:" '$1 == name { print $2 }' "$1"
}

{
    echo "\$ # idle ch03-threaded --workers N; /proc/PID/status and"
    echo "\$ # /proc/PID/smaps_rollup, KiB"
    printf '%7s %7s %9s %7s %6s %6s %8s\n' \
        WORKERS THREADS VmSize VmRSS VmPTE Pss Private
    for workers in 1 10 100 1000; do
        start_server target/release/ch03-threaded --addr 127.0.0.1:0 \
            --quiet --workers "$workers"
        # With --quiet there are no `ready` lines: wait for the threads,
        # then give the last ones a moment to reach their wait in `pop`.
        status=/proc/$server_pid/status
        for _ in $(seq 1000); do
            [ "$(field "$status" Threads)" -gt "$workers" ] && break
            sleep 0.01
        done
        sleep 0.5
        rollup=/proc/$server_pid/smaps_rollup
        printf '%7s %7s %9s %7s %6s %6s %8s\n' "$workers" \
            "$(field "$status" Threads)" "$(field "$status" VmSize)" \
            "$(field "$status" VmRSS)" "$(field "$status" VmPTE)" \
            "$(field "$rollup" Pss)" "$(field "$rollup" Private_Dirty)"
        stop_server
    done
} >"$scratch/thread-memory.txt"
mv "$scratch/thread-memory.txt" "$out/ch03-threaded-thread-memory.txt"
echo "wrote $out/ch03-threaded-thread-memory.txt"

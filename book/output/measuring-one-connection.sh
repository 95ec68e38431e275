#!/usr/bin/env bash
# Regenerates the one-connection table in the measuring chapter
# (book/measuring.md): why, with a single client in a closed loop and no
# work, the models do not cost the same per message.
#
# Writes measuring-one-connection.txt. For each model it starts the release
# build with --work-ms 0, runs one client of MESSAGES messages against it,
# and meanwhile samples every few milliseconds, from /proc, the CPU that
# the server's serving thread and the client's thread each last ran on.
# Afterwards it reads, for the serving thread (the server thread that used
# the most CPU) and from /proc/PID/task/TID/{stat,sched,status}: its CPU
# time, voluntary context switches (each one a sleep: the thread waited
# for the next message) and migrations between CPUs. The whole server's CPU
# time counts every thread of every process in its process group.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

MESSAGES=40000
ROUNDS=3
MODELS=(ch01-single ch02-prefork ch03-threaded ch04-epoll ch05-tokio)

packages=(-p client)
for model in "${MODELS[@]}"; do packages+=(-p "$model"); done
cargo build --quiet --release "${packages[@]}"

# sample_cpus SERVER_PGID CLIENT_PID FILE: until the client exits, writes
# one line per sample: "who tid cpu" for every server thread and for the
# client's one connection thread.
sample_cpus() {
    python3 - "$@" <<'PY'
import os, sys, time
pgid, client, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def threads(pid):
    try:
        return os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []

def cpu(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        # Field 39, "processor", after the command name in parentheses.
        return f.read().rsplit(")", 1)[1].split()[36]

def server_pids():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) == pgid:
                yield pid
        except ProcessLookupError:
            pass

with open(path, "w") as out:
    while os.path.exists(f"/proc/{client}/task"):
        lines = []
        try:
            for pid in server_pids():
                lines += [f"server {tid} {cpu(pid, tid)}"
                          for tid in threads(pid)]
            # The client's main thread only waits in `join`: skip it.
            lines += [f"client {tid} {cpu(client, tid)}"
                      for tid in threads(client) if tid != str(client)]
        except (FileNotFoundError, ProcessLookupError):
            continue
        out.write(" | ".join(lines) + "\n")
        time.sleep(0.005)
PY
}

# thread_stats PGID: "tid cpu_ticks voluntary_switches migrations" for
# every thread of every process in the group.
thread_stats() {
    local pid tid dir
    for pid in $(pgrep -g "$1"); do
        for dir in /proc/"$pid"/task/*; do
            tid=${dir##*/}
            printf '%s %s %s %s\n' "$tid" \
                "$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "$dir/stat")" \
                "$(awk '/^voluntary_ctxt_switches/ { print $2 }' \
                    "$dir/status")" \
                "$(awk '/^se.nr_migrations/ { print $3 }' "$dir/sched")"
        done
    done
}

printf '%-14s %5s %8s %11s %9s %9s %10s\n' model round "msgs/s" \
    "CPU µs/msg" "sleeps" "same CPU" migrations >"$scratch/table.txt"
# Rounds alternate between the models, so that a change in the machine's
# load during the run does not fall on one model only.
for round in $(seq "$ROUNDS"); do
for model in "${MODELS[@]}"; do
    echo "measuring $model, round $round" >&2
    # Its own process group, so that every worker process is counted.
    setsid target/release/"$model" --addr 127.0.0.1:0 --work-ms 0 --quiet \
        >"$scratch/server.txt" 2>&1 &
    server_pid=$!
    wait_for_log '^listening on ' || { cat "$scratch/server.txt"; exit 1; }
    addr=$(sed -n 's/^listening on //p' "$scratch/server.txt")
    # Let a prefork master finish forking before the first count.
    sleep 0.3
    thread_stats "$server_pid" >"$scratch/before.txt"
    start=$(date +%s.%N)
    target/release/client 1 --addr "$addr" --messages "$MESSAGES" \
        --quiet >"$scratch/client.txt" &
    client_pid=$!
    sample_cpus "$server_pid" "$client_pid" "$scratch/samples.txt"
    wait "$client_pid"
    end=$(date +%s.%N)
    thread_stats "$server_pid" >"$scratch/after.txt"
    python3 - "$model" "$round" "$MESSAGES" "$start" "$end" "$scratch" \
        "$(getconf CLK_TCK)" >>"$scratch/table.txt" <<'PY'
import sys
model, round, messages, start, end, scratch, hz = sys.argv[1:]
messages, seconds, hz = int(messages), float(end) - float(start), int(hz)

def stats(name):
    rows = (line.split() for line in open(f"{scratch}/{name}.txt"))
    return {r[0]: [int(x) for x in r[1:]] for r in rows}

before, after = stats("before"), stats("after")
delta = {tid: [a - b for a, b in zip(after[tid], before.get(tid, [0] * 3))]
         for tid in after}
serving = max(delta, key=lambda tid: delta[tid][0])
ticks = sum(d[0] for d in delta.values())
_, sleeps, migrations = delta[serving]
# Of the samples that saw both the serving thread and the client's
# connection thread, the share where the two were last on the same CPU.
same = both = 0
for line in open(f"{scratch}/samples.txt"):
    cpus = dict(((who, tid), cpu) for who, tid, cpu in
                (entry.split() for entry in line.strip().split(" | ")))
    client = [cpu for (who, _), cpu in cpus.items() if who == "client"]
    mine = cpus.get(("server", serving))
    if mine is not None and client:
        both += 1
        same += mine == client[0]
print(f"{model:<14} {round:>5} {messages / seconds:8.0f} "
      f"{ticks / hz * 1e6 / messages:11.1f} "
      f"{100 * sleeps / messages:8.0f}% {100 * same / max(both, 1):8.0f}% "
      f"{1000 * migrations / messages:10.1f}")
PY
    stop_server
done
done
{
    echo "\$ # one client, $MESSAGES messages, --work-ms 0; the serving thread:"
    echo "\$ # sleeps per 100 messages, share of samples on the client's CPU,"
    echo "\$ # migrations per 1,000 messages"
    # The header, then each model's rounds together.
    head -n 1 "$scratch/table.txt"
    tail -n +2 "$scratch/table.txt" | sort -s -k1,1
} >"$out/measuring-one-connection.txt"
echo "wrote $out/measuring-one-connection.txt"

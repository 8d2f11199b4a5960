#!/usr/bin/env bash
# Runs the sector-sync scenarios (benches/scenarios/sector-sync-{A..E}.toml) against the Orrery server, against
# the raw fan-out floor (benches/fanout-floor) with the same clients, and against the floor reading the same clients'
# inputs (fanout-floor --read-inputs, orrery loadtest --floor --floor-inputs), then writes the results table into
# docs/benchmarks.md between the `sector-sync:begin` / `sector-sync:end` markers.
#
# Usage: benches/run-sector-sync.sh [A B C D E]      (no argument: all five)
#        benches/run-sector-sync.sh --report-only     (only rewrite the table from the results already in RESULTS_DIR)
#
# Placement follows the scenario description (docs/scenarios/sector-sync.md): the server (or the floor) is
# pinned to CPU 0, the load generator to CPU 1; before each run the machine must be idle (< 15 % busy for 3 s).
# Scenario files are used as they are: never tune a scenario to make a target pass.
#
# Environment (all optional):
#   PORT             server / floor port                      (default 7870)
#   RESULTS_DIR      where the JSON reports and logs go       (default benches/results)
#   IDLE_TIMEOUT     seconds to wait for an idle machine      (default 120; then the run goes ahead, flagged)
#   FLOOR_FRAME_BYTES payload of the floor's frame            (default 1024, the issue's definition)
#   SKIP_BUILD=1     do not run cargo build
#   BENCH_DOC        the Markdown file to write the table into (default docs/benchmarks.md)
#   CARGO_TARGET_DIR honoured (default target/)
#   BENCH_POSTGRES   admin URL of a PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/postgres): each server
#                    run gets a fresh database there (created with psql, dropped after) and `--database-url`
#                    instead of the embedded store. Use a scratch BENCH_DOC to keep both tables.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PORT=${PORT:-7870}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/benches/results}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-120}
FLOOR_FRAME_BYTES=${FLOOR_FRAME_BYTES:-1024}
ORRERY=$TARGET/release/orrery
FLOOR=$TARGET/release/fanout-floor
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}

REPORT_ONLY=0
if [ "${1:-}" = --report-only ]; then
    REPORT_ONLY=1
    set --
elif [ $# -eq 0 ]; then
    set -- A B C D E
fi
mkdir -p "$RESULTS_DIR"
# Scenario E holds 5,000 sockets in the load generator (and as many in the server).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 12000 ]; then
    printf 'warning: ulimit -n is %s; scenario E needs more than 5,100 descriptors per process\n' "$(ulimit -n)" >&2
fi

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ "${SKIP_BUILD:-0}" != 1 ] && [ "$REPORT_ONLY" = 0 ]; then
    log "cargo build --release -p orrery -p fanout-floor"
    cargo build --release -p orrery -p fanout-floor
fi
[ -x "$ORRERY" ] || { log "missing $ORRERY"; exit 1; }
[ -x "$FLOOR" ] || { log "missing $FLOOR"; exit 1; }
# What was measured: the commit, whether the tree had uncommitted changes outside benches/ and docs/, and the
# binary's own hash (rows of the table that come from different binaries are flagged).
GIT_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no -- . ":!benches" ":!docs" 2>/dev/null)" ]; then GIT_REV="$GIT_REV+uncommitted"; fi
BINARY_SHA="$(sha256sum "$ORRERY" | cut -c1-12)"

# Machine-wide busy fraction over `secs` seconds, from the first line of /proc/stat, in percent.
busy_percent() {
    local secs=$1 a b
    a=$(head -1 /proc/stat)
    sleep "$secs"
    b=$(head -1 /proc/stat)
    python3 - "$a" "$b" <<'PY'
import sys
def parse(line):
    v = [int(x) for x in line.split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return sum(v[:8]), idle                      # guest time is already inside user/nice
(t0, i0), (t1, i1) = parse(sys.argv[1]), parse(sys.argv[2])
dt = max(t1 - t0, 1)
print(f"{100.0 * (dt - (i1 - i0)) / dt:.1f}")
PY
}

# Waits until the machine is < 15 % busy over 3 s; returns 1 (and goes ahead) after IDLE_TIMEOUT seconds.
wait_idle() {
    local start=$SECONDS busy
    while :; do
        busy=$(busy_percent 3)
        if python3 -c "import sys; sys.exit(0 if float('$busy') < 15.0 else 1)"; then
            log "machine idle (${busy} % busy over 3 s)"
            return 0
        fi
        if [ $((SECONDS - start)) -ge "$IDLE_TIMEOUT" ]; then
            log "machine still ${busy} % busy after ${IDLE_TIMEOUT} s; going ahead (flagged in the report)"
            return 1
        fi
        log "machine ${busy} % busy; waiting"
    done
}

# Waits until GET /readyz answers 200 (the floor answers any plain GET with 200).
wait_ready() {
    local pid=$1 i
    for i in $(seq 1 300); do
        if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/readyz" 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { log "process $pid exited before it was ready"; return 1; }
        sleep 0.1
    done
    log "not ready after 30 s"
    return 1
}

# SIGTERM, then SIGKILL after 20 s.
stop() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    log "process $pid ignored SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# One measured run of scenario $X: waits for an idle machine, starts the command in the array named $2 (the server
# or the floor) on CPU 0, waits until it is ready, notes its idle RSS, runs the load tester on CPU 1 with the flags in
# the array named $3, and stops the process. $1 names the files: $X$1.json, $X$1-server.log, $X$1-loadtest.log.
# Sets RUN_IDLE (1 if the machine was idle), RUN_READY_RC, RUN_LOAD_RC, RUN_RSS_KIB and the two commands as run,
# RUN_SERVER and RUN_LOAD.
measure() {
    local suffix=$1
    local -n process_cmd=$2 load_flags=$3
    RUN_IDLE=1
    wait_idle || RUN_IDLE=0
    log "scenario $X$suffix: starting ${process_cmd[*]}"
    "${process_cmd[@]}" >"$RESULTS_DIR/$X$suffix-server.log" 2>&1 &
    CHILD=$!
    RUN_READY_RC=0
    wait_ready "$CHILD" || RUN_READY_RC=$?
    # The idle process's resident memory, before any client: the base that per-session memory is measured above.
    RUN_RSS_KIB=$(awk '/^VmRSS:/ {print $2}' "/proc/$CHILD/status" 2>/dev/null || true)
    local load=(taskset -c 1 "$ORRERY" loadtest "${load_flags[@]}" --scenario "$SCEN" --server "127.0.0.1:$PORT"
        --server-pid "$CHILD" --json "$RESULTS_DIR/$X$suffix.json" --no-progress)
    RUN_LOAD_RC=0
    if [ "$RUN_READY_RC" = 0 ]; then
        log "scenario $X$suffix: ${load[*]}"
        "${load[@]}" >"$RESULTS_DIR/$X$suffix-loadtest.log" 2>&1 || RUN_LOAD_RC=$?
        log "scenario $X$suffix: load test exited with $RUN_LOAD_RC (2 = an SLO of the scenario failed)"
    fi
    stop "$CHILD"
    CHILD=
    RUN_SERVER="${process_cmd[*]}"
    RUN_LOAD="${load[*]}"
}

CHILD=
cleanup() { if [ -n "$CHILD" ]; then stop "$CHILD"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

for X in "$@"; do
    SCEN=$ROOT/benches/scenarios/sector-sync-$X.toml
    META=$RESULTS_DIR/$X.meta.json
    if [ ! -f "$SCEN" ]; then
        log "scenario $X: $SCEN not found; skipped"
        continue
    fi
    rm -f "$RESULTS_DIR/$X.json" "$RESULTS_DIR/$X-floor.json" "$RESULTS_DIR/$X-floor-inputs.json"

    # --- the server, then the floor with the same clients, then the floor reading the same inputs ---
    DATA=$(mktemp -d -t orrery-bench-XXXXXX)
    DB_FLAGS=()
    if [ -n "${BENCH_POSTGRES:-}" ]; then
        DBNAME=orrery_bench_$(date +%s)_${X,,}
        psql "$BENCH_POSTGRES" -qtAc "CREATE DATABASE $DBNAME" >/dev/null
        DB_FLAGS=(--database-url "${BENCH_POSTGRES%/*}/$DBNAME")
    fi
    SERVER_CMD=(env RUST_LOG=warn taskset -c 0 "$ORRERY" serve --bind "127.0.0.1:$PORT" --data-dir "$DATA"
        --allow-spawn-choice --guest-logins-per-minute 0 --max-msgs-per-sec 100 --msg-burst 200 --regions 2 --sectors-per-region 30
        "${DB_FLAGS[@]}")
    NO_FLAGS=()
    measure "" SERVER_CMD NO_FLAGS
    read -r idle_server server_rc load_rc rss_base_kib <<<"$RUN_IDLE $RUN_READY_RC $RUN_LOAD_RC $RUN_RSS_KIB"
    server_cmds=("$RUN_SERVER" "$RUN_LOAD")
    rm -rf "$DATA"
    if [ -n "${BENCH_POSTGRES:-}" ]; then
        psql "$BENCH_POSTGRES" -qtAc "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null || true
    fi

    FLOOR_CMD=(taskset -c 0 "$FLOOR" --bind "127.0.0.1:$PORT" --frame-bytes "$FLOOR_FRAME_BYTES" --hz 20)
    FLOOR_FLAGS=(--floor)
    measure -floor FLOOR_CMD FLOOR_FLAGS
    read -r idle_floor floor_rc floor_load_rc <<<"$RUN_IDLE $RUN_READY_RC $RUN_LOAD_RC"
    floor_cmds=("$RUN_SERVER" "$RUN_LOAD")

    FI_CMD=("${FLOOR_CMD[@]}" --read-inputs)
    FI_FLAGS=(--floor --floor-inputs)
    measure -floor-inputs FI_CMD FI_FLAGS
    read -r idle_fi fi_load_rc <<<"$RUN_IDLE $RUN_LOAD_RC"
    fi_cmds=("$RUN_SERVER" "$RUN_LOAD")

    python3 - "$META" <<PY
import json, sys
json.dump({
    "scenario": "$X",
    "file": "benches/scenarios/sector-sync-$X.toml",
    "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "idle_before_server": bool($idle_server),
    "idle_before_floor": bool($idle_floor),
    "idle_before_floor_inputs": bool($idle_fi),
    "server_ready": $server_rc == 0,
    "server_rss_base_kib": ${rss_base_kib:-None},
    "git": "$GIT_REV",
    "binary_sha256": "$BINARY_SHA",
    "floor_ready": $floor_rc == 0,
    "loadtest_exit": $load_rc,
    "floor_loadtest_exit": $floor_load_rc,
    "floor_inputs_loadtest_exit": $fi_load_rc,
    "commands": [
        "${server_cmds[0]}",
        "${server_cmds[1]}",
        "${floor_cmds[0]}",
        "${floor_cmds[1]}",
        "${fi_cmds[0]}",
        "${fi_cmds[1]}",
    ],
}, open(sys.argv[1], "w"), indent=2)
PY
done

# --- the report ---
export ROOT RESULTS_DIR DOC IDLE_TIMEOUT
export RUSTC_VERSION="$(rustc --version)"
export KERNEL="$(uname -r)"
export CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
export CPU_COUNT="$(nproc)"
export RUN_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
python3 - <<'PY'
import json, os, re, sys

root, results, doc = os.environ["ROOT"], os.environ["RESULTS_DIR"], os.environ["DOC"]

# Colyseus 0.18 reference figures (docs/scenarios/sector-sync.md, "Reference figures"); none exist for E:
# Colyseus tops out near 2,000 clients per core.
COLYSEUS = {
    "A": dict(clients=100, cpu=8.3, rss=89, fps=1997, bytes=2001, p50=23.3, p99=44.5, overruns="0 / 599"),
    "B": dict(clients=1000, cpu=45.4, rss=120, fps=19861, bytes=1994, p50=29.0, p99=60.6, overruns="10 / 5,960"),
    "C": dict(clients=2000, cpu=73.7, rss=157, fps=35597, bytes=1691, p50=80.6, p99=214.6, overruns="618 / 10,788",
              note="load generator saturated"),
    "D": dict(clients=500, cpu=30.0, rss=115, fps=9966, bytes=10612, p50=30.5, p99=73.5, overruns="0 / 599"),
}


def get(d, *paths):
    """The first of `paths` (dotted) present in `d`. The load tester's JSON (schema orrery-loadtest/1, see
    docs/loadtest.md) is read first; the second names are the ones this script was first written against."""
    for path in paths:
        v = d
        for k in path.split("."):
            if not isinstance(v, dict) or k not in v:
                v = None
                break
            v = v[k]
        if v is not None:
            return v
    return None


def load(name):
    try:
        with open(os.path.join(results, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def num(v, fmt="{:,.1f}"):
    return "–" if v is None else fmt.format(v)


rows, verdicts, notes, commands = [], [], [], []
for x in "ABCDE":
    meta = load(f"{x}.meta.json")
    if meta is None:
        continue
    r, fl, fi = load(f"{x}.json"), load(f"{x}-floor.json"), load(f"{x}-floor-inputs.json")
    commands.append((x, meta))
    if r is None:
        rows.append(f"| {x} | – | no report: the run failed (see `{x}-loadtest.log`, `{x}-server.log`) |" + " – |" * 11)
        verdicts.append(f"- **{x}: no result** (the load test produced no report; see the logs in `{os.path.relpath(results, root)}`).")
        continue
    clients = get(r, "clients.connected_at_window_start", "clients_connected")
    fps = get(r, "frames.per_sec", "frames_per_sec")
    ideal = get(r, "frames.ideal_per_sec", "ideal_frames_per_sec")
    pct = 100.0 * fps / ideal if fps is not None and ideal else None
    cpu = get(r, "cpu.server_pct", "server.cpu_percent")
    rss = get(r, "cpu.server_rss_mib", "server.rss_mib")
    nbytes = get(r, "bytes.mean_delta_payload_bytes", "mean_delta_bytes")
    p50, p99 = get(r, "rtt.p50_ms", "rtt_ms.p50"), get(r, "rtt.p99_ms", "rtt_ms.p99")
    over = get(r, "server_metrics.tick_overruns", "server.tick_overruns")
    ticks = get(r, "server_metrics.ticks", "server.ticks")
    lg = get(r, "cpu.loadgen_pct", "loadgen.cpu_percent")
    sat = bool(get(r, "cpu.loadgen_bound", "loadgen.saturated"))
    us = get(r, "cpu.server_us_per_delivered_frame", "server_cpu_us_per_frame")
    fus = get(fl, "cpu.server_us_per_delivered_frame", "server_cpu_us_per_frame") if fl else None
    ffps = get(fl, "frames.per_sec", "frames_per_sec") if fl else None
    fideal = get(fl, "frames.ideal_per_sec", "ideal_frames_per_sec") if fl else None
    fius = get(fi, "cpu.server_us_per_delivered_frame") if fi else None
    fi_ratio = us / fius if us is not None and fius else None
    other = get(r, "cpu.other_pct")
    dropped = get(r, "server_metrics.deltas_dropped")
    failed = get(r, "clients.failed")
    slo_failed = [c.get("name") for c in (get(r, "slo.checks") or []) if c.get("status") == "fail"]
    ratio = us / fus if us is not None and fus else None
    over_ratio = over / ticks if over is not None and ticks else None
    base_kib = meta.get("server_rss_base_kib")
    kib_per_session = (rss * 1024 - base_kib) / clients if rss is not None and base_kib and clients else None
    lgtxt = num(lg) + (" **(saturated)**" if sat else "")
    if other is not None and other > 15.0:
        lgtxt += " (disturbed: other CPU {:.0f} %)".format(other)
    rows.append(
        f"| {x} | {num(clients, '{:,}')} | {num(cpu)} | {num(rss)} | {num(fps, '{:,.0f}')} ({num(pct)} %) | "
        f"{num(nbytes, '{:,.0f}')} | {num(p50)} / {num(p99)} | {num(over, '{:,.0f}')} / {num(ticks, '{:,.0f}')} | {lgtxt} | "
        f"{num(us, '{:.2f}')} | {num(fus, '{:.2f}')} | {num(ratio, '{:.2f}')} | {num(fius, '{:.2f}')} | "
        f"{num(fi_ratio, '{:.2f}')} |"
    )
    c = COLYSEUS.get(x)
    if c:
        rows.append(
            f"| {x} Colyseus | {c['clients']:,} | {c['cpu']} | {c['rss']} | {c['fps']:,} | {c['bytes']:,} | "
            f"{c['p50']} / {c['p99']} | {c['overruns']} | {c.get('note', '')} | – | – | – | – | – |"
        )
    bound = " (load-generator-bound: the load generator was saturated, so this run understates what the server can do)" if sat else ""
    if not all(meta.get(k, True) for k in ("idle_before_server", "idle_before_floor", "idle_before_floor_inputs")):
        notes.append(f"- {x}: the machine was not idle before the run (waited {os.environ.get('IDLE_TIMEOUT', '120')} s).")
    if meta.get("loadtest_exit", 0) not in (0, 2):
        notes.append(f"- {x}: the load test exited with {meta['loadtest_exit']}.")
    if fl is None:
        notes.append(f"- {x}: the floor run produced no report (see `{x}-floor-loadtest.log`).")
    elif ffps is not None and fideal:
        notes.append(f"- {x}: the floor delivered {ffps:,.0f} frames/s ({100.0 * ffps / fideal:.1f} % of ideal) "
                     f"at {num(get(fl, 'cpu.server_pct'))} % CPU; load generator {num(get(fl, 'cpu.loadgen_pct'))} %"
                     + (" (saturated)" if get(fl, "cpu.loadgen_bound") else "") + ".")
    if fi is None:
        notes.append(f"- {x}: the floor-with-inputs run produced no report (see `{x}-floor-inputs-loadtest.log`).")
    else:
        fifps, fiideal = get(fi, "frames.per_sec"), get(fi, "frames.ideal_per_sec")
        if fifps is not None and fiideal:
            notes.append(f"- {x}: the floor with inputs delivered {fifps:,.0f} frames/s ({100.0 * fifps / fiideal:.1f} % "
                         f"of ideal) and read {num(get(fi, 'inputs.per_sec'), '{:,.0f}')} inputs/s at "
                         f"{num(get(fi, 'cpu.server_pct'))} % CPU; load generator {num(get(fi, 'cpu.loadgen_pct'))} %"
                         + (" (saturated)" if get(fi, "cpu.loadgen_bound") else "") + ".")
    extra = []
    if other is not None and other > 15.0:
        extra.append(f"**other processes used {other:.1f} % CPU during the window: this run was disturbed; "
                     f"rerun it on an idle machine** (`benches/run-sector-sync.sh {x}`)")
    elif other is not None:
        extra.append(f"other CPU during the window {other:.1f} %")
    if dropped:
        extra.append(f"{dropped:,.0f} deltas dropped by backpressure")
    if failed:
        extra.append(f"{failed:,} clients failed to join or were lost")
    if slo_failed:
        extra.append("scenario SLOs violated: " + ", ".join(map(str, slo_failed)))
    if extra:
        notes.append(f"- {x}: " + "; ".join(extra) + ".")

    def verdict(name, ok, detail):
        if ok is None:
            verdicts.append(f"- {x}: {name}: **not measured** ({detail}).")
        else:
            verdicts.append(f"- {x}: {name}: **{'met' if ok else 'NOT MET'}** ({detail}){'' if ok else bound}.")

    if x in "CE":
        verdict("CPU per delivered frame <= 1.15 x the floor", None if ratio is None else ratio <= 1.15,
                f"{num(us, '{:.2f}')} µs vs floor {num(fus, '{:.2f}')} µs = {num(ratio, '{:.2f}')} x; against the floor "
                f"that also reads the inputs: {num(fius, '{:.2f}')} µs = {num(fi_ratio, '{:.2f}')} x")
    if x == "B":
        verdict("server CPU <= 18.2 % of a core (40 % of Colyseus's 45.4 %)", None if cpu is None else cpu <= 0.4 * 45.4,
                f"{num(cpu)} %")
        verdict("RTT p99 <= 60 ms", None if p99 is None else p99 <= 60.0, f"{num(p99)} ms")
        verdict("no tick overruns", None if over is None else over == 0, f"{num(over, '{:,.0f}')} of {num(ticks, '{:,.0f}')} ticks")
    if x == "E":
        verdict(">= 99.5 % of the ideal frames delivered", None if pct is None else pct >= 99.5, f"{num(pct, '{:.2f}')} %")
        verdict("RTT p99 <= 100 ms", None if p99 is None else p99 <= 100.0, f"{num(p99)} ms")
        verdict("< 0.1 % tick overruns", None if over_ratio is None else over_ratio < 0.001,
                f"{num(None if over_ratio is None else 100 * over_ratio, '{:.3f}')} %")
    if x in "ABC":
        verdict("<= 1,000 B per delta frame for 100 moving ships (binary)", None if nbytes is None else nbytes <= 1000,
                f"mean {num(nbytes, '{:,.0f}')} B; Colyseus {COLYSEUS[x]['bytes']:,} B")
    verdict("<= 16 KiB of server memory per connected session", None if kib_per_session is None else kib_per_session <= 16,
            f"(RSS at the window's end - RSS of the idle server {num(base_kib and base_kib / 1024)} MiB) / clients = "
            f"{num(kib_per_session)} KiB")

header = (
    "| scenario | clients | server CPU % of a core | RSS MiB | deltas delivered / s (% of ideal) | mean delta B | "
    "RTT p50 / p99 ms | tick overruns / ticks | load gen CPU % | server CPU µs / frame | floor µs / frame | ratio | "
    "floor + inputs µs / frame | ratio to floor + inputs |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
out = ["<!-- sector-sync:begin -->", "<!-- Written by benches/run-sector-sync.sh; edits here are overwritten. -->", ""]
if not rows:
    out.append("_No results yet: run `benches/run-sector-sync.sh`._")
else:
    out += [f"Last written {os.environ['RUN_DATE']} on `{os.environ['CPU_MODEL']}` ({os.environ['CPU_COUNT']} cores), "
            f"kernel `{os.environ['KERNEL']}`, `{os.environ['RUSTC_VERSION']}`. Server or floor on CPU 0, load generator on CPU 1.",
            "", header, *rows, "",
            "\"ratio\" is server CPU per delivered delta frame over the floor's CPU per delivered frame "
            "(same clients, same machine). \"floor + inputs\" is the same floor started with `--read-inputs` while the "
            "same clients send the scenario's thrusts (`orrery loadtest --floor --floor-inputs`): the kernel's cost of "
            "the server's whole traffic, inputs included. Rows marked Colyseus are the reference figures of "
            "docs/scenarios/sector-sync.md (no Colyseus figure exists for E).", "",
            "Targets:", "", *verdicts]
    if notes:
        out += ["", "Notes:", "", *notes]
    binaries = {m.get("binary_sha256") for _, m in commands}
    if len(binaries) > 1:
        out += ["", "**The rows above come from different server binaries** (see below); rerun every scenario "
                "(`benches/run-sector-sync.sh`) before comparing them."]
    out += ["", "Commands (exactly as run):", ""]
    for x, meta in commands:
        out.append(f"- {x} ({meta.get('date', '?')}; commit {meta.get('git', '?')}, "
                   f"`orrery` binary sha256 {meta.get('binary_sha256', '?')}):")
        out += [f"  - `{c.replace(root + '/', '')}`" for c in meta.get("commands", [])]
out.append("<!-- sector-sync:end -->")
block = "\n".join(out)

text = open(doc).read() if os.path.exists(doc) else ""
pattern = re.compile(r"<!-- sector-sync:begin -->.*?<!-- sector-sync:end -->", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: block, text)
else:
    text = text.rstrip("\n") + "\n\n## Sector-sync scenarios\n\n" + block + "\n"
with open(doc, "w") as f:
    f.write(text)
print(block)
PY

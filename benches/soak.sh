#!/usr/bin/env bash
# Soak: a fresh release server under scenario E's load plus warps, trades and chat (benches/scenarios/soak.toml), with
# reconnects and hostile clients (benches/soak_hostile.py) alongside, for DURATION seconds; samples the server every
# SAMPLE_SECS and writes a CSV time series and a Markdown report. Not run in CI: it needs a quiet 2-core machine.
#
# Usage: benches/soak.sh [DURATION_SECS]          (default 3600; at least 60)
#
# Placement as for the benchmarks: the server on CPU 0; the load tester, the hostile driver and the sampler on CPU 1.
# The script refuses to start unless the machine is idle (< 15 % busy over 3 s, waiting up to IDLE_TIMEOUT seconds).
# It stops everything it started when it ends (or is interrupted) and is bounded in time: the load tester is given
# DURATION + 900 s at most, the shutdown 60 s.
#
# Output (RESULTS_DIR): report.md (the summary to paste into docs/benchmarks.md), samples.csv (one row per sample),
# loadtest.json / loadtest.log (orrery loadtest), hostile.json / hostile.log (soak_hostile.py), server.log,
# soak.toml (the scenario as run), meta.json. benches/results/ is git-ignored.
#
# Environment (all optional):
#   PORT                   server port                                       (default 7880)
#   RESULTS_DIR            output directory                   (default benches/results/soak-<UTC date and time>)
#   SAMPLE_SECS            sampling period                                   (default 10)
#   IDLE_TIMEOUT           seconds to wait for an idle machine before refusing (default 120)
#   FORCE=1                run even if the machine is busy (the report says so)
#   SOAK_ROOMS             rooms instead of soak.toml's 50 (short validation runs)
#   SOAK_CLIENTS_PER_ROOM  clients per room instead of soak.toml's 100
#   WS_PING_INTERVAL, WS_TIMEOUT, HTTP_HEADER_TIMEOUT   server flags, also told to the hostile driver (10, 30, 10)
#   SKIP_BUILD=1           do not run cargo build --release -p orrery
#   CARGO_TARGET_DIR       honoured (default target/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DURATION=${1:-3600}
if ! [[ "$DURATION" =~ ^[0-9]+$ ]] || [ "$DURATION" -lt 60 ]; then
    echo "usage: $0 [DURATION_SECS >= 60]" >&2
    exit 1
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ORRERY=$TARGET/release/orrery
PORT=${PORT:-7880}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/benches/results/soak-$STAMP}
SAMPLE_SECS=${SAMPLE_SECS:-10}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-120}
WS_PING_INTERVAL=${WS_PING_INTERVAL:-10}
WS_TIMEOUT=${WS_TIMEOUT:-30}
HTTP_HEADER_TIMEOUT=${HTTP_HEADER_TIMEOUT:-10}
SCENARIO=$ROOT/benches/scenarios/soak.toml

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

mkdir -p "$RESULTS_DIR"
RESULTS_DIR=$(cd "$RESULTS_DIR" && pwd)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- the scenario as run: soak.toml with the duration (and the room overrides) ---
python3 - "$SCENARIO" "$RESULTS_DIR/soak.toml" "$DURATION" "${SOAK_ROOMS:-}" "${SOAK_CLIENTS_PER_ROOM:-}" <<'PY'
import re, sys
src, dst, duration, rooms, per_room = sys.argv[1:6]
text = open(src).read()
def setting(text, key, value):
    new, n = re.subn(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", text)
    if n != 1:
        sys.exit(f"{src}: expected one `{key} = ...` line")
    return new
text = setting(text, "window_secs", duration)
if rooms:
    text = setting(text, "rooms", int(rooms))
if per_room:
    text = setting(text, "clients_per_room", int(per_room))
open(dst, "w").write(text)
PY
read -r ROOMS PER_ROOM WARMUP < <(python3 -c '
import sys, tomllib
s = tomllib.load(open(sys.argv[1], "rb"))
print(s["rooms"], s["clients_per_room"], s.get("warmup_secs", 5))' "$RESULTS_DIR/soak.toml")
CLIENTS=$((ROOMS * PER_ROOM))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CLIENTS + 600)) ]; then
    log "ulimit -n is $(ulimit -n); $CLIENTS clients need more than $((CLIENTS + 600)) descriptors per process"
    exit 1
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release -p orrery"
    cargo build --release -p orrery
fi
[ -x "$ORRERY" ] || { log "missing $ORRERY"; exit 1; }
GIT_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no -- . ":!benches" ":!docs" 2>/dev/null)" ]; then GIT_REV="$GIT_REV+uncommitted"; fi
BINARY_SHA="$(sha256sum "$ORRERY" | cut -c1-12)"

if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then
    log "something already answers on 127.0.0.1:$PORT; set PORT"
    exit 1
fi

# --- refuse to run on a busy machine ---
busy_percent() {
    local a b
    a=$(head -1 /proc/stat)
    sleep 3
    b=$(head -1 /proc/stat)
    python3 - "$a" "$b" <<'PY'
import sys
def parse(line):
    v = [int(x) for x in line.split()[1:]]
    return sum(v[:8]), v[3] + (v[4] if len(v) > 4 else 0)
(t0, i0), (t1, i1) = parse(sys.argv[1]), parse(sys.argv[2])
dt = max(t1 - t0, 1)
print(f"{100.0 * (dt - (i1 - i0)) / dt:.1f}")
PY
}
MACHINE_IDLE=1
start_wait=$SECONDS
while :; do
    busy=$(busy_percent)
    if python3 -c "import sys; sys.exit(0 if float('$busy') < 15.0 else 1)"; then
        log "machine idle (${busy} % busy over 3 s)"
        break
    fi
    if [ $((SECONDS - start_wait)) -ge "$IDLE_TIMEOUT" ]; then
        if [ "${FORCE:-0}" = 1 ]; then
            log "machine still ${busy} % busy after ${IDLE_TIMEOUT} s; going ahead (FORCE=1; flagged in the report)"
            MACHINE_IDLE=0
            break
        fi
        log "machine still ${busy} % busy after ${IDLE_TIMEOUT} s: refusing to run (FORCE=1 overrides)"
        exit 1
    fi
    log "machine ${busy} % busy; waiting"
done

# --- processes, and their cleanup ---
SERVER_PID= LOAD_PID= HOSTILE_PID= SAMPLER_PID=
DATA=$(mktemp -d -t orrery-soak-XXXXXX)
stop_pid() { # SIGTERM, then SIGKILL after $2 seconds
    local pid=$1 secs=${2:-20} i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    log "process $pid ignored SIGTERM for ${secs} s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    stop_pid "$LOAD_PID" 5
    stop_pid "$HOSTILE_PID" 40
    if [ -n "$SAMPLER_PID" ]; then touch "$RESULTS_DIR/.stop-sampler"; stop_pid "$SAMPLER_PID" 15; fi
    stop_pid "$SERVER_PID" 30
    rm -rf "$DATA" "$RESULTS_DIR/.stop-sampler"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SERVER_CMD=(env RUST_LOG=warn taskset -c 0 "$ORRERY" serve --bind "127.0.0.1:$PORT" --data-dir "$DATA"
    --allow-spawn-choice --guest-logins-per-minute 0 --max-msgs-per-sec 100 --msg-burst 200
    --max-sessions $((CLIENTS + 1000)) --ws-ping-interval "$WS_PING_INTERVAL" --ws-timeout "$WS_TIMEOUT"
    --http-header-timeout "$HTTP_HEADER_TIMEOUT" --regions 2 --sectors-per-region 30)
log "starting: ${SERVER_CMD[*]}"
START_UTC=$(date -u +%Y-%m-%dT%H:%M:%SZ)
"${SERVER_CMD[@]}" >"$RESULTS_DIR/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/readyz" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { log "the server exited before it was ready (see server.log)"; exit 1; }
    sleep 0.1
done
curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/readyz" || { log "the server is not ready after 30 s"; exit 1; }
RSS_IDLE_KIB=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")
log "server $SERVER_PID ready; idle RSS $RSS_IDLE_KIB KiB"

# --- the sampler: every SAMPLE_SECS, one CSV row (runs until the stop file appears or the server is gone) ---
taskset -c 1 python3 - "$SERVER_PID" "$PORT" "$SAMPLE_SECS" "$RESULTS_DIR/samples.csv" "$RESULTS_DIR/.stop-sampler" \
    >"$RESULTS_DIR/sampler.log" 2>&1 <<'PY' &
import csv, json, os, sys, time, urllib.request
pid, port, period, out, stop = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
CLK = os.sysconf("SC_CLK_TCK")
# Counters read from /metrics (summed over their labels unless a label set is named).
COUNTERS = {
    "ticks": "orrery_ticks_total", "tick_overruns": "orrery_tick_overruns_total",
    "rate_limited": "orrery_rate_limited_total", "ws_timeouts": "orrery_ws_timeouts_total",
    "ws_pings_sent": "orrery_ws_pings_sent_total",
    "http_timeouts_header": 'orrery_http_timeouts_total{kind="header"}',
    "http_timeouts_idle": 'orrery_http_timeouts_total{kind="idle"}',
    "http_timeouts_request": 'orrery_http_timeouts_total{kind="request"}',
    "deltas_dropped": "orrery_deltas_dropped_total", "slow_consumers_closed": "orrery_slow_consumers_closed_total",
    "ws_protocol_errors": "orrery_ws_protocol_errors_total", "sessions_superseded": "orrery_sessions_superseded_total",
    "text_refused": "orrery_text_refused_total", "connections_refused": "orrery_connections_refused_total",
    "admission_refused": "orrery_admission_refused_total", "accept_errors": "orrery_accept_errors_total",
    "snapshot_errors": "orrery_snapshot_errors_total", "sector_restarts": "orrery_sector_restarts_total",
    "region_restarts": "orrery_region_restarts_total", "commands": "orrery_commands_total",
    "delta_frames_sent": "orrery_delta_frames_sent_total", "keyframes_sent": "orrery_keyframes_sent_total",
}
FIELDS = ["t_secs", "utc", "server_alive", "rss_kib", "hwm_kib", "threads", "fds", "cpu_pct", "sessions",
          *COUNTERS]

def proc():
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        cpu = int(fields[11]) + int(fields[12])  # utime + stime
        status = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                status[k] = v.split()[0] if v.split() else ""
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return cpu, int(status["VmRSS"]), int(status["VmHWM"]), int(status["Threads"]), fds
    except (OSError, ValueError, KeyError, IndexError):
        return None

def get(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read().decode()

def metrics():
    try:
        text = get("/metrics")
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, rest = line.rpartition(" ")
        try:
            v = float(rest)
        except ValueError:
            continue
        name = name_labels.split("{", 1)[0]
        values[name_labels] = v
        values[name] = values.get(name, 0.0) + v if name != name_labels else v
    return {k: values.get(m) for k, m in COUNTERS.items()}

def sessions():
    try:
        return json.loads(get("/readyz")).get("sessions")
    except (OSError, ValueError):
        return None

t0 = time.monotonic()
prev = None
with open(out, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=FIELDS)
    w.writeheader()
    next_at = t0
    while True:
        now = time.monotonic()
        p = proc()
        row = {"t_secs": round(now - t0, 1), "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "server_alive": int(p is not None)}
        if p:
            cpu, row["rss_kib"], row["hwm_kib"], row["threads"], row["fds"] = p
            if prev:
                row["cpu_pct"] = round(100.0 * (cpu - prev[0]) / CLK / max(now - prev[1], 1e-3), 2)
            prev = (cpu, now)
            row["sessions"] = sessions()
            row.update(metrics())
        w.writerow(row)
        f.flush()
        if p is None or os.path.exists(stop):
            break
        next_at += period
        while time.monotonic() < next_at:
            if os.path.exists(stop):
                break
            time.sleep(min(0.5, max(0.0, next_at - time.monotonic())))
PY
SAMPLER_PID=$!

# --- the load, and the hostile clients ---
LOAD_CMD=(timeout --signal=TERM --kill-after=30 $((DURATION + 900)) taskset -c 1 "$ORRERY" loadtest
    --scenario "$RESULTS_DIR/soak.toml" --server "127.0.0.1:$PORT" --server-pid "$SERVER_PID"
    --json "$RESULTS_DIR/loadtest.json" --no-progress --idle-wait-secs 0)
HOSTILE_CMD=(taskset -c 1 python3 "$ROOT/benches/soak_hostile.py" --server "127.0.0.1:$PORT"
    --duration $((DURATION + 600)) --json "$RESULTS_DIR/hostile.json" --ws-timeout "$WS_TIMEOUT"
    --http-header-timeout "$HTTP_HEADER_TIMEOUT")
log "starting: ${LOAD_CMD[*]}"
"${LOAD_CMD[@]}" >"$RESULTS_DIR/loadtest.log" 2>&1 &
LOAD_PID=$!
log "starting: ${HOSTILE_CMD[*]}"
"${HOSTILE_CMD[@]}" >"$RESULTS_DIR/hostile.log" 2>&1 &
HOSTILE_PID=$!
log "soaking for ${DURATION} s after the joins and ${WARMUP} s of warm-up ($CLIENTS clients); results in $RESULTS_DIR"

LOAD_RC=0
wait "$LOAD_PID" || LOAD_RC=$?
LOAD_PID=
END_UTC=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "load tester exited with $LOAD_RC (2 = an SLO of the scenario failed; 124 = timed out)"
# The hostile driver stops at the end of its current cycle (a silent one takes up to --ws-timeout).
kill -TERM "$HOSTILE_PID" 2>/dev/null || true
HOSTILE_RC=0
for ((i = 0; i < 600; i++)); do kill -0 "$HOSTILE_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$HOSTILE_PID" 2>/dev/null && { log "hostile driver still running after 60 s; killing it"; kill -KILL "$HOSTILE_PID"; }
wait "$HOSTILE_PID" || HOSTILE_RC=$?
HOSTILE_PID=
SERVER_UP=0
kill -0 "$SERVER_PID" 2>/dev/null && SERVER_UP=1
touch "$RESULTS_DIR/.stop-sampler"
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=
# Graceful shutdown: SIGTERM, and how long it took.
SHUTDOWN_RC=
SHUTDOWN_SECS=
if [ "$SERVER_UP" = 1 ]; then
    t_stop=$(date +%s.%N)
    kill -TERM "$SERVER_PID"
    for ((i = 0; i < 600; i++)); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        log "the server did not exit within 60 s of SIGTERM; killing it"
        kill -KILL "$SERVER_PID"
    fi
    SHUTDOWN_RC=0
    wait "$SERVER_PID" || SHUTDOWN_RC=$?
    SHUTDOWN_SECS=$(python3 -c "import sys,time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$t_stop")
else
    wait "$SERVER_PID" || SHUTDOWN_RC=$?
fi
SERVER_PID=

export RESULTS_DIR DURATION CLIENTS ROOMS PER_ROOM RSS_IDLE_KIB LOAD_RC HOSTILE_RC SERVER_UP SHUTDOWN_RC \
    SHUTDOWN_SECS GIT_REV BINARY_SHA START_UTC END_UTC MACHINE_IDLE SAMPLE_SECS WARMUP ROOT
export SERVER_LINE="${SERVER_CMD[*]}" LOAD_LINE="${LOAD_CMD[*]}" HOSTILE_LINE="${HOSTILE_CMD[*]}"
export KERNEL="$(uname -r)" CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
python3 - <<'PY'
import csv, json, os

E = os.environ
res = E["RESULTS_DIR"]
root = E["ROOT"] + "/"
clients = int(E["CLIENTS"])


def load(name):
    try:
        with open(os.path.join(res, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def num(v, fmt="{:,.1f}"):
    return "–" if v is None else fmt.format(v)


def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


rows = []
with open(os.path.join(res, "samples.csv")) as f:
    for r in csv.DictReader(f):
        rows.append({k: (v if k == "utc" else fnum(v)) for k, v in r.items()})
alive = [r for r in rows if r.get("server_alive") == 1 and r.get("rss_kib") is not None]
# Steady state: from the first sample with every client connected, plus the warm-up and one more minute.
full = next((r["t_secs"] for r in alive if (r.get("sessions") or 0) >= clients), None)
steady_from = None if full is None else full + float(E["WARMUP"]) + 60.0
steady = [r for r in alive if steady_from is not None and r["t_secs"] >= steady_from]
if len(steady) < 3:
    steady = alive[len(alive) // 2:]  # short runs: the second half


def slope_per_hour(points):
    """Least-squares slope of (t_secs, value) points, per hour."""
    pts = [(t, v) for t, v in points if t is not None and v is not None]
    if len(pts) < 2:
        return None
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    den = sum((t - mt) ** 2 for t, _ in pts)
    return None if den == 0 else 3600.0 * sum((t - mt) * (v - mv) for t, v in pts) / den


def delta(key, sample_rows):
    vals = [r.get(key) for r in sample_rows if r.get(key) is not None]
    return None if len(vals) < 2 else vals[-1] - vals[0]


mib = lambda kib: None if kib is None else kib / 1024.0
rss = [r["rss_kib"] for r in alive]
rss_idle = fnum(E.get("RSS_IDLE_KIB"))
cpu_steady = [r["cpu_pct"] for r in steady if r.get("cpu_pct") is not None]
ticks = delta("ticks", steady)
overruns = delta("tick_overruns", steady)
per_window = []
for a, b in zip(steady, steady[1:]):
    if a.get("tick_overruns") is not None and b.get("tick_overruns") is not None:
        per_window.append(b["tick_overruns"] - a["tick_overruns"])
sessions = [r["sessions"] for r in alive if r.get("sessions") is not None]
lt, ho = load("loadtest.json"), load("hostile.json")
server_up = E["SERVER_UP"] == "1"
half = steady[len(steady) // 2:]

out = []
out.append(f"Soak of {E['START_UTC']} to {E['END_UTC']}: commit `{E['GIT_REV']}`, `orrery` binary sha256 "
           f"{E['BINARY_SHA']}, `{E['CPU_MODEL']}`, kernel `{E['KERNEL']}`; {int(E['DURATION']):,} s window, "
           f"{clients:,} load-tester clients ({E['ROOMS']} rooms x {E['PER_ROOM']}), samples every {E['SAMPLE_SECS']} s"
           + ("" if E["MACHINE_IDLE"] == "1" else " (**the machine was busy at the start: FORCE=1**)") + ".")
out.append("")
stay = "**yes**" if server_up and all(r.get("server_alive") == 1 for r in rows[:-1]) else "**NO**"
sd = E.get("SHUTDOWN_RC") or "–"
out.append(f"- Server stayed up: {stay}; SIGTERM at the end: exit code {sd}"
           + (f" after {E['SHUTDOWN_SECS']} s" if E.get("SHUTDOWN_SECS") else "") + ".")
out.append(f"- Sessions (GET /readyz): min {num(min(sessions) if sessions else None, '{:,.0f}')}, max "
           f"{num(max(sessions) if sessions else None, '{:,.0f}')}; steady state from t = {num(steady[0]['t_secs'] if steady else None, '{:,.0f}')} s "
           f"({len(steady)} samples).")
out.append(f"- RSS MiB: idle {num(mib(rss_idle))}, first sample {num(mib(rss[0] if rss else None))}, min "
           f"{num(mib(min(rss) if rss else None))}, max {num(mib(max(rss) if rss else None))}, end "
           f"{num(mib(rss[-1] if rss else None))}; slope over the steady state "
           f"{num(mib(slope_per_hour([(r['t_secs'], r['rss_kib']) for r in steady])), '{:+,.2f}')} MiB/h "
           f"(its second half: {num(mib(slope_per_hour([(r['t_secs'], r['rss_kib']) for r in half])), '{:+,.2f}')} MiB/h); "
           f"per session at the end {num(None if not rss or rss_idle is None else (rss[-1] - rss_idle) / clients)} KiB.")
out.append(f"- Server CPU % of one core (steady state, {E['SAMPLE_SECS']} s samples): mean "
           f"{num(sum(cpu_steady) / len(cpu_steady) if cpu_steady else None)}, min {num(min(cpu_steady) if cpu_steady else None)}, "
           f"max {num(max(cpu_steady) if cpu_steady else None)}.")
out.append(f"- Tick overruns (steady state): {num(overruns, '{:,.0f}')} of {num(ticks, '{:,.0f}')} ticks "
           f"({num(None if not ticks or overruns is None else 100.0 * overruns / ticks, '{:.4f}')} %); samples with "
           f"overruns {sum(1 for x in per_window if x > 0)} of {len(per_window)}, worst {num(max(per_window) if per_window else None, '{:,.0f}')} "
           f"in one sample.")
counters = ["rate_limited", "ws_timeouts", "ws_pings_sent", "http_timeouts_header", "http_timeouts_idle",
            "http_timeouts_request", "deltas_dropped", "slow_consumers_closed", "ws_protocol_errors",
            "sessions_superseded", "text_refused", "connections_refused", "admission_refused", "accept_errors",
            "snapshot_errors", "sector_restarts", "region_restarts"]
out.append("- Server counters over the run (last sample): "
           + ", ".join(f"{c} {num(alive[-1].get(c) if alive else None, '{:,.0f}')}" for c in counters) + ".")
if lt:
    c, fr, rt, sm, er = lt["clients"], lt["frames"], lt["rtt"], lt.get("server_metrics") or {}, lt["errors"]
    slo = lt["slo"]
    out.append(f"- Load tester (exit {E['LOAD_RC']}): {c['joined']:,} of {c['planned']:,} joined, failed {c['failed']} "
               f"(join {c['failed_to_join']}, lost {c['lost_before_window_end']}); window {lt['window_secs']:,.0f} s; "
               f"deltas {num(fr.get('per_sec'), '{:,.0f}')}/s = {num(None if fr.get('delivered_ratio') is None else 100 * fr['delivered_ratio'], '{:.2f}')} % of ideal; "
               f"RTT p50 / p99 {num(rt.get('p50_ms'))} / {num(rt.get('p99_ms'))} ms; warps {lt['inputs']['warps_sent']:,}, "
               f"trades {lt['inputs']['trades_sent']:,}, chats {lt['inputs']['chats_sent']:,} in the window; "
               f"overruns {num(sm.get('tick_overruns'), '{:,.0f}')} / {num(sm.get('ticks'), '{:,.0f}')}; "
               f"server CPU {num(lt['cpu'].get('server_pct'))} %, load generator {num(lt['cpu'].get('loadgen_pct'))} %, "
               f"other {num(lt['cpu'].get('other_pct'))} %.")
    out.append(f"  Error frames in the window: {er['window_by_code'] or 'none'}; disconnects: "
               f"{er['disconnects_by_kind'] or 'none'}; join failures: {er['join_failures_by_kind'] or 'none'}; "
               f"load generator anomalies: {er['client_anomalies'] or 'none'}.")
    out.append("  SLO " + ("PASS" if slo["passed"] else "**FAIL**") + ": "
               + "; ".join(f"{k['name']} {k['status']} ({num(k['value'], '{:.4g}')} vs {k['threshold']:g})"
                           for k in slo["checks"]) + ".")
else:
    out.append(f"- Load tester (exit {E['LOAD_RC']}): **no report** (see loadtest.log).")
if ho:
    out.append(f"- Hostile driver (exit {E['HOSTILE_RC']}): {ho['expected_total']:,} expectations met, "
               f"**{ho['surprises_total']:,} surprises**; cycles {ho['cycles']}.")
    out.append(f"  Met: {ho['expected']}.")
    if ho["surprises"]:
        out.append(f"  Surprises: {ho['surprises']}; first examples: "
                   + "; ".join(f"t={e['t']} s {e['what']}: {e['detail']}" for e in ho["surprise_examples"][:5]) + ".")
    out.append(f"  Timings (s): {ho['timings_secs']}; notes: {ho['notes']}.")
else:
    out.append(f"- Hostile driver (exit {E['HOSTILE_RC']}): **no summary** (see hostile.log).")
out.append("")
out.append("Commands (exactly as run):")
out.append("")
for line in (E["SERVER_LINE"], E["LOAD_LINE"], E["HOSTILE_LINE"]):
    out.append(f"- `{line.replace(root, '')}`")
text = "\n".join(out) + "\n"
with open(os.path.join(res, "report.md"), "w") as f:
    f.write(text)
json.dump({k: E.get(k) for k in ("START_UTC", "END_UTC", "DURATION", "CLIENTS", "GIT_REV", "BINARY_SHA", "LOAD_RC",
                                 "HOSTILE_RC", "SERVER_UP", "SHUTDOWN_RC", "SHUTDOWN_SECS", "RSS_IDLE_KIB",
                                 "MACHINE_IDLE", "SERVER_LINE", "LOAD_LINE", "HOSTILE_LINE")},
          open(os.path.join(res, "meta.json"), "w"), indent=2)
print(text)
PY
log "report: $RESULTS_DIR/report.md"

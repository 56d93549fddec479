#!/usr/bin/env bash
# redirectory vs nginx, same machine, same run. See bench/README.md.
#
#   bash bench/run.sh [--quick] [--nginx-only]
#
# Run from the repository root after `make install`. Environment knobs (defaults in brackets):
#   REDIRECTORY            redirectory CLI [.venv/bin/redirectory]
#   REDIRECTORY_SERVERS    servers to benchmark ["httptools uvicorn granian" when `serve --server` exists]
#   REDIRECTORY_SERVE_ARGS extra arguments for `redirectory serve` []
#   NGINX_SOURCE           export = nginx files from `redirectory rules export --format nginx`,
#                          gen = hand-made equivalent from gen_rules.py [export; gen with --nginx-only]
#   SCENARIOS              [exact-1k exact-100k placeholder-10k]; also exact-1m placeholder-100k
#                          regex-10k regex-100k mixed (100k exact + 10k placeholder + 10k regex)
#                          mixed-1.2m (1M + 100k + 100k): `python3 bench/scale.py --list`
#   FORMATS                rule file formats to time `rules validate` and `rules apply` with, each
#                          applied to a new database (the YAML one is served) [yaml json csv; --quick: yaml]
#   TABLE_TIMEOUT          seconds allowed per validate / apply / export command [1800]
#   DURATION WARMUP        seconds per measured run / warm-up [15 3; --quick: 3 1]
#   CONNECTIONS            wrk connections [32]   (always one wrk thread)
#   COUNT_STATUSES=1       tally every status in the measured run too (costs wrk some CPU)
#   MIN_3XX                share of 3xx answers for a run to be valid [0.99]
#   READY_TIMEOUT          seconds to wait for /healthz [120]
#   QUIET_WAIT             before each target, wait up to this many seconds for the rest of the
#                          machine to use < 0.15 CPU cores (shared machines) [0 = don't wait]
#   PIN=0                  do not pin server/wrk to CPUs 1/0
#   KEEP_WORK=1            keep the temporary directory (rules, DBs, configs, logs)
#   PYTHON                 interpreter for the helper scripts [python3]
#   DATABASE               sqlite, or a postgresql://... URL: redirectory's rule store [sqlite]
#                          (PostgreSQL: a fresh schema per scenario, dropped afterwards)
#   PROPAGATION            1 = also measure change propagation (bench/propagation.py: commit ->
#                          first/last of 3 replicas answering, at PROPAGATION_RULES rules) [1; --quick: 0]
#   PROPAGATION_RULES      [100000]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
BENCH=$ROOT/bench

QUICK=0
NGINX_ONLY=0
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 ;;
    --nginx-only) NGINX_ONLY=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$QUICK" = 1 ]; then
  DURATION=${DURATION:-3}; WARMUP=${WARMUP:-1}
else
  DURATION=${DURATION:-15}; WARMUP=${WARMUP:-3}
fi
CONNECTIONS=${CONNECTIONS:-32}
SCENARIOS=${SCENARIOS:-"exact-1k exact-100k placeholder-10k"}
REDIRECTORY=${REDIRECTORY:-$ROOT/.venv/bin/redirectory}
REDIRECTORY_SERVE_ARGS=${REDIRECTORY_SERVE_ARGS:-}
if [ "$NGINX_ONLY" = 1 ]; then NGINX_SOURCE=${NGINX_SOURCE:-gen}; else NGINX_SOURCE=${NGINX_SOURCE:-export}; fi
MIN_3XX=${MIN_3XX:-0.99}
READY_TIMEOUT=${READY_TIMEOUT:-120}
COUNT_STATUSES=${COUNT_STATUSES:-0}
PYTHON=${PYTHON:-python3}
DATABASE=${DATABASE:-sqlite}
if [ "$QUICK" = 1 ]; then PROPAGATION=${PROPAGATION:-0}; else PROPAGATION=${PROPAGATION:-1}; fi
PROPAGATION_RULES=${PROPAGATION_RULES:-100000}
if [ "$QUICK" = 1 ]; then FORMATS=${FORMATS:-yaml}; else FORMATS=${FORMATS:-"yaml json csv"}; fi
TABLE_TIMEOUT=${TABLE_TIMEOUT:-1800}
for f in $FORMATS; do case $f in yaml|json|csv) ;; *) echo "FORMATS: $f is not yaml, json or csv" >&2; exit 2 ;; esac; done
# yaml first, always: that database is the one served
APPLY_FORMATS=yaml
for f in $FORMATS; do [ "$f" = yaml ] || APPLY_FORMATS="$APPLY_FORMATS $f"; done
# the redirectory installation's own interpreter (has SQLAlchemy and psycopg) for propagation.py
RPYTHON=$(dirname "$REDIRECTORY")/python
case $DATABASE in sqlite|postgresql://*|postgres://*) ;; *) echo "DATABASE must be sqlite or a postgresql:// URL" >&2; exit 2 ;; esac
case $NGINX_SOURCE in export|gen) ;; *) echo "NGINX_SOURCE must be export or gen" >&2; exit 2 ;; esac

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '\n[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    die "missing tools; install them first, e.g.: sudo apt-get install -y ${missing[*]}"
  fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON (set PYTHON=...)"

if [ "$NGINX_ONLY" = 0 ] || [ "$NGINX_SOURCE" = export ]; then
  [ -x "$REDIRECTORY" ] || command -v "$REDIRECTORY" >/dev/null 2>&1 \
    || die "redirectory CLI not found at $REDIRECTORY: run \`make install\` or set REDIRECTORY=..."
fi

# Server on CPU 1, wrk on CPU 0, when there are two CPUs to pin to.
SERVER_PIN=()
LOAD_PIN=()
if [ "${PIN:-1}" = 1 ] && command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ] \
   && taskset -c 0 true 2>/dev/null && taskset -c 1 true 2>/dev/null; then
  SERVER_PIN=(taskset -c 1)
  LOAD_PIN=(taskset -c 0)
  PINNED=true
else
  PINNED=false
  log "not pinning server and wrk to separate CPUs (no taskset, one CPU, or PIN=0)"
fi

# ---------------------------------------------------------------- process bookkeeping
WORK=$(mktemp -d "${TMPDIR:-/tmp}/redirectory-bench.XXXXXX")
SERVER_PIDS=()
PG_SCHEMAS=()
FG_PID=

# The PID and all its descendants.
tree_pids() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      keep[root] = 1; print root; changed = 1
      while (changed) {
        changed = 0
        for (i in pids) { p = pids[i]
          if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; print p; changed = 1 } }
      }
    }'
}

alive() {  # running and not a zombie
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st:0:1}" != Z ]
}

# VmRSS summed over the process tree, in KiB.
rss_kib() {
  local total=0 pid kb
  for pid in $(tree_pids "$1"); do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

# Pss (shared pages split between the processes sharing them) summed over the tree, in KiB:
# summed VmRSS counts what nginx's worker shares with its master (the whole map) twice.
pss_kib() {
  local total=0 pid kb
  for pid in $(tree_pids "$1"); do
    kb=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

# SIGTERM to the server, SIGKILL to whatever of its tree is left after 10 s.
stop_server() {
  local pid=$1 pids i
  pids=$(tree_pids "$pid")
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do alive "$pid" || break; sleep 0.1; done
  fi
  for p in $pids; do
    if alive "$p"; then
      log "pid $p still running, sending SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  # Each server runs in its own session (setsid), so stragglers share its process group.
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  if [ -n "$FG_PID" ]; then kill -TERM "$FG_PID" 2>/dev/null || true; wait "$FG_PID" 2>/dev/null || true; fi
  for pid in "${SERVER_PIDS[@]}"; do stop_server "$pid"; done
  for url in "${PG_SCHEMAS[@]+"${PG_SCHEMAS[@]}"}"; do "$RPYTHON" "$BENCH/propagation.py" --drop-schema "$url" || true; done
  if [ "${KEEP_WORK:-0}" = 1 ]; then
    log "kept work directory $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_waiting OUTFILE CMD... : run CMD with output to OUTFILE and wait for it, in a way that
# lets a signal to this script stop it at once (a foreground child would delay the traps).
run_waiting() {
  local outf=$1 rc=0; shift
  "$@" >"$outf" 2>&1 </dev/null &
  FG_PID=$!
  wait "$FG_PID" || rc=$?
  FG_PID=
  return "$rc"
}

# start_server LOGFILE CMD... : runs CMD pinned, in its own session; sets STARTED_PID.
start_server() {
  local logf=$1; shift
  setsid "${SERVER_PIN[@]}" "$@" >"$logf" 2>&1 </dev/null &
  STARTED_PID=$!
  SERVER_PIDS+=("$STARTED_PID")
}

forget_server() {
  local keep=() p
  for p in "${SERVER_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  SERVER_PIDS=("${keep[@]+"${keep[@]}"}")
}

# CPU accounting for one measured run, to tell a server-bound run from a load-generator-bound
# one and to flag a machine that was busy with something else.
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
tree_cpu_ticks() {
  local total=0 pid t
  for pid in $(tree_pids "$1"); do
    t=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }' || true)
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
# CHILD_CPU = user+sys seconds of all waited-for children of this shell (`times` has to run in
# this shell, not in a $(...) subshell).
children_cpu_s() {
  times >"$WORK/.times"
  CHILD_CPU=$(awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
                             printf "%.3f", n }' "$WORK/.times")
}

# Wait (at most QUIET_WAIT s) until processes other than ours use < 0.15 cores.
wait_quiet() {
  [ "${QUIET_WAIT:-0}" -gt 0 ] || return 0
  local start b0 b1 used
  start=$(date +%s)
  while :; do
    b0=$(cpu_busy_ticks); sleep 1; b1=$(cpu_busy_ticks)
    used=$(awk -v d="$((b1 - b0))" -v hz="$HZ" 'BEGIN { printf "%.2f", d / hz }')
    awk -v u="$used" 'BEGIN { exit !(u < 0.15) }' && return 0
    if [ $(( $(date +%s) - start )) -ge "$QUIET_WAIT" ]; then
      log "machine still busy ($used cores in use by others) after ${QUIET_WAIT}s; going on"
      return 0
    fi
  done
}

# measured OUT.json CMD... : run CMD through `scale.py measure` (wall time, CPU, peak RSS; its
# output in OUT.log), stoppable like run_waiting. Fails when CMD fails.
measured() {
  local outj=$1; shift
  run_waiting "${outj%.json}.measure.log" "$PYTHON" "$BENCH/scale.py" measure --json "$outj" \
    --log "${outj%.json}.log" --timeout "$TABLE_TIMEOUT" -- "$@"
}
# field FILE.json KEY: one field of a JSON object
field() { "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2"; }

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL PID LOGFILE TIMEOUT OUTFILE: until URL answers 200 (body to OUTFILE).
wait_http() {
  local url=$1 pid=$2 logf=$3 timeout=$4 out=$5 start code
  start=$(date +%s)
  while :; do
    if ! alive "$pid"; then
      tail -n 30 "$logf" >&2 || true
      return 1
    fi
    code=$(curl -s -o "$out" -w '%{http_code}' --max-time 2 "$url" 2>/dev/null || true)
    if [ "$code" = 200 ]; then
      # Ready = 200, and `"ready": true` when the body has a `ready` field at all.
      "$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1]))
sys.exit(0 if not isinstance(d, dict) or d.get("ready", True) is True else 1)' "$out" 2>/dev/null \
        && return 0
      if [ $(( $(date +%s) - start )) -ge "$timeout" ]; then
        log "WARNING: $url still says $(cat "$out") after ${timeout}s; going on"
        return 0
      fi
    elif [ $(( $(date +%s) - start )) -ge "$timeout" ]; then
      log "no 200 from $url after ${timeout}s (last: ${code:-none})"
      tail -n 30 "$logf" >&2 || true
      return 1
    fi
    sleep 0.25
  done
}

# precheck BASE_URL EXPECT_TSV: the first 20 sample paths must redirect as expected.
# Prints "ok" or the first problem.
precheck() {
  local base=$1 path status loc got code url n=0
  while IFS=$'\t' read -r path status loc; do
    got=$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{redirect_url}' "$base$path" || true)
    code=${got%% *}
    url=${got#* }
    if [ -n "$url" ]; then url=/${url#*://*/}; else url="(no Location)"; fi
    if [ "$code" != "$status" ] || [ "$url" != "$loc" ]; then
      echo "GET $path -> $code ${url}, expected $status $loc"
      return 0
    fi
    n=$((n + 1))
    [ "$n" -ge 20 ] && break
  done <"$2"
  echo ok
}

# bench_target SCENARIO RULES TARGET PID PORT LOGFILE SAMPLE_DIR [extra key=value...]
bench_target() {
  local sc=$1 nrules=$2 target=$3 pid=$4 port=$5 logf=$6 sd=$7; shift 7
  local base="http://127.0.0.1:$port" out="$WORK/$sc/$target" pc count_arg=() rss extra=() kv
  for kv in "$@"; do extra+=(--extra "$kv"); done
  mkdir -p "$out"
  pc=$(precheck "$base" "$sd/expect.tsv")
  if [ "$pc" != ok ]; then
    log "$target: pre-check failed: $pc (skipping the load run)"
  else
    wait_quiet
    log "$target: warm-up ${WARMUP}s"
    run_waiting "$out/warmup.txt" timeout $((WARMUP + 30)) "${LOAD_PIN[@]}" \
      wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -s "$BENCH/paths.lua" "$base" -- "$sd/paths.txt" count \
      || true
    sed -n 's/^BENCH_JSON //p' "$out/warmup.txt" | tail -n 1 >"$out/warmup.json"
    [ "$COUNT_STATUSES" = 1 ] && count_arg=(count)
    log "$target: measuring ${DURATION}s (wrk -t1 -c$CONNECTIONS)"
    local b0 s0 c0 t0 b1 s1 c1 t1 cpu
    b0=$(cpu_busy_ticks); s0=$(tree_cpu_ticks "$pid"); children_cpu_s; c0=$CHILD_CPU; t0=$(date +%s.%N)
    run_waiting "$out/wrk.txt" timeout $((DURATION + 30)) "${LOAD_PIN[@]}" \
      wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$BENCH/paths.lua" "$base" \
      -- "$sd/paths.txt" "${count_arg[@]}" || true
    b1=$(cpu_busy_ticks); s1=$(tree_cpu_ticks "$pid"); children_cpu_s; c1=$CHILD_CPU; t1=$(date +%s.%N)
    # In CPU cores over the run: the server's tree, wrk, everything else on the machine.
    cpu=$(awk -v hz="$HZ" -v b="$((b1 - b0))" -v s="$((s1 - s0))" -v c0="$c0" -v c1="$c1" \
      -v t0="$t0" -v t1="$t1" 'BEGIN { w = t1 - t0; if (w <= 0) w = 1
        srv = s / hz / w; lg = (c1 - c0) / w; oth = b / hz / w - srv - lg; if (oth < 0) oth = 0
        printf "%.2f %.2f %.2f", srv, lg, oth }')
    read -r cpu_server cpu_wrk cpu_other <<<"$cpu"
    extra+=(--extra "cpu_server_cores=$cpu_server" --extra "cpu_wrk_cores=$cpu_wrk" \
            --extra "cpu_other_cores=$cpu_other" \
            --extra "server_cpu_s=$(awk -v s="$((s1 - s0))" -v hz="$HZ" 'BEGIN { printf "%.3f", s / hz }')")
    log "$target: CPU cores used: server $cpu_server, wrk $cpu_wrk, other processes $cpu_other"
    if awk -v o="$cpu_other" 'BEGIN { exit !(o > 0.15) }'; then
      log "WARNING: other processes used $cpu_other cores during this run: the machine was busy, numbers are noisy"
    fi
    sed -n 's/^BENCH_JSON //p' "$out/wrk.txt" | tail -n 1 >"$out/measured.json"
    [ -s "$out/measured.json" ] || { log "$target: wrk gave no result:"; cat "$out/wrk.txt" >&2; }
    grep -E 'Requests/sec|Latency|Non-2xx|Socket errors' "$out/wrk.txt" | sed 's/^/    /' >&2 || true
  fi
  rss=$(rss_kib "$pid")
  extra+=(--extra "pss_kib=$(pss_kib "$pid")" --extra "processes=$(tree_pids "$pid" | wc -l)")
  if ! alive "$pid"; then
    pc="server exited during the run"
    tail -n 20 "$logf" >&2 || true
  fi
  "$PYTHON" "$BENCH/report.py" add --results "$WORK/results.jsonl" --scenario "$sc" \
    --rules "$nrules" --target "$target" --warmup "$out/warmup.json" \
    --measured "$out/measured.json" --rss-kib "$rss" --precheck "$pc" "${extra[@]}"
}

# ---------------------------------------------------------------- what redirectory offers
SERVERS=()
if [ "$NGINX_ONLY" = 0 ]; then
  if [ -n "${REDIRECTORY_SERVERS:-}" ]; then
    read -r -a SERVERS <<<"$REDIRECTORY_SERVERS"
  elif serve_help=$(COLUMNS=200 "$REDIRECTORY" serve --help 2>&1) && grep -q -- "--server" <<<"$serve_help"; then
    SERVERS=(httptools uvicorn granian)
  else
    SERVERS=(default)
  fi
fi

# ---------------------------------------------------------------- meta
TS=$(date -u +%Y%m%dT%H%M%SZ)
"$PYTHON" - "$WORK/meta.json" <<EOF
import json, os, platform, subprocess, sys
def sh(*cmd, need_ok=False):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except Exception:
        return None
    text = (r.stdout + r.stderr).strip()
    if not text or (need_ok and r.returncode != 0):
        return None
    return text.splitlines()[0]
cpu = None
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except Exception:
    pass
meta = {
    "timestamp": "$TS",
    "git_commit": sh("git", "-C", "$ROOT", "rev-parse", "HEAD"),
    "git_dirty": bool(sh("git", "-C", "$ROOT", "status", "--porcelain", "--untracked-files=no")),
    "kernel": platform.release(), "cpus": os.cpu_count(), "cpu_model": cpu,
    "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
    "nginx": sh("$NGINX", "-v"), "wrk": sh("wrk", "--version"),
    "redirectory": "$REDIRECTORY" if $NGINX_ONLY == 0 else None,
    "redirectory_version": sh("$REDIRECTORY", "--version", need_ok=True) if $NGINX_ONLY == 0 else None,
    "redirectory_servers": "${SERVERS[*]}".split(),
    "redirectory_serve_args": "$REDIRECTORY_SERVE_ARGS",
    "nginx_source": "$NGINX_SOURCE", "scenarios": "$SCENARIOS".split(),
    "duration_s": $DURATION, "warmup_s": $WARMUP, "wrk_threads": 1, "connections": $CONNECTIONS,
    "pinned": $( [ "$PINNED" = true ] && echo True || echo False ),
    "quick": $( [ "$QUICK" = 1 ] && echo True || echo False ),
    "count_statuses_in_measured_run": $( [ "$COUNT_STATUSES" = 1 ] && echo True || echo False ),
}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
EOF

log "work dir $WORK; nginx source: $NGINX_SOURCE; redirectory servers: ${SERVERS[*]:-none}"
log "per target: ${WARMUP}s warm-up + ${DURATION}s measured, wrk -t1 -c$CONNECTIONS, pinned=$PINNED"

# ---------------------------------------------------------------- scenarios
for sc in $SCENARIOS; do
  "$PYTHON" "$BENCH/scale.py" describe "$sc" >/dev/null || die "unknown scenario $sc"
done
for sc in $SCENARIOS; do
  read -r kind count < <("$PYTHON" "$BENCH/scale.py" describe "$sc")
  sd=$WORK/$sc
  mkdir -p "$sd"
  log "=== $sc: generating $count $kind rules ($FORMATS)"
  gen_args=(--kind "$kind" --count "$count" --out "$sd" --formats "$(tr ' ' ',' <<<"$APPLY_FORMATS")")
  [ "$NGINX_SOURCE" = gen ] && gen_args+=(--nginx-dir "$sd/nginx-gen")
  "$PYTHON" "$BENCH/gen_rules.py" "${gen_args[@]}"

  if [ "$DATABASE" = sqlite ]; then
    db="sqlite:///$sd/rules.db"
  else
    db=$("$RPYTHON" "$BENCH/propagation.py" --create-schema "$DATABASE") || die "cannot create a schema in $DATABASE"
    PG_SCHEMAS+=("$db")
  fi
  if [ "$NGINX_ONLY" = 0 ] || [ "$NGINX_SOURCE" = export ]; then
    # The table's size: validate, then apply to a new database, per format (the YAML one is served).
    table_args=()
    for f in $FORMATS; do
      log "$sc: redirectory rules validate rules.$f"
      measured "$sd/validate-$f.json" "$REDIRECTORY" rules validate "$sd/rules.$f" \
        || { tail -n 30 "$sd/validate-$f.log" >&2; die "\`redirectory rules validate\` failed for $sc ($f, log above)"; }
      log "$sc: validated rules.$f in $(field "$sd/validate-$f.json" wall_s)s, peak RSS $(( $(field "$sd/validate-$f.json" peak_rss_kib) / 1024 )) MiB"
      table_args+=(--step "validate_$f=$sd/validate-$f.json")
    done
    for f in $APPLY_FORMATS; do
      if [ "$f" = yaml ]; then fdb=$db; else fdb="sqlite:///$sd/rules-$f.db"; fi
      log "$sc: redirectory rules apply rules.$f ($count rules, ${fdb%%:*})"
      measured "$sd/apply-$f.json" "$REDIRECTORY" rules apply "$sd/rules.$f" --database "$fdb" \
        || { tail -n 30 "$sd/apply-$f.log" >&2; die "\`redirectory rules apply\` failed for $sc ($f, log above)"; }
      log "$sc: applied rules.$f in $(field "$sd/apply-$f.json" wall_s)s, peak RSS $(( $(field "$sd/apply-$f.json" peak_rss_kib) / 1024 )) MiB"
      table_args+=(--step "apply_$f=$sd/apply-$f.json")
      [ "$fdb" = "$db" ] || rm -f "$sd/rules-$f.db" "$sd/rules-$f.db-wal" "$sd/rules-$f.db-shm"
    done
    apply_s=$(field "$sd/apply-yaml.json" wall_s)
  else
    apply_s=null
    table_args=()
  fi

  if [ "$NGINX_SOURCE" = export ]; then
    ndir=$sd/nginx-export
    measured "$sd/export.json" \
      "$REDIRECTORY" rules export --format nginx --database "$db" --output "$ndir" \
      || { tail -n 30 "$sd/export.log" >&2
           die "\`redirectory rules export --format nginx\` failed for $sc (log above); NGINX_SOURCE=gen uses the hand-made nginx files instead"; }
    for f in redirectory-map.conf redirectory-return.conf; do
      [ -s "$ndir/$f" ] || die "\`redirectory rules export --format nginx\` did not write $ndir/$f"
    done
    table_args+=(--step "export_nginx=$sd/export.json")
  else
    ndir=$sd/nginx-gen
  fi

  # nginx
  nport=$(free_port)
  nrun=$sd/nginx-run
  mkdir -p "$nrun"
  sed -e "s#@RUNDIR@#$nrun#g" -e "s#@PORT@#$nport#g" \
      -e "s#@MAP_CONF@#$ndir/redirectory-map.conf#g" \
      -e "s#@RETURN_CONF@#$ndir/redirectory-return.conf#g" \
      "$BENCH/nginx.conf.template" >"$nrun/nginx.conf"
  if ! "$NGINX" -t -q -e "$nrun/error.log" -p "$nrun" -c "$nrun/nginx.conf" >"$nrun/test.log" 2>&1; then
    cat "$nrun/test.log" >&2
    if [ "$NGINX_SOURCE" = export ]; then
      die "nginx -t REJECTED the files written by \`redirectory rules export --format nginx\` ($ndir) for $sc; see the messages above. Stopping."
    fi
    die "nginx -t rejected the generated nginx files ($ndir) for $sc; see above"
  fi
  log "$sc: starting nginx on 127.0.0.1:$nport"
  t0=$(date +%s.%N)
  start_server "$nrun/stdout.log" "$NGINX" -e "$nrun/error.log" -p "$nrun" -c "$nrun/nginx.conf"
  npid=$STARTED_PID
  probe=$(head -n 1 "$sd/paths.txt")
  code=000
  while :; do  # until nginx answers at all (a big map takes nginx seconds to load)
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$nport$probe" || true)
    [ "$code" != 000 ] && break
    alive "$npid" || break
    awk -v a="$t0" -v b="$(date +%s.%N)" -v t="$READY_TIMEOUT" 'BEGIN { exit !(b - a > t) }' && break
    sleep 0.1
  done
  alive "$npid" || { cat "$nrun/error.log" "$nrun/stdout.log" >&2 || true; die "nginx did not start for $sc"; }
  [ "$code" != 000 ] || die "nginx did not answer on 127.0.0.1:$nport within ${READY_TIMEOUT}s for $sc"
  start_s=$(elapsed "$t0")
  nrss=$(rss_kib "$npid")
  log "$sc: nginx answers after ${start_s}s, RSS $((nrss / 1024)) MiB, PSS $(( $(pss_kib "$npid") / 1024 )) MiB"
  "$PYTHON" "$BENCH/report.py" add-table --results "$WORK/results.jsonl" --scenario "$sc" \
    --rules "$count" --kind "$kind" "${table_args[@]}"
  bench_target "$sc" "$count" nginx "$npid" "$nport" "$nrun/error.log" "$sd" \
    "nginx_source=$NGINX_SOURCE" "startup_s=$start_s" "rss_ready_kib=$nrss" "pss_ready_kib=$(pss_kib "$npid")"
  stop_server "$npid"; forget_server "$npid"

  # redirectory, once per server
  for srv in "${SERVERS[@]}"; do
    target=redirectory
    srv_args=()
    if [ "$srv" != default ]; then target=redirectory-$srv; srv_args=(--server "$srv"); fi
    [ "$DATABASE" = sqlite ] || target=$target-pg
    port=$(free_port); aport=$(free_port)
    while [ "$aport" = "$port" ]; do aport=$(free_port); done
    rlog=$sd/$target.log
    log "$sc: starting $target on 127.0.0.1:$port (admin $aport)"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    start_server "$rlog" "$REDIRECTORY" serve --database "$db" --host 127.0.0.1 --port "$port" \
      --admin-port "$aport" --workers 1 "${srv_args[@]}" $REDIRECTORY_SERVE_ARGS
    rpid=$STARTED_PID
    if ! wait_http "http://127.0.0.1:$aport/healthz" "$rpid" "$rlog" "$READY_TIMEOUT" "$sd/$target.healthz.json"; then
      log "$sc: $target did not become ready (log above); recording it as failed"
      "$PYTHON" "$BENCH/report.py" add --results "$WORK/results.jsonl" --scenario "$sc" \
        --rules "$count" --target "$target" --precheck "server did not become ready"
      stop_server "$rpid"; forget_server "$rpid"
      continue
    fi
    start_s=$(elapsed "$t0")
    health=$(cat "$sd/$target.healthz.json")
    log "$sc: $target ready in ${start_s}s: $health"
    loaded=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("rules", "?"))' \
      "$sd/$target.healthz.json" 2>/dev/null || echo "?")
    [ "$loaded" = "$count" ] || log "WARNING: $target /healthz reports rules=$loaded, expected $count"
    bench_target "$sc" "$count" "$target" "$rpid" "$port" "$rlog" "$sd" \
      "server=$srv" "startup_s=$start_s" "apply_s=$apply_s" "healthz_rules=$loaded" "database=${DATABASE%%:*}" \
      "rss_ready_kib=$(rss_kib "$rpid")" "pss_ready_kib=$(pss_kib "$rpid")"
    stop_server "$rpid"; forget_server "$rpid"
  done
done

# ---------------------------------------------------------------- change propagation
mkdir -p "$BENCH/results"
if [ "$PROPAGATION" = 1 ] && [ "$NGINX_ONLY" = 0 ]; then
  if [ "$DATABASE" = sqlite ]; then pdb="sqlite:///$WORK/propagation.db"; else pdb=$DATABASE; fi
  log "propagation: $PROPAGATION_RULES rules, 3 replicas, ${DATABASE%%:*}"
  run_waiting "$WORK/propagation.log" "$RPYTHON" "$BENCH/propagation.py" --database "$pdb" \
    --rules "$PROPAGATION_RULES" --json "$BENCH/results/$TS-propagation.json" \
    && log "propagation: $(tail -n 1 "$WORK/propagation.log")" \
    || { tail -n 20 "$WORK/propagation.log" >&2; log "propagation measurement failed (log above)"; }
fi

# ---------------------------------------------------------------- summary
out=$BENCH/results/$TS.json
set +e
"$PYTHON" "$BENCH/report.py" summary --results "$WORK/results.jsonl" --meta "$WORK/meta.json" \
  --out "$out" --min-3xx "$MIN_3XX"
rc=$?
set -e
[ "$rc" = 0 ] || log "some runs were invalid (see INVALID lines above)"
exit "$rc"

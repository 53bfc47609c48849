#!/usr/bin/env bash
# Measure etcd's put throughput on this machine, as a reference point for
# skiff's store benchmark.
#
#   hack/etcd-bench.sh
#
# What it does:
#   1. installs Debian's etcd-server/etcd-client if etcd/etcdctl are missing
#      (and python3-grpcio for the put benchmark);
#   2. starts a single-member etcd on loopback only, with a throwaway data dir
#      and non-default ports (client 127.0.0.1:23790, peer 127.0.0.1:23800);
#   3. runs `etcdctl check perf --load=s` (always 60 s; note that each load is
#      rate-limited -- `s` targets 150 writes/s -- so it is a pass/fail check,
#      not a maximum-throughput measurement);
#   4. runs a put throughput benchmark: CLIENTS concurrent in-flight Put RPCs
#      (default 64) spread over CONNS gRPC connections, VALUE_SIZE-byte values
#      (default 1024), for DURATION seconds after a short warm-up. It is a small
#      Python asyncio gRPC client that hand-encodes etcdserverpb.PutRequest, so
#      it needs only grpcio (Debian's python3-grpcio, else grpcio from PyPI);
#   5. prints key=value results on stdout, the last line being
#        etcd_puts_per_sec=<number>
#      (from step 4, or from check perf if the Python benchmark could not run);
#   6. stops etcd and removes the data dir (trap), also on failure/interrupt.
#
# Note: the benchmark client shares the machine's cores with etcd, so the
# number is "etcd + a client on the same box", which is also how skiff's own
# store benchmark runs.
#
# Tunables (environment variables):
#   CLIENT_PORT=23790 PEER_PORT=23800
#   CLIENTS=64 CONNS=8 VALUE_SIZE=1024 DURATION=15 WARMUP=2 KEY_SPACE=100000
#   CHECK_PERF_LOAD=s   (s|m|l|xl, or "none" to skip the 60 s check)
set -euo pipefail

CLIENT_PORT=${CLIENT_PORT:-23790}
PEER_PORT=${PEER_PORT:-23800}
CLIENTS=${CLIENTS:-64}
CONNS=${CONNS:-8}
VALUE_SIZE=${VALUE_SIZE:-1024}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-2}
KEY_SPACE=${KEY_SPACE:-100000}
CHECK_PERF_LOAD=${CHECK_PERF_LOAD:-s}

ENDPOINT=http://127.0.0.1:$CLIENT_PORT
PEER_URL=http://127.0.0.1:$PEER_PORT
NAME=skiff-bench

log() { echo "etcd-bench.sh: $*" >&2; }
die() { echo "etcd-bench.sh: error: $*" >&2; exit 1; }

for v in CLIENT_PORT PEER_PORT CLIENTS CONNS VALUE_SIZE DURATION WARMUP KEY_SPACE; do
  [[ ${!v} =~ ^[0-9]+$ ]] && (( ${!v} > 0 )) || die "$v must be a positive integer (got '${!v}')"
done
case $CHECK_PERF_LOAD in s|m|l|xl|none) ;; *) die "CHECK_PERF_LOAD must be s, m, l, xl or none" ;; esac

# Everything talks to 127.0.0.1 only; make sure no proxy gets in the way.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY grpc_proxy
export ETCDCTL_API=3
# Keep etcdctl from picking up a user's endpoint/TLS settings.
unset ETCDCTL_ENDPOINTS ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY ETCDCTL_USER

# ---------------------------------------------------------------- installing
APT_UPDATED=0
apt_install() {
  [[ $EUID -eq 0 ]] || { log "not root: cannot apt-get install $*"; return 1; }
  command -v apt-get >/dev/null 2>&1 || { log "no apt-get: cannot install $*"; return 1; }
  if [[ $APT_UPDATED -eq 0 ]]; then
    timeout 300 apt-get update -qq >&2 || { log "apt-get update failed"; return 1; }
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive timeout 600 \
    apt-get install -y -qq --no-install-recommends "$@" >&2
}

if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
  # On a host with systemd the package also starts a system etcd on the
  # default ports; ours uses other ports so the two do not collide.
  apt_install etcd-server etcd-client || die "could not install etcd-server/etcd-client"
fi
ETCD_VERSION=$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: *//p')

# Temp dir + cleanup. Created before anything is started so the trap covers it.
WORK=$(mktemp -d /tmp/skiff-etcd-bench.XXXXXX)
ETCD_PID=
STEP_PID=
cleanup() {
  local rc=$?
  if [[ -n $STEP_PID ]] && kill -0 "$STEP_PID" 2>/dev/null; then
    kill -TERM "$STEP_PID" 2>/dev/null || true
    wait "$STEP_PID" 2>/dev/null || true
  fi
  if [[ -n $ETCD_PID ]] && kill -0 "$ETCD_PID" 2>/dev/null; then
    log "stopping etcd (pid $ETCD_PID)"
    kill -TERM "$ETCD_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$ETCD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$ETCD_PID" 2>/dev/null || true
    wait "$ETCD_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Run a long step in the background and wait for it, so that a signal to this
# script is acted on at once (bash defers traps while a foreground child runs).
# Returns the step's exit status.
run_step() {
  "$@" &
  STEP_PID=$!
  local rc=0
  wait "$STEP_PID" || rc=$?
  STEP_PID=
  return "$rc"
}

# A Python with grpcio for the put benchmark: Debian's python3 + python3-grpcio,
# else a throwaway venv with grpcio from PyPI. Empty if neither works.
find_python() {
  if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import grpc' 2>/dev/null; then
    echo /usr/bin/python3; return 0
  fi
  if [[ -x /usr/bin/python3 ]] && apt_install python3-grpcio &&
     /usr/bin/python3 -c 'import grpc' 2>/dev/null; then
    echo /usr/bin/python3; return 0
  fi
  local py
  py=$(command -v python3 || true)
  if [[ -n $py ]] && "$py" -m venv "$WORK/venv" >&2 &&
     timeout 300 "$WORK/venv/bin/pip" install -q --disable-pip-version-check grpcio >&2 &&
     "$WORK/venv/bin/python" -c 'import grpc' 2>/dev/null; then
    echo "$WORK/venv/bin/python"; return 0
  fi
  return 1
}
PYTHON=$(find_python) || { PYTHON=; log "no Python with grpcio: put benchmark skipped, using check perf only"; }

# ---------------------------------------------------------------- etcd
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use "$CLIENT_PORT" && die "127.0.0.1:$CLIENT_PORT is already in use"
port_in_use "$PEER_PORT" && die "127.0.0.1:$PEER_PORT is already in use"

# Upper bound on etcd's lifetime even if this script is killed with SIGKILL.
CHECK_SECS=0; [[ $CHECK_PERF_LOAD != none ]] && CHECK_SECS=90
ETCD_MAX_SECS=$(( 60 + CHECK_SECS + WARMUP + DURATION + 120 ))

log "starting etcd $ETCD_VERSION on $ENDPOINT (peer $PEER_URL), data dir $WORK/data"
timeout -k 5 "$ETCD_MAX_SECS" etcd \
  --name "$NAME" \
  --data-dir "$WORK/data" \
  --listen-client-urls "$ENDPOINT" \
  --advertise-client-urls "$ENDPOINT" \
  --listen-peer-urls "$PEER_URL" \
  --initial-advertise-peer-urls "$PEER_URL" \
  --initial-cluster "$NAME=$PEER_URL" \
  --initial-cluster-state new \
  --initial-cluster-token "$NAME-$$" \
  --logger zap --log-outputs stderr --log-level warn \
  >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!

etcdctl_() { etcdctl --endpoints="$ENDPOINT" "$@"; }

healthy=0
for _ in $(seq 1 60); do
  if ! kill -0 "$ETCD_PID" 2>/dev/null; then
    tail -n 20 "$WORK/etcd.log" >&2 || true
    die "etcd exited during startup"
  fi
  if etcdctl_ --dial-timeout=1s --command-timeout=2s endpoint health >/dev/null 2>&1; then
    healthy=1; break
  fi
  sleep 0.5
done
if [[ $healthy -ne 1 ]]; then
  tail -n 20 "$WORK/etcd.log" >&2 || true
  die "etcd not healthy after 30 s"
fi
log "etcd is healthy"

echo "etcd_version=$ETCD_VERSION"

# ---------------------------------------------------------------- check perf
CHECK_WPS=
if [[ $CHECK_PERF_LOAD != none ]]; then
  log "running 'etcdctl check perf --load=$CHECK_PERF_LOAD' (60 s)"
  check_rc=0
  run_step timeout -k 5 "$CHECK_SECS" etcdctl --endpoints="$ENDPOINT" check perf --load="$CHECK_PERF_LOAD" \
    >"$WORK/checkperf.out" 2>&1 || check_rc=$?
  # Drop the progress bar (redrawn with \r), keep the verdict lines.
  tr '\r' '\n' <"$WORK/checkperf.out" | grep -E '^(PASS|FAIL)|[Tt]hroughput|[Ss]lowest|[Ss]tddev' \
    | sed 's/^/  check perf: /' >&2 || true
  CHECK_WPS=$(tr '\r' '\n' <"$WORK/checkperf.out" | sed -n 's/.*[Tt]hroughput[^0-9]*\([0-9][0-9]*\) writes\/s.*/\1/p' | tail -n1)
  verdict=$(tr '\r' '\n' <"$WORK/checkperf.out" | grep -E '^(PASS|FAIL)$' | tail -n1 || true)
  [[ $check_rc -eq 124 ]] && verdict=TIMEOUT
  echo "etcd_check_perf_load=$CHECK_PERF_LOAD"
  echo "etcd_check_perf_result=${verdict:-ERROR(rc=$check_rc)}"
  echo "etcd_check_perf_writes_per_sec=${CHECK_WPS:-unknown}"
fi

# ---------------------------------------------------------------- put benchmark
BENCH_PPS=
if [[ -n $PYTHON ]]; then
  cat >"$WORK/put_bench.py" <<'PY'
"""Concurrent etcd v3 Put throughput over gRPC, with no protobuf dependency."""
import argparse, asyncio, os, sys, time
import grpc

ap = argparse.ArgumentParser()
ap.add_argument("--target", required=True)          # host:port
ap.add_argument("--clients", type=int, required=True)
ap.add_argument("--conns", type=int, required=True)
ap.add_argument("--value-size", type=int, required=True)
ap.add_argument("--duration", type=float, required=True)
ap.add_argument("--warmup", type=float, required=True)
ap.add_argument("--key-space", type=int, required=True)
a = ap.parse_args()

def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def put_request(key, value):
    # etcdserverpb.PutRequest { bytes key = 1; bytes value = 2; ... }
    return b"\x0a" + varint(len(key)) + key + b"\x12" + varint(len(value)) + value

async def main():
    value = os.urandom(a.value_size)
    opts = lambda i: [("grpc.enable_http_proxy", 0),
                      ("grpc.use_local_subchannel_pool", 1),  # really separate conns
                      ("skiff.bench.conn", i)]
    chans = [grpc.aio.insecure_channel(a.target, options=opts(i)) for i in range(a.conns)]
    # No (de)serializers: requests are pre-encoded bytes, responses are ignored.
    puts = [c.unary_unary("/etcdserverpb.KV/Put") for c in chans]
    for c in chans:
        await asyncio.wait_for(c.channel_ready(), 10)

    st = {"measuring": False, "stop": False, "n": 0, "errors": 0, "lat": []}
    seq = [0]

    async def worker(i):
        put = puts[i % len(puts)]
        while not st["stop"]:
            k = seq[0] % a.key_space
            seq[0] += 1
            req = put_request(b"skiff-bench/%08d" % k, value)
            t0 = time.perf_counter()
            try:
                await put(req, timeout=10)
            except grpc.RpcError as e:
                st["errors"] += 1
                if st["errors"] == 1:
                    print(f"put error: {e.code()} {e.details()}", file=sys.stderr)
                if st["errors"] > 100:
                    st["stop"] = True
                continue
            if st["measuring"]:
                st["n"] += 1
                st["lat"].append(time.perf_counter() - t0)

    tasks = [asyncio.create_task(worker(i)) for i in range(a.clients)]
    await asyncio.sleep(a.warmup)
    st["measuring"] = True
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.sleep(a.duration)
    st["measuring"] = False
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = st["n"]
    st["stop"] = True
    await asyncio.gather(*tasks)
    for c in chans:
        await c.close()
    if st["errors"] or not n:
        print(f"put benchmark failed: {st['errors']} errors, {n} puts", file=sys.stderr)
        sys.exit(1)
    lat = sorted(st["lat"])
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print(f"puts={n} seconds={elapsed:.2f} puts_per_sec={n / elapsed:.0f} "
          f"p50_ms={q(0.50):.2f} p99_ms={q(0.99):.2f} max_ms={lat[-1] * 1000:.2f} "
          f"client_cpu_pct={cpu / elapsed * 100:.0f}")

asyncio.run(main())
PY
  log "put benchmark: $CLIENTS clients over $CONNS connections, ${VALUE_SIZE}-byte values, ${DURATION}s (+${WARMUP}s warm-up)"
  bench_rc=0
  run_step timeout -k 5 $(( WARMUP + DURATION + 60 )) "$PYTHON" "$WORK/put_bench.py" \
    --target "127.0.0.1:$CLIENT_PORT" --clients "$CLIENTS" --conns "$CONNS" \
    --value-size "$VALUE_SIZE" --duration "$DURATION" --warmup "$WARMUP" \
    --key-space "$KEY_SPACE" >"$WORK/bench.out" || bench_rc=$?
  if [[ $bench_rc -eq 0 ]] && BENCH_PPS=$(sed -n 's/.*puts_per_sec=\([0-9]*\).*/\1/p' "$WORK/bench.out") \
     && [[ -n $BENCH_PPS ]]; then
    echo "etcd_put_bench: clients=$CLIENTS conns=$CONNS value_bytes=$VALUE_SIZE $(cat "$WORK/bench.out")"
  else
    BENCH_PPS=
    log "put benchmark failed (rc=$bench_rc); falling back to check perf's number"
  fi
fi

# ---------------------------------------------------------------- summary
if [[ -n $BENCH_PPS ]]; then
  echo "etcd_puts_per_sec=$BENCH_PPS"
elif [[ -n $CHECK_WPS ]]; then
  echo "etcd_puts_per_sec=$CHECK_WPS"
else
  die "no throughput measurement succeeded"
fi

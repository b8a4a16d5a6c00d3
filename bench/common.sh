# Shared by the bench scripts: build, a scratch database, node start-up, cleanup.
#
#   BENCH_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres  benchmark on a
#                      fresh PostgreSQL database created (and dropped) through that URL;
#                      unset: a fresh SQLite file.
#   NODES=N            start N `calyx serve` processes on the database (default 1).

bin=$PWD/target/release/calyx
work=$(mktemp -d)
pids=()
bench_db=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$bench_db" ]; then
    psql "$BENCH_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $bench_db" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  bench_db="calyx_bench_$$"
  psql "$BENCH_DATABASE_URL" -qc "CREATE DATABASE $bench_db"
  export CALYX_DATABASE_URL="${BENCH_DATABASE_URL%/*}/$bench_db"
  backend=postgres
else
  export CALYX_DATABASE_URL="sqlite://$work/calyx.db"
  backend=sqlite
fi
nodes=${NODES:-1}

# field NAME: the value of a string member of the JSON object on stdin.
field() { sed -E "s/.*\"$1\":\"([^\"]+)\".*/\1/"; }

# start_nodes ARGS...: starts $nodes servers with ARGS; sets addrs=(host:port ...).
addrs=()
start_nodes() {
  for i in $(seq "$nodes"); do
    RUST_LOG=warn "$bin" serve --listen 127.0.0.1:0 "$@" >"$work/out$i" 2>"$work/err$i" &
    pids+=($!)
    until grep -q '^listening on' "$work/out$i" 2>/dev/null; do
      kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/err$i" >&2; exit 1; }
      sleep 0.01
    done
    addrs+=("$(sed -n 's/^listening on //p' "$work/out$i")")
  done
}

# cpu_ticks PID: the CPU time (user + system) the process has used so far, in clock ticks
# (`getconf CLK_TCK` per second): fields 14 and 15 of /proc/PID/stat, counted after the
# parenthesised command name.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
clk_tck=$(getconf CLK_TCK)

# cpu_us_per_request TICKS REQUESTS_PER_S: the microseconds of CPU each request cost, from the
# ticks a server used during a run of $duration seconds at that rate.
cpu_us_per_request() {
  awk -v t="$1" -v r="$2" -v d="${duration:-1}" -v hz="$clk_tck" 'BEGIN { printf "%.1f", t / hz * 1e6 / (r * d) }'
}

# peak_rss_mb: the largest peak resident set of the started servers, in MB.
peak_rss_mb() {
  local max=0 kb
  for p in "${pids[@]}"; do
    kb=$(awk '/VmHWM/ {print $2}' "/proc/$p/status")
    [ "$kb" -gt "$max" ] && max=$kb
  done
  echo $((max / 1024))
}

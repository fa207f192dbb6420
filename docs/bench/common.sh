# Shared by the benchmark scripts beside it (sourced, not run): a free port, a release build of velo, and
# velo or redis-server started in a temporary directory that goes away, servers stopped, on exit.

# Checks that the named tools exist, naming the Debian packages that hold them.
require_tools() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "$tool not found: apt-get install redis-server redis-tools bc" >&2
            exit 1
        }
    done
}

# Prints a TCP port nothing listens on (and that no earlier call of this script returned), below Linux's
# ephemeral range (32768-60999 by default): a port in it can be taken by the local end of a client's
# connection (redis-benchmark's 50) between this check and the server's bind.
BENCH_PORTS=""
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 12000))
        case " $BENCH_PORTS " in *" $port "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            BENCH_PORTS="$BENCH_PORTS $port"
            echo "$port"
            return
        fi
    done
}

# Sets VELO to $1 if given, else to a fresh release build of this tree.
use_velo() {
    VELO=${1:-}
    if [ -z "$VELO" ]; then
        echo "building velo (release)..." >&2
        cargo build --release --quiet --bin velo
        VELO="${CARGO_TARGET_DIR:-target}/release/velo"
    fi
}

BENCH_WORK=$(mktemp -d)
BENCH_PIDS=()
bench_cleanup() {
    if [ ${#BENCH_PIDS[@]} -gt 0 ]; then
        kill "${BENCH_PIDS[@]}" 2>/dev/null || true
        wait "${BENCH_PIDS[@]}" 2>/dev/null || true
    fi
    # BENCH_KEEP_LOGS=DIR keeps the servers' logs (e.g. RUST_LOG=velo::engine::checkpoint=debug timings).
    if [ -n "${BENCH_KEEP_LOGS:-}" ]; then
        mkdir -p "$BENCH_KEEP_LOGS" && cp "$BENCH_WORK"/*.log "$BENCH_KEEP_LOGS"/ 2>/dev/null || true
    fi
    rm -rf "$BENCH_WORK"
}
trap bench_cleanup EXIT

# Waits until the server on port $1 answers PING.
wait_ready() {
    for _ in $(seq 100); do
        redis-cli -p "$1" PING >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "no server answers on port $1" >&2
    exit 1
}

# Starts `velo serve --fsync everysec` on port $1 and waits for it.
start_velo() {
    "$VELO" serve --port "$1" --dir "$BENCH_WORK/velo-$1" --fsync everysec --log-level warn \
        >/dev/null 2>"$BENCH_WORK/velo-$1.log" &
    BENCH_PIDS+=($!)
    wait_ready "$1"
}

# Starts `redis-server --appendonly yes --appendfsync everysec` on port $1 and waits for it.
start_redis() {
    mkdir -p "$BENCH_WORK/redis-$1"
    redis-server --port "$1" --dir "$BENCH_WORK/redis-$1" --save "" --appendonly yes --appendfsync everysec \
        --logfile "$BENCH_WORK/redis-$1.log" &
    BENCH_PIDS+=($!)
    wait_ready "$1"
}

#!/usr/bin/env bash
# The distributed topology on loopback, no Docker: redis-server, three reference targets in
# distributed mode (`mcp-canary target --redis … --instance …`) and nginx in front of them with
# least_conn and NO session stickiness (SSE-friendly: HTTP/1.1, no buffering, long timeouts).
# Every process on a free loopback port; state, configs and logs in $TOPOLOGY_DIR.
# Needs: redis-server, nginx (Debian packages), python3, cargo (or MCP_CANARY_BIN).
# Usage: deploy/local/topology.sh up [--no-redis] [--detach]   (Ctrl-C stops everything)
#        deploy/local/topology.sh down
#   --no-redis  instances keep sessions locally: the misconfiguration non-sticky balancing breaks on
#   --detach    return after start-up; stop later with `down`
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${TOPOLOGY_DIR:-${TMPDIR:-/tmp}/mcp-canary-topology-$(id -u)}
INSTANCES=${INSTANCES:-3}

stop_all() {
  [ -f "$DIR/pids" ] || return 0
  local pids pid
  pids=$(cat "$DIR/pids")
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do # bounded: 5 s, then SIGKILL
    local alive=0
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$DIR/pids"
  echo "stopped; logs are in $DIR"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_line() { # wait_line FILE PATTERN: print the first match (bounded: 30 s)
  for _ in $(seq 300); do grep -m1 -o "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $2 in $1" >&2; return 1
}
wait_port() { # wait_port PORT (bounded: 10 s)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on port $1" >&2; return 1
}

up() {
  local with_redis=1 detach=0
  for arg in "$@"; do
    case "$arg" in
      --no-redis) with_redis=0 ;;
      --detach) detach=1 ;;
      *) echo "unknown option $arg" >&2; exit 2 ;;
    esac
  done
  for c in nginx python3; do
    command -v "$c" >/dev/null || { echo "missing $c (apt-get install nginx python3)" >&2; exit 1; }
  done
  [ "$with_redis" -eq 0 ] || command -v redis-server >/dev/null \
    || { echo "missing redis-server (apt-get install redis-server)" >&2; exit 1; }
  if [ -f "$DIR/pids" ]; then echo "already up ($DIR/pids exists): run down first" >&2; exit 1; fi
  local bin=${MCP_CANARY_BIN:-}
  if [ -z "$bin" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
    bin=$ROOT/target/release/mcp-canary
  fi
  mkdir -p "$DIR/nginx/tmp"
  : >"$DIR/pids"
  if [ "$detach" -eq 0 ]; then trap 'stop_all; exit 0' INT TERM; fi
  trap '[ $? -eq 0 ] || stop_all' EXIT

  local redis_url="" redis_args=()
  if [ "$with_redis" -eq 1 ]; then
    local redis_port; redis_port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$DIR" \
      --daemonize no --logfile "$DIR/redis.log" >/dev/null 2>&1 &
    echo $! >>"$DIR/pids"
    wait_port "$redis_port"
    redis_url="redis://127.0.0.1:$redis_port"
    redis_args=(--redis "$redis_url")
  fi

  local urls=() servers="" i url
  for i in $(seq "$INSTANCES"); do
    "$bin" target --listen 127.0.0.1:0 --instance "target-$i" "${redis_args[@]}" \
      >"$DIR/target-$i.out" 2>"$DIR/target-$i.log" &
    echo $! >>"$DIR/pids"
  done
  for i in $(seq "$INSTANCES"); do
    url=$(wait_line "$DIR/target-$i.out" 'http://[0-9.:]*/mcp')
    urls+=("$url")
    servers+="    server ${url#http://}; "$'\n'
    servers=${servers/\/mcp;/;}
  done

  local lb_port; lb_port=$(free_port)
  # Each proxied session holds two descriptors (client side, upstream side) per open stream or
  # request: size nginx to the descriptors this shell may open (4096 connections, its usual
  # default, capped a 2,000-session notify run at 64 % delivery).
  local nofile; nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=65536
  [ "$nofile" -gt 65536 ] && nofile=65536
  cat >"$DIR/nginx/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile $nofile;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log warn;
events { worker_connections $((nofile / 2)); }
http {
  access_log $DIR/nginx/access.log;
  client_body_temp_path $DIR/nginx/tmp/body;
  proxy_temp_path $DIR/nginx/tmp/proxy;
  fastcgi_temp_path $DIR/nginx/tmp/fastcgi;
  uwsgi_temp_path $DIR/nginx/tmp/uwsgi;
  scgi_temp_path $DIR/nginx/tmp/scgi;
  # No ip_hash, no sticky cookie: any request of a session may land on any instance.
  upstream mcp_targets {
    least_conn;
$servers  }
  server {
    listen 127.0.0.1:$lb_port;
    location / {
      proxy_pass http://mcp_targets;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_buffering off;
      proxy_cache off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      add_header X-Accel-Buffering no;
    }
  }
}
CONF
  nginx -p "$DIR/nginx" -e "$DIR/nginx/error.log" -c "$DIR/nginx/nginx.conf" -g 'daemon off;' \
    >"$DIR/nginx/stdout.log" 2>&1 &
  echo $! >>"$DIR/pids"
  wait_port "$lb_port"

  {
    echo "balancer http://127.0.0.1:$lb_port/mcp"
    for i in $(seq "$INSTANCES"); do echo "instance target-$i ${urls[$((i - 1))]}"; done
    if [ -n "$redis_url" ]; then echo "redis $redis_url"; else echo "redis none (local sessions only)"; fi
  } | tee "$DIR/urls"
  if [ "$detach" -eq 1 ]; then echo "ready; stop with: $0 down"; else echo "ready; Ctrl-C stops everything"; fi
  trap - EXIT
  if [ "$detach" -eq 0 ]; then
    while [ -f "$DIR/pids" ]; do sleep 1; done
  fi
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) stop_all ;;
  *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac

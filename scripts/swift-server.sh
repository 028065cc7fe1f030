#!/usr/bin/env bash
# Start and stop a real single-node OpenStack Swift (with S3 via s3api) on 127.0.0.1
# for pantri's tests, CI and benchmarks.
#
# Usage:
#   scripts/swift-server.sh install         apt-get the Swift packages and client tools
#                                           (skipped when all are already installed)
#   scripts/swift-server.sh start  [dir]    start it (idempotent); prints <dir>/endpoints.json
#   scripts/swift-server.sh stop   [dir]    stop exactly the processes recorded in <dir>/pids
#   scripts/swift-server.sh status [dir]    exit 0 when running and v1 login works, else 1
#
# dir defaults to ${PANTRI_SWIFT_DIR:-/tmp/pantri-swift}. Layout under it:
#   etc/      rings, server confs, ports.env      log/   one log per server
#   srv/node/ object data (device d1)             run/   memcached pid file
#   pids      "<name> <pid>" per line             endpoints.env, endpoints.json
#
# Facts this relies on are in /work/shared/FIELD.md (no swift-init on Debian, servers call
# setsid themselves, user xattrs needed on the devices dir, pyenv python cannot import swift).

set -euo pipefail

readonly PACKAGES=(swift python3-swift swift-proxy swift-account swift-container swift-object
  memcached python3-swiftclient s3cmd rclone)
readonly SYS_PYTHON=/usr/bin/python3
readonly SERVERS=(account container object proxy)
readonly HEALTH_TIMEOUT=60
readonly STOP_TIMEOUT=10

readonly USER1=test:tester KEY1=testing
readonly USER2=test2:tester2 KEY2=testing2
readonly REGION=us-east-1

log() { printf 'swift-server: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat >&2 <<'USAGE'
usage: swift-server.sh install
       swift-server.sh start  [dir]
       swift-server.sh stop   [dir]
       swift-server.sh status [dir]
dir defaults to ${PANTRI_SWIFT_DIR:-/tmp/pantri-swift}
USAGE
}

# --------------------------------------------------------------------------------------------
# install

cmd_install() {
  local missing=() p status
  for p in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
    [[ "$status" == installed ]] || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "all packages already installed: ${PACKAGES[*]}"
    return 0
  fi
  log "installing (missing: ${missing[*]})"
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot apt-get install"
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${PACKAGES[@]}"
}

# --------------------------------------------------------------------------------------------
# process bookkeeping

# True when pid exists, is not a zombie, and its command line mentions $DIR/ (every process
# we start has a path under $DIR in its arguments), so a recycled pid is never touched.
is_ours() {
  local pid="$1" state cmdline
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/stat" ]] || return 1
  state="$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != Z ]] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmdline" == *"$DIR/"* ]]
}

recorded_pids() {
  [[ -f "$DIR/pids" ]] || return 0
  awk 'NF >= 2 { print $2 }' "$DIR/pids"
}

# All recorded processes alive (and there is at least one record per expected process).
all_alive() {
  [[ -f "$DIR/pids" ]] || return 1
  local n=0 pid
  while read -r pid; do
    is_ours "$pid" || return 1
    n=$((n + 1))
  done < <(recorded_pids)
  ((n == ${#SERVERS[@]} + 1))
}

stop_recorded() {
  [[ -f "$DIR/pids" ]] || return 0
  local pids=() pid
  while read -r pid; do
    if is_ours "$pid"; then pids+=("$pid"); fi
  done < <(recorded_pids)
  if ((${#pids[@]})); then
    log "stopping pids ${pids[*]}"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT)) left
    while :; do
      left=()
      for pid in "${pids[@]}"; do
        if is_ours "$pid"; then left+=("$pid"); fi
      done
      ((${#left[@]})) || break
      if ((SECONDS >= deadline)); then
        log "still running after ${STOP_TIMEOUT}s, sending SIGKILL to ${left[*]}"
        kill -KILL "${left[@]}" 2>/dev/null || true
        sleep 0.2
        break
      fi
      sleep 0.1
    done
  fi
  rm -f "$DIR/pids" "$DIR/run/memcached.pid" "$DIR/endpoints.env" "$DIR/endpoints.json"
}

# --------------------------------------------------------------------------------------------
# health

# v1 login; on success sets STORAGE_URL and AUTH_TOKEN.
v1_login() {
  local auth_url="$1" headers
  STORAGE_URL='' AUTH_TOKEN=''
  headers="$(curl -sS -m 5 -o /dev/null -D - -H "X-Auth-User: $USER1" -H "X-Auth-Key: $KEY1" \
    "$auth_url" 2>/dev/null)" || return 1
  headers="${headers//$'\r'/}"
  STORAGE_URL="$(awk -F': ' 'tolower($1) == "x-storage-url" { print $2 }' <<<"$headers")"
  AUTH_TOKEN="$(awk -F': ' 'tolower($1) == "x-auth-token" { print $2 }' <<<"$headers")"
  [[ -n "$STORAGE_URL" && -n "$AUTH_TOKEN" ]]
}

http_code() {
  curl -sS -m 10 -o /dev/null -w '%{http_code}' "$@" 2>/dev/null || echo 000
}

# Login, then PUT a container and an object, then delete both.
healthy() {
  local auth_url="$1" c code
  v1_login "$auth_url" || return 1
  c="$STORAGE_URL/pantri-health-$$-$RANDOM"
  code="$(http_code -X PUT -H "X-Auth-Token: $AUTH_TOKEN" "$c")"
  [[ "$code" == 201 || "$code" == 202 ]] || return 1
  code="$(http_code -X PUT -H "X-Auth-Token: $AUTH_TOKEN" --data-binary 'pantri health' "$c/probe")"
  [[ "$code" == 201 ]] || return 1
  http_code -X DELETE -H "X-Auth-Token: $AUTH_TOKEN" "$c/probe" >/dev/null
  http_code -X DELETE -H "X-Auth-Token: $AUTH_TOKEN" "$c" >/dev/null
  return 0
}

proxy_port() {
  [[ -f "$DIR/etc/ports.env" ]] || return 1
  awk -F= '$1 == "PROXY_PORT" { print $2 }' "$DIR/etc/ports.env"
}

auth_url_of() {
  local port
  port="$(proxy_port)" || return 1
  [[ -n "$port" ]] || return 1
  printf 'http://127.0.0.1:%s/auth/v1.0' "$port"
}

dump_logs() {
  local f
  for f in "$DIR"/log/*.log; do
    [[ -f "$f" ]] || continue
    printf '==> %s <==\n' "$f" >&2
    tail -n 25 "$f" >&2 || true
  done
}

# --------------------------------------------------------------------------------------------
# start

check_prereqs() {
  local b missing=()
  for b in swift-account-server swift-container-server swift-object-server swift-proxy-server \
    memcached curl; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
  done
  [[ -x "$SYS_PYTHON" ]] || missing+=("$SYS_PYTHON")
  ((${#missing[@]} == 0)) || die "missing: ${missing[*]} (run: $0 install)"
}

ensure_swift_conf() {
  [[ -f /etc/swift/swift.conf ]] && return 0
  log "/etc/swift/swift.conf missing: writing one (the servers always read it)"
  local prefix suffix
  prefix="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  suffix="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  mkdir -p /etc/swift
  cat >/etc/swift/swift.conf <<CONF
[swift-hash]
swift_hash_path_prefix = $prefix
swift_hash_path_suffix = $suffix

[storage-policy:0]
name = Policy-0
default = yes
CONF
}

# One /usr/bin/python3 process: pick a devices dir with user xattrs, pick free ports (the
# previous ones when still free, so URLs stay stable across restarts), build the three rings.
# Writes $DIR/etc/ports.env.
prepare() {
  local fallback_id
  fallback_id="$(printf '%s' "$DIR" | cksum | awk '{ print $1 }')"
  "$SYS_PYTHON" - "$DIR" "$fallback_id" <<'PY'
import os, socket, sys

base, fid = sys.argv[1], sys.argv[2]
etc = os.path.join(base, "etc")

# 1. devices dir with user xattrs (the object server answers 507 without them)
candidates = [os.path.join(base, "srv", "node"),
              "/dev/shm/pantri-swift-%s/node" % fid,
              "/tmp/pantri-swift-%s/node" % fid]
devices = None
for cand in candidates:
    try:
        os.makedirs(os.path.join(cand, "d1"), exist_ok=True)
        probe = os.path.join(cand, "d1", ".xattr-probe")
        with open(probe, "wb"):
            pass
        try:
            os.setxattr(probe, "user.pantri.probe", b"1")
        finally:
            os.unlink(probe)
        devices = cand
        break
    except OSError as e:
        sys.stderr.write("swift-server: no user xattrs in %s (%s)\n" % (cand, e))
if devices is None:
    sys.exit("swift-server: error: no directory with user xattr support among: "
             + ", ".join(candidates))

# 2. free ports on 127.0.0.1 (hold all sockets open so the five are distinct)
names = ["ACCOUNT_PORT", "CONTAINER_PORT", "OBJECT_PORT", "PROXY_PORT", "MEMCACHED_PORT"]
old = {}
try:
    with open(os.path.join(etc, "ports.env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k in names and v.isdigit():
                old[k] = int(v)
except OSError:
    pass

def bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # as the servers do: a port whose old connections sit in TIME_WAIT is still free
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    return s

socks = []
ports = None
if len(old) == len(names):
    try:
        for n in names:
            socks.append(bind(old[n]))
        ports = {n: old[n] for n in names}
    except OSError:
        for s in socks:
            s.close()
        socks = []
if ports is None:
    ports = {}
    for n in names:
        s = bind(0)
        socks.append(s)
        ports[n] = s.getsockname()[1]
for s in socks:
    s.close()

# 3. rings: part power 10, 1 replica, one device per ring
try:
    from swift.common.ring import RingBuilder
except ImportError as e:
    sys.exit("swift-server: error: %s cannot import swift (%s): run swift-server.sh install"
             % (sys.executable, e))
for kind in ("account", "container", "object"):
    b = RingBuilder(10, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1",
               "port": ports[kind.upper() + "_PORT"], "device": "d1",
               "weight": 100.0, "meta": ""})
    b.rebalance()
    b.save(os.path.join(etc, kind + ".builder"))
    b.get_ring().save(os.path.join(etc, kind + ".ring.gz"))

tmp = os.path.join(etc, "ports.env.tmp")
with open(tmp, "w") as f:
    for n in names:
        f.write("%s=%d\n" % (n, ports[n]))
    f.write("DEVICES=%s\n" % devices)
os.replace(tmp, os.path.join(etc, "ports.env"))
PY
}

write_confs() {
  local user="$1" devices="$2" account="$3" container="$4" object="$5" proxy="$6" mc="$7"
  local etc="$DIR/etc" kind port
  for kind in account container object; do
    case "$kind" in
      account) port="$account" ;;
      container) port="$container" ;;
      object) port="$object" ;;
    esac
    {
      cat <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = $user
swift_dir = $etc
devices = $devices
mount_check = false
log_name = $kind-server
CONF
      cat <<CONF

[pipeline:main]
pipeline = healthcheck $kind-server

[filter:healthcheck]
use = egg:swift#healthcheck

[app:$kind-server]
use = egg:swift#$kind
CONF
      if [[ "$kind" == object ]]; then
        printf 'network_chunk_size = 1048576\ndisk_chunk_size = 1048576\n'
      fi
    } >"$etc/$kind-server.conf"
  done

  cat >"$etc/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $proxy
workers = 0
user = $user
swift_dir = $etc
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
object_chunk_size = 1048576
client_chunk_size = 1048576

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$mc

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl

[filter:s3api]
use = egg:swift#s3api
location = $REGION

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_test2_tester2 = testing2
user_test_readonly = readonly

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true

[filter:symlink]
use = egg:swift#symlink
CONF
}

write_endpoints() {
  local proxy_url="$1" auth_url="$2"
  local tmp="$DIR/endpoints.env.tmp"
  cat >"$tmp" <<ENV
PANTRI_SWIFT_PROXY_URL=$proxy_url
PANTRI_SWIFT_AUTH_URL=$auth_url
PANTRI_SWIFT_USER=$USER1
PANTRI_SWIFT_KEY=$KEY1
PANTRI_SWIFT_USER2=$USER2
PANTRI_SWIFT_KEY2=$KEY2
PANTRI_S3_ENDPOINT=$proxy_url
PANTRI_S3_ACCESS_KEY=$USER1
PANTRI_S3_SECRET_KEY=$KEY1
PANTRI_S3_REGION=$REGION
ST_AUTH=$auth_url
ST_USER=$USER1
ST_KEY=$KEY1
ENV
  mv -f "$tmp" "$DIR/endpoints.env"
  tmp="$DIR/endpoints.json.tmp"
  cat >"$tmp" <<JSON
{
  "proxyUrl": "$proxy_url",
  "authUrl": "$auth_url",
  "user": "$USER1",
  "key": "$KEY1",
  "user2": "$USER2",
  "key2": "$KEY2",
  "s3Endpoint": "$proxy_url",
  "s3AccessKey": "$USER1",
  "s3SecretKey": "$KEY1",
  "region": "$REGION"
}
JSON
  mv -f "$tmp" "$DIR/endpoints.json"
}

# Launch memcached and the four servers and wait until healthy. Returns 0 when healthy,
# 2 when a process exited during start-up (a port taken in the meantime, say), 1 on timeout.
# Leaves everything it started running; the caller stops it on failure.
launch() {
  local user="$1"
  prepare
  local ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT PROXY_PORT MEMCACHED_PORT DEVICES
  # shellcheck disable=SC1091 # generated just above
  source "$DIR/etc/ports.env"
  write_confs "$user" "$DEVICES" "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" \
    "$PROXY_PORT" "$MEMCACHED_PORT"

  : >"$DIR/pids"
  # memcached daemonizes itself (-d, it calls setsid); its pid comes from its pid file.
  rm -f "$DIR/run/memcached.pid"
  if ! memcached -d -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -u "$user" \
    -P "$DIR/run/memcached.pid" </dev/null >"$DIR/log/memcached.log" 2>&1; then
    log "memcached failed to start"
    return 2
  fi
  local i pid=''
  for ((i = 0; i < 50; i++)); do
    pid="$(cat "$DIR/run/memcached.pid" 2>/dev/null || true)"
    [[ -z "$pid" ]] || break
    sleep 0.1
  done
  if [[ -z "$pid" ]]; then
    log "memcached wrote no pid file"
    return 2
  fi
  echo "memcached $pid" >>"$DIR/pids"

  # The Swift servers call setsid themselves: start them plainly in the background.
  local name
  for name in "${SERVERS[@]}"; do
    "swift-$name-server" "$DIR/etc/$name-server.conf" -v \
      </dev/null >"$DIR/log/$name.log" 2>&1 &
    echo "$name $!" >>"$DIR/pids"
  done

  # Wait for each server's own /healthcheck first: requests through the proxy while a
  # backend is still down count as errors, and after 10 the proxy error-limits that (only)
  # node for 60 s. Then check a real login and a container + object PUT.
  local auth_url="http://127.0.0.1:$PROXY_PORT/auth/v1.0"
  log "waiting for Swift at http://127.0.0.1:$PROXY_PORT (up to ${HEALTH_TIMEOUT}s)"
  local deadline=$((SECONDS + HEALTH_TIMEOUT)) pending=("${SERVERS[@]}") still port
  while ((SECONDS < deadline)); do
    while read -r name pid; do
      if ! is_ours "$pid"; then
        log "$name exited during start-up"
        return 2
      fi
    done <"$DIR/pids"
    still=()
    for name in "${pending[@]}"; do
      case "$name" in
        account) port="$ACCOUNT_PORT" ;;
        container) port="$CONTAINER_PORT" ;;
        object) port="$OBJECT_PORT" ;;
        proxy) port="$PROXY_PORT" ;;
      esac
      [[ "$(http_code "http://127.0.0.1:$port/healthcheck")" == 200 ]] || still+=("$name")
    done
    pending=("${still[@]}")
    if ((${#pending[@]} == 0)) && healthy "$auth_url"; then
      write_endpoints "http://127.0.0.1:$PROXY_PORT" "$auth_url"
      log "running: proxy http://127.0.0.1:$PROXY_PORT, devices $DEVICES, pids in $DIR/pids"
      return 0
    fi
    sleep 0.2
  done
  log "not healthy after ${HEALTH_TIMEOUT}s (waiting for: ${pending[*]:-login/PUT})"
  return 1
}

cmd_start() {
  local auth_url
  if all_alive && auth_url="$(auth_url_of)" && v1_login "$auth_url" && [[ -f "$DIR/endpoints.json" ]]; then
    log "already running ($auth_url)"
    printf '%s\n' "$DIR/endpoints.json"
    return 0
  fi
  check_prereqs
  if [[ -f "$DIR/pids" ]]; then
    log "stale or unhealthy instance in $DIR: stopping it first"
    stop_recorded
  fi

  local user uid gid
  user="$(id -un)" uid="$(id -u)" gid="$(id -g)"
  mkdir -p "$DIR"/{etc,log,run,srv/node}
  # Everything under $DIR must belong to the user the servers run as.
  if [[ "$uid" == 0 && "$(stat -c %u:%g "$DIR")" != "$uid:$gid" ]]; then
    chown -R "$uid:$gid" "$DIR"
  fi
  [[ -w "$DIR" ]] || die "$DIR is not writable by $user"
  rm -f "$DIR/endpoints.env" "$DIR/endpoints.json"
  ensure_swift_conf

  local attempt rc
  for attempt in 1 2; do
    rc=0
    launch "$user" || rc=$?
    if ((rc == 0)); then
      printf '%s\n' "$DIR/endpoints.json"
      return 0
    fi
    dump_logs
    stop_recorded
    # A process that died at once most likely lost its port: retry once on fresh ports.
    ((rc == 2 && attempt == 1)) || break
    log "retrying on fresh ports"
    rm -f "$DIR/etc/ports.env"
  done
  die "Swift failed to start (logs in $DIR/log)"
}

cmd_stop() {
  if [[ ! -f "$DIR/pids" ]]; then
    log "not running (no $DIR/pids)"
    return 0
  fi
  stop_recorded
  log "stopped"
}

cmd_status() {
  local auth_url
  if all_alive && auth_url="$(auth_url_of)" && v1_login "$auth_url"; then
    log "running: $auth_url"
    return 0
  fi
  log "not running (or unhealthy) in $DIR"
  return 1
}

# --------------------------------------------------------------------------------------------

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    install)
      [[ $# -eq 0 ]] || { usage; exit 2; }
      cmd_install
      ;;
    start | stop | status)
      [[ $# -le 1 ]] || { usage; exit 2; }
      local d="${1:-${PANTRI_SWIFT_DIR:-/tmp/pantri-swift}}"
      [[ -n "$d" ]] || die "empty directory"
      if [[ "$cmd" == start ]]; then mkdir -p "$d" || die "cannot create $d"; fi
      if [[ -d "$d" ]]; then d="$(cd "$d" && pwd -P)"; fi
      DIR="$d"
      readonly DIR
      "cmd_$cmd"
      ;;
    -h | --help | help)
      usage
      ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"

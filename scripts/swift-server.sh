#!/usr/bin/env bash
# Start and stop a real single-node OpenStack Swift (with S3 via s3api) on 127.0.0.1
# for pantri's tests, CI and benchmarks.
#
# Usage:
#   scripts/swift-server.sh install         apt-get the Swift packages and client tools
#                                           (skipped when all are already installed)
#   scripts/swift-server.sh install-keystone
#                                           apt-get Keystone and Swift's Keystone middleware
#   scripts/swift-server.sh start  [--with-keystone|--no-keystone] [dir]
#                                           start it (idempotent); prints <dir>/endpoints.json.
#                                           Keystone too when installed (--with-keystone:
#                                           required; --no-keystone: never)
#   scripts/swift-server.sh stop   [dir]    stop exactly the processes recorded in <dir>/pids
#   scripts/swift-server.sh status [dir]    exit 0 when running and v1 login works (and Keystone
#                                           answers, when started with it), else 1
#
# dir defaults to ${PANTRI_SWIFT_DIR:-/tmp/pantri-swift}. Layout under it:
#   etc/      rings, server confs, ports.env      log/   one log per server
#   srv/node/ object data (device d1)             run/   memcached pid file
#   pids      "<name> <pid>" per line             endpoints.env, endpoints.json
#   keystone/ keystone.conf, its sqlite database and fernet keys (fresh on every start)
#
# With Keystone: a real Keystone v3 (sqlite, fernet tokens) served on 127.0.0.1 by Python's
# wsgiref (no Apache, uwsgi or systemd), and a SECOND Swift proxy over the same account/container/object servers
# whose pipeline has authtoken + keystoneauth instead of tempauth. The Keystone holds domain
# "pantri" with project "swiftproject", users "swiftuser" (role member) and "swiftreader" (role
# reader: no Swift rights), an application credential of swiftuser, and the object-store service
# with endpoints in RegionOne (public, internal, admin) and RegionTwo (public, unreachable: for
# region selection tests).
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

# Keystone: python3-keystone brings keystone-manage, the WSGI app, keystonemiddleware and the
# openstack CLI, and starts no service. The `keystone` package is not needed: it adds
# dbconfig-common and a uwsgi service its postinst tries to start.
readonly KEYSTONE_PACKAGES=(python3-keystone python3-keystonemiddleware)
readonly KS_ADMIN_PASSWORD=pantri-ks-admin-secret
readonly KS_SERVICE_PASSWORD=pantri-ks-swift-service-secret
readonly KS_DOMAIN=pantri
readonly KS_PROJECT=swiftproject
readonly KS_USER=swiftuser KS_PASSWORD=pantri-ks-swiftuser-secret
readonly KS_READER=swiftreader KS_READER_PASSWORD=pantri-ks-swiftreader-secret
readonly KS_REGION=RegionOne KS_REGION2=RegionTwo

log() { printf 'swift-server: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat >&2 <<'USAGE'
usage: swift-server.sh install
       swift-server.sh install-keystone
       swift-server.sh start  [--with-keystone|--no-keystone] [dir]
       swift-server.sh stop   [dir]
       swift-server.sh status [dir]
dir defaults to ${PANTRI_SWIFT_DIR:-/tmp/pantri-swift}
USAGE
}

# --------------------------------------------------------------------------------------------
# install

apt_install() {
  local missing=() p status
  for p in "$@"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
    [[ "$status" == installed ]] || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "all packages already installed: $*"
    return 0
  fi
  log "installing (missing: ${missing[*]})"
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot apt-get install"
    sudo=(sudo)
  fi
  # `install` then `install-keystone` (as CI runs them) need one `apt-get update`, not two.
  if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 -print -quit 2>/dev/null)" ]]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "$@"
}

cmd_install() {
  apt_install "${PACKAGES[@]}"
}

cmd_install_keystone() {
  apt_install "${KEYSTONE_PACKAGES[@]}"
}

# Keystone and its Swift middleware importable by the system python (find_spec does not import
# them: that alone would take 3 s).
keystone_installed() {
  [[ -x "$SYS_PYTHON" ]] && command -v swift-proxy-server >/dev/null 2>&1 &&
    "$SYS_PYTHON" -c 'import importlib.util as u, sys
sys.exit(0 if all(u.find_spec(m) for m in ("keystone", "keystonemiddleware")) else 1)' 2>/dev/null
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

# The running instance was started with Keystone.
has_keystone() {
  [[ -f "$DIR/pids" ]] && grep -q '^keystone ' "$DIR/pids"
}

# All recorded processes alive, one record per expected process: memcached and the four
# servers, plus Keystone and its Swift proxy when started with Keystone.
all_alive() {
  [[ -f "$DIR/pids" ]] || return 1
  local n=0 pid want=$((${#SERVERS[@]} + 1))
  while read -r pid; do
    is_ours "$pid" || return 1
    n=$((n + 1))
  done < <(recorded_pids)
  if has_keystone; then want=$((want + 2)); fi
  ((n == want))
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

# 2. free ports on 127.0.0.1 (hold all sockets open so they are distinct)
names = ["ACCOUNT_PORT", "CONTAINER_PORT", "OBJECT_PORT", "PROXY_PORT", "MEMCACHED_PORT",
         "KEYSTONE_PORT", "KEYSTONE_PROXY_PORT"]
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

  {
    proxy_conf "$proxy" proxy-server "s3api tempauth" "allow_account_management = true"
    cat <<CONF

[filter:s3api]
use = egg:swift#s3api
location = $REGION

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_test2_tester2 = testing2
user_test_readonly = readonly
CONF
  } >"$etc/proxy-server.conf"
}

# Keystone's conf and helper, and the second proxy (authtoken + keystoneauth) in front of the
# same account/container/object servers.
write_keystone_confs() {
  local user="$1" ks="$2" ksproxy="$3" mc="$4"
  local etc="$DIR/etc" ksdir="$DIR/keystone"
  # A fresh Keystone on every start: ids, keys and the application credential are regenerated,
  # so a restart never serves a catalog with stale ports.
  rm -rf "$ksdir"
  mkdir -p "$ksdir"
  chmod 700 "$ksdir"
  : >"$DIR/log/keystone.log"
  : >"$DIR/log/keystone-provision.log"
  cat >"$ksdir/keystone.conf" <<CONF
[DEFAULT]
log_file = $DIR/log/keystone.log

[database]
connection = sqlite:///$ksdir/keystone.db

[identity]
# bcrypt's cheapest cost: every password login of the tests is then ~10 ms, not ~250 ms.
password_hash_rounds = 4

[token]
provider = fernet
expiration = 3600

[fernet_tokens]
key_repository = $ksdir/fernet-keys

[fernet_receipts]
key_repository = $ksdir/receipt-keys

[credential]
key_repository = $ksdir/credential-keys
CONF

  {
    proxy_conf "$ksproxy" proxy-keystone "authtoken keystoneauth" ""
    cat <<CONF

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = http://127.0.0.1:$ks/v3
auth_url = http://127.0.0.1:$ks/v3
auth_type = password
user_domain_id = default
project_domain_id = default
project_name = service
username = swift
password = $KS_SERVICE_PASSWORD
interface = public
delay_auth_decision = True
memcached_servers = 127.0.0.1:$mc

[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member
CONF
  } >"$etc/proxy-keystone-server.conf"
  write_keystone_helper
}

# A proxy-server.conf on 127.0.0.1:$1 (log name $2) with the pipeline FIELD.md lists, the auth
# filters $3 in it, and $4 as extra [app:proxy-server] lines; the caller appends those filters.
proxy_conf() {
  local port=$1 name=$2 auth=$3 extra=$4
  cat <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = $user
swift_dir = $etc
log_name = $name

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl $auth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
object_chunk_size = 1048576
client_chunk_size = 1048576
${extra}

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

# $DIR/keystone/pantri-keystone.py, run by /usr/bin/python3:
#   serve <conf> <port>   (re)create the database and keys, bootstrap, then serve on 127.0.0.1
#   setup <conf> <port>   fernet/credential keys, db_sync and bootstrap (in one process: each
#                         keystone-manage call costs ~3 s of imports)
#   provision <out.json>  waits for Keystone, then through its REST API: domain, project, users,
#                         roles, the object-store service and endpoints, the swift service user,
#                         an application credential; writes their names, ids and secrets
#   check <out.json>      waits for a login + PUT through the Keystone proxy (run only once the
#                         backends are up: each request the proxy cannot pass on counts towards
#                         error-limiting a backend for 60 s)
# Passwords come from the environment, never argv (argv is visible in ps).
write_keystone_helper() {
  cat >"$DIR/keystone/pantri-keystone.py" <<'PY'
import base64, json, os, signal, subprocess, sys, time
import urllib.error, urllib.request

def setup(conf, port):
    base = os.path.dirname(conf)
    # Fernet key repositories as keystone-manage fernet_setup/credential_setup make them:
    # key 0 staged, key 1 primary, urlsafe base64 of 32 random bytes, dirs 0700, files 0600.
    for repo in ("fernet-keys", "receipt-keys", "credential-keys"):
        d = os.path.join(base, repo)
        os.makedirs(d, mode=0o700, exist_ok=True)
        for name in ("0", "1"):
            fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(base64.urlsafe_b64encode(os.urandom(32)))
    from keystone.cmd import cli
    from keystone.common.sql import upgrades
    bootstrap = cli.BootStrap.main.__func__

    def sync_then_bootstrap(cls):
        upgrades.offline_sync_database_to_version()
        bootstrap(cls)

    cli.BootStrap.main = classmethod(sync_then_bootstrap)
    url = "http://127.0.0.1:%s/v3" % port
    cli.main(argv=["keystone-manage", "--config-file", conf, "bootstrap",
                   "--bootstrap-password", os.environ["KS_ADMIN_PASSWORD"],
                   "--bootstrap-username", "admin", "--bootstrap-project-name", "admin",
                   "--bootstrap-role-name", "admin", "--bootstrap-service-name", "keystone",
                   "--bootstrap-region-id", os.environ["KS_REGION"],
                   "--bootstrap-admin-url", url, "--bootstrap-internal-url", url,
                   "--bootstrap-public-url", url])
    # WAL: a read transaction some request left open (until garbage collection) then no
    # longer makes the next write fail with "database is locked" after sqlite's 5 s timeout.
    import sqlite3
    db = sqlite3.connect(os.path.join(base, "keystone.db"))
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    os._exit(0)  # skip eventlet's noisy logging shutdown

def serve(conf, port):
    try:
        os.setsid()  # like the Swift servers: our own session, stopped by pid
    except OSError:
        pass
    # Set up in a child while this process pays for the same imports.
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "setup", conf, str(port)])

    def stop(signum, frame):
        if child.poll() is None:
            child.kill()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    from wsgiref import simple_server
    sys.argv[1:] = []  # oslo.config parses sys.argv
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = conf
    os.environ.pop("OS_KEYSTONE_CONFIG_DIR", None)
    from keystone.server.wsgi import initialize_public_application
    if child.wait() != 0:
        sys.exit("keystone setup failed (see keystone.log)")
    app = initialize_public_application()

    # One request at a time, as keystone-wsgi-public serves: with threads, sqlite answers
    # "database is locked" to a write while another thread's connection holds a transaction.
    # Each request is its own connection (HTTP/1.0), so an idle client blocks no one, and
    # Swift's authtoken caches validations in memcached.
    class Server(simple_server.WSGIServer):
        request_queue_size = 64

    class Handler(simple_server.WSGIRequestHandler):
        def address_string(self):
            return self.client_address[0]  # no reverse DNS per request

    server = simple_server.make_server("127.0.0.1", port, app, server_class=Server,
                                       handler_class=Handler)
    sys.stderr.write("keystone: serving http://127.0.0.1:%d/v3\n" % port)
    sys.stderr.flush()
    server.serve_forever()

def call(method, url, body=None, token=None, ok=(200, 201, 204)):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            text = res.read()
            status, headers = res.status, res.headers
    except urllib.error.HTTPError as e:
        text, status, headers = e.read(), e.code, e.headers
    if status not in ok:
        raise RuntimeError("%s %s -> %s %s" % (method, url, status, text[:300]))
    return headers, (json.loads(text) if text else None)

def login(ks, user, password, domain_id, project=None, project_id=None, project_domain_id=None):
    scope = {"project": {"id": project_id}} if project_id else \
        {"project": {"name": project, "domain": {"id": project_domain_id}}}
    headers, body = call("POST", ks + "/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": domain_id}, "password": password}}},
        "scope": scope}})
    return headers["X-Subject-Token"], body["token"]

def provision(out):
    env = os.environ
    ks = "http://127.0.0.1:%s/v3" % env["KS_PORT"]
    proxy = "http://127.0.0.1:%s" % env["KS_PROXY_PORT"]
    deadline = time.time() + float(env.get("KS_TIMEOUT", "60"))
    while True:  # Keystone up?
        try:
            call("GET", ks)
            break
        except Exception as e:
            if time.time() > deadline:
                sys.exit("keystone not answering at %s: %s" % (ks, e))
            time.sleep(0.1)
    admin, _ = login(ks, "admin", env["KS_ADMIN_PASSWORD"], "default", "admin",
                     project_domain_id="default")

    def post(path, kind, obj):
        return call("POST", ks + path, {kind: obj}, admin)[1][kind]

    roles = {r["name"]: r["id"] for r in call("GET", ks + "/roles", token=admin)[1]["roles"]}
    domain = post("/domains", "domain", {"name": env["KS_DOMAIN"], "enabled": True})
    project = post("/projects", "project", {"name": env["KS_PROJECT"], "domain_id": domain["id"]})
    users = {}
    for name, password, role in ((env["KS_USER"], env["KS_PASSWORD"], "member"),
                                 (env["KS_READER"], env["KS_READER_PASSWORD"], "reader")):
        u = post("/users", "user", {"name": name, "password": password, "domain_id": domain["id"],
                                    "default_project_id": project["id"], "enabled": True})
        call("PUT", "%s/projects/%s/users/%s/roles/%s" % (ks, project["id"], u["id"], roles[role]),
             token=admin)
        users[name] = u
    service_project = post("/projects", "project", {"name": "service", "domain_id": "default"})
    swift_user = post("/users", "user", {"name": "swift", "password": env["KS_SERVICE_PASSWORD"],
                                         "domain_id": "default", "enabled": True})
    call("PUT", "%s/projects/%s/users/%s/roles/%s" % (ks, service_project["id"], swift_user["id"],
                                                      roles["admin"]), token=admin)
    service = post("/services", "service", {"type": "object-store", "name": "swift",
                                            "enabled": True})
    post("/regions", "region", {"id": env["KS_REGION2"]})
    account = proxy + "/v1/AUTH_%(project_id)s"
    # RegionTwo's URL is on 127.0.0.2, where nothing listens: only its selection is testable.
    region2 = "http://127.0.0.2:%s/v1/AUTH_%%(project_id)s" % env["KS_PROXY_PORT"]
    for region, interface, url in ((env["KS_REGION"], "public", account),
                                   (env["KS_REGION"], "internal", account),
                                   (env["KS_REGION"], "admin", proxy + "/v1"),
                                   (env["KS_REGION2"], "public", region2)):
        post("/endpoints", "endpoint", {"service_id": service["id"], "region_id": region,
                                        "interface": interface, "url": url, "enabled": True})
    user = users[env["KS_USER"]]
    token, body = login(ks, env["KS_USER"], env["KS_PASSWORD"], domain["id"], project_id=project["id"])
    cred = call("POST", "%s/users/%s/application_credentials" % (ks, user["id"]),
                {"application_credential": {"name": "pantri-tests"}}, token)[1]["application_credential"]

    storage = "%s/v1/AUTH_%s" % (proxy, project["id"])
    result = {
        "keystoneUrl": ks,
        "keystoneRegion": env["KS_REGION"],
        "keystoneRegion2": env["KS_REGION2"],
        "keystoneUser": env["KS_USER"],
        "keystonePassword": env["KS_PASSWORD"],
        "keystoneUserId": user["id"],
        "keystoneProject": env["KS_PROJECT"],
        "keystoneProjectId": project["id"],
        "keystoneUserDomain": env["KS_DOMAIN"],
        "keystoneUserDomainId": domain["id"],
        "keystoneProjectDomain": env["KS_DOMAIN"],
        "keystoneProjectDomainId": domain["id"],
        "keystoneReader": env["KS_READER"],
        "keystoneReaderPassword": env["KS_READER_PASSWORD"],
        "keystoneAppCredId": cred["id"],
        "keystoneAppCredSecret": cred["secret"],
        "keystoneSwiftUrl": storage,
        "keystoneProxyUrl": proxy,
    }
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, out)

def check(endpoints):
    """Healthy when swiftuser's token opens the account through the Keystone proxy."""
    with open(endpoints) as f:
        ep = json.load(f)
    deadline = time.time() + float(os.environ.get("KS_TIMEOUT", "60"))
    container = "%s/pantri-health-%d" % (ep["keystoneSwiftUrl"], os.getpid())
    while True:
        try:
            token, _ = login(ep["keystoneUrl"], ep["keystoneUser"], ep["keystonePassword"],
                             ep["keystoneUserDomainId"], project_id=ep["keystoneProjectId"])
            call("PUT", container, token=token, ok=(201, 202))
            req = urllib.request.Request(container + "/probe", data=b"pantri health", method="PUT")
            req.add_header("X-Auth-Token", token)
            urllib.request.urlopen(req, timeout=10).read()
            call("DELETE", container + "/probe", token=token, ok=(204, 404))
            call("DELETE", container, token=token, ok=(204, 404, 409))
            return
        except Exception as e:
            if time.time() > deadline:
                sys.exit("the Keystone proxy at %s is not healthy: %s" % (ep["keystoneProxyUrl"], e))
            time.sleep(0.2)

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif mode == "setup":
        setup(sys.argv[2], sys.argv[3])
    elif mode == "provision":
        provision(sys.argv[2])
    elif mode == "check":
        check(sys.argv[2])
    else:
        sys.exit("usage: pantri-keystone.py serve|setup|provision|check ...")
PY
}

# The Keystone settings for pantri-keystone.py, passed in its environment only (`env "${KS_ENV[@]}"`:
# a plain command, so that `$!` of a background start is the python process itself).
readonly KS_ENV=(KS_ADMIN_PASSWORD="$KS_ADMIN_PASSWORD" KS_SERVICE_PASSWORD="$KS_SERVICE_PASSWORD"
  KS_DOMAIN="$KS_DOMAIN" KS_PROJECT="$KS_PROJECT" KS_USER="$KS_USER" KS_PASSWORD="$KS_PASSWORD"
  KS_READER="$KS_READER" KS_READER_PASSWORD="$KS_READER_PASSWORD"
  KS_REGION="$KS_REGION" KS_REGION2="$KS_REGION2")

write_endpoints() {
  local proxy_url="$1" auth_url="$2" keystone_json="${3:-}"
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
  if [[ -n "$keystone_json" ]]; then
    "$SYS_PYTHON" - "$tmp" "$keystone_json" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    merged = json.load(f)
with open(sys.argv[2]) as f:
    merged.update(json.load(f))
with open(sys.argv[1], "w") as f:
    json.dump(merged, f, indent=2)
    f.write("\n")
PY
  fi
  mv -f "$tmp" "$DIR/endpoints.json"
}

# Launch memcached and the four servers (and Keystone with its proxy when $2 is 1) and wait
# until healthy. Returns 0 when healthy, 2 when a process exited during start-up (a port taken
# in the meantime, say), 1 on timeout. Leaves everything it started running; the caller stops
# it on failure.
launch() {
  local user="$1" with_keystone="$2"
  prepare
  local ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT PROXY_PORT MEMCACHED_PORT DEVICES
  local KEYSTONE_PORT KEYSTONE_PROXY_PORT
  # shellcheck disable=SC1091 # generated just above
  source "$DIR/etc/ports.env"
  write_confs "$user" "$DEVICES" "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" \
    "$PROXY_PORT" "$MEMCACHED_PORT"
  local servers=("${SERVERS[@]}")
  rm -f "$DIR/etc/keystone-endpoints.json"
  if ((with_keystone)); then
    write_keystone_confs "$user" "$KEYSTONE_PORT" "$KEYSTONE_PROXY_PORT" "$MEMCACHED_PORT"
    servers+=(proxy-keystone)
  fi

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

  # Keystone first: its set-up (keys, db_sync, bootstrap: ~4 s) overlaps Swift's start-up.
  # pantri-keystone.py calls setsid itself, as the Swift servers do.
  if ((with_keystone)); then
    env "${KS_ENV[@]}" "$SYS_PYTHON" "$DIR/keystone/pantri-keystone.py" serve "$DIR/keystone/keystone.conf" \
      "$KEYSTONE_PORT" </dev/null >"$DIR/log/keystone-wsgi.log" 2>&1 &
    echo "keystone $!" >>"$DIR/pids"
  fi

  # The Swift servers call setsid themselves: start them plainly in the background.
  local name
  for name in "${servers[@]}"; do
    "swift-${name%-keystone}-server" "$DIR/etc/$name-server.conf" -v \
      </dev/null >"$DIR/log/$name.log" 2>&1 &
    echo "$name $!" >>"$DIR/pids"
  done

  # Keystone's users, project, catalog and application credential are made while Swift starts.
  local provision_pid=''
  if ((with_keystone)); then
    env "${KS_ENV[@]}" KS_PORT="$KEYSTONE_PORT" KS_PROXY_PORT="$KEYSTONE_PROXY_PORT" \
      KS_TIMEOUT="$HEALTH_TIMEOUT" "$SYS_PYTHON" "$DIR/keystone/pantri-keystone.py" provision \
      "$DIR/etc/keystone-endpoints.json" </dev/null >>"$DIR/log/keystone-provision.log" 2>&1 &
    provision_pid=$!
  fi

  # Wait for each server's own /healthcheck first: requests through the proxy while a
  # backend is still down count as errors, and after 10 the proxy error-limits that (only)
  # node for 60 s. Then check a real login and a container + object PUT.
  local auth_url="http://127.0.0.1:$PROXY_PORT/auth/v1.0"
  log "waiting for Swift at http://127.0.0.1:$PROXY_PORT (up to ${HEALTH_TIMEOUT}s)"
  local deadline=$((SECONDS + HEALTH_TIMEOUT)) pending=("${servers[@]}") still port
  while ((SECONDS < deadline)); do
    while read -r name pid; do
      if ! is_ours "$pid"; then
        log "$name exited during start-up"
        stop_provisioning "$provision_pid"
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
        proxy-keystone) port="$KEYSTONE_PROXY_PORT" ;;
      esac
      [[ "$(http_code "http://127.0.0.1:$port/healthcheck")" == 200 ]] || still+=("$name")
    done
    pending=("${still[@]}")
    if ((${#pending[@]} == 0)) && healthy "$auth_url"; then
      local keystone_json=''
      if ((with_keystone)); then
        keystone_json="$DIR/etc/keystone-endpoints.json"
        log "Swift is up; waiting for Keystone at http://127.0.0.1:$KEYSTONE_PORT/v3"
        if ! wait "$provision_pid" ||
          ! KS_TIMEOUT=$((deadline - SECONDS)) "$SYS_PYTHON" "$DIR/keystone/pantri-keystone.py" \
            check "$keystone_json" >>"$DIR/log/keystone-provision.log" 2>&1; then
          log "Keystone failed: $(tail -n 1 "$DIR/log/keystone-provision.log")"
          return 1
        fi
      fi
      write_endpoints "http://127.0.0.1:$PROXY_PORT" "$auth_url" "$keystone_json"
      log "running: proxy http://127.0.0.1:$PROXY_PORT, devices $DEVICES, pids in $DIR/pids"
      if ((with_keystone)); then
        log "running: Keystone http://127.0.0.1:$KEYSTONE_PORT/v3, its Swift proxy http://127.0.0.1:$KEYSTONE_PROXY_PORT"
      fi
      return 0
    fi
    sleep 0.2
  done
  log "not healthy after ${HEALTH_TIMEOUT}s (waiting for: ${pending[*]:-login/PUT})"
  stop_provisioning "$provision_pid"
  return 1
}

# The background provisioning of a failed start, if still running (it is our own child).
stop_provisioning() {
  if [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}

# $1: yes (Keystone required), no, or auto (when installed).
cmd_start() {
  local auth_url keystone_mode="$1" with_keystone=0
  case "$keystone_mode" in
    yes)
      keystone_installed || die "Keystone is not installed (run: $0 install-keystone)"
      with_keystone=1
      ;;
    auto) if keystone_installed; then with_keystone=1; fi ;;
  esac
  local running_keystone=0
  if has_keystone; then running_keystone=1; fi
  if ((running_keystone == with_keystone)) && all_alive && auth_url="$(auth_url_of)" &&
    v1_login "$auth_url" && [[ -f "$DIR/endpoints.json" ]]; then
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
    launch "$user" "$with_keystone" || rc=$?
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
  local auth_url ks_port
  if all_alive && auth_url="$(auth_url_of)" && v1_login "$auth_url"; then
    if ! has_keystone; then
      log "running: $auth_url"
      return 0
    fi
    ks_port="$(awk -F= '$1 == "KEYSTONE_PORT" { print $2 }' "$DIR/etc/ports.env")"
    if [[ "$(http_code "http://127.0.0.1:$ks_port/v3")" == 200 ]]; then
      log "running: $auth_url, Keystone http://127.0.0.1:$ks_port/v3"
      return 0
    fi
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
    install-keystone)
      [[ $# -eq 0 ]] || { usage; exit 2; }
      cmd_install_keystone
      ;;
    start | stop | status)
      local keystone_mode=auto
      if [[ "$cmd" == start ]]; then
        case "${1:-}" in
          --with-keystone) keystone_mode=yes && shift ;;
          --no-keystone) keystone_mode=no && shift ;;
        esac
      fi
      [[ $# -le 1 ]] || { usage; exit 2; }
      local d="${1:-${PANTRI_SWIFT_DIR:-/tmp/pantri-swift}}"
      [[ -n "$d" ]] || die "empty directory"
      if [[ "$cmd" == start ]]; then mkdir -p "$d" || die "cannot create $d"; fi
      if [[ -d "$d" ]]; then d="$(cd "$d" && pwd -P)"; fi
      DIR="$d"
      readonly DIR
      "cmd_$cmd" "$keystone_mode"
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

#!/usr/bin/env bash
# Take the README's "Run as a service" install steps literally on a booted systemd, and report.
#
# Boots this (Debian) host's own OS in a container (systemd-nspawn over an overlay of / with an
# in-memory upper layer: nothing on the host changes), and inside it, as root:
#   1. runs the README's install block line by line ("sudo" is a shim: we are root; the pip
#      line installs a copy of this checkout, its dependencies from PyPI; "then edit it" adds one
#      PCS on 127.0.0.1:5020, served by `dispatch sim-device` from the installed package);
#   2. after 75 s (past WatchdogSec=60s): the unit's state, its user, journal, store rows;
#   3. a register map of one's own beside the config, as a credential in a drop-in;
#   4. the REST API's token as a credential: an operator write with and without it;
#   5. SIGTERM: the exit status;
#   6. the former layout (config 0640 root, read through ConfigurationDirectory=): exit 78.
# Needs root, systemd-nspawn (Debian package systemd-container), overlayfs, and the network to
# reach PyPI (the README's pip line). Not part of `make test`: about 3 minutes.
# Usage: sudo systemd/check-readme-install.sh [LOG]   (LOG default: ./readme-install.log)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
log="$(realpath -m "${1:-readme-install.log}")"
command -v systemd-nspawn >/dev/null || { echo "needs systemd-nspawn (apt install systemd-container)"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 2; }
work="$(mktemp -d /tmp/dispatch-readme.XXXXXX)"
cleanup() {
  umount "$work/root" 2>/dev/null || true
  umount "$work/up" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{up,root,out,check,checkout}
(cd "$here" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/checkout")
mount -t tmpfs -o size=8g tmpfs "$work/up"
mkdir -p "$work/up/upper" "$work/up/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/up/upper,workdir=$work/up/work" "$work/root"

cat > "$work/check/readme-check.service" <<'EOF'
[Unit]
Description=Take the README's "Run as a service" steps literally
[Service]
Type=oneshot
ExecStart=/bin/bash /check/steps.sh
StandardOutput=append:/out/steps.log
StandardError=append:/out/steps.log
TimeoutStartSec=30min
EOF

cat > "$work/check/steps.sh" <<'EOF'
#!/bin/bash
set -u
trap 'echo "=== steps exit $?"; systemctl poweroff --no-block' EXIT
printf '#!/bin/sh\nexec "$@"\n' > /usr/local/bin/sudo && chmod 755 /usr/local/bin/sudo
cd /src/factory-dispatch
echo "=== $(systemctl --version | head -1)"
awk '/^Install on a Debian-like host with systemd/{f=1;next} f&&/^```sh/{g=1;next} g&&/^```/{exit} g{print}' \
  README.md > /out/readme-block.sh
edit_config() {  # "then edit it": one PCS, served by the simulator of the installed package
  printf '\n[[devices]]\nname = "pcs-1"\nregister_map = "huawei_sun2000_luna"\nhost = "127.0.0.1"\nport = 5020\n' \
    >> /etc/dispatch/site.toml
  (cd / && /opt/dispatch/.venv/bin/dispatch sim-device --config /etc/dispatch/site.toml \
    --port 5020 > /out/sim.log 2>&1 &)
  sleep 8
}
while IFS= read -r line; do
  case "$line" in *journalctl*-f*) echo "+ (not following: $line)"; continue ;; esac
  line="${line//\/path\/to\/factory-dispatch//src/factory-dispatch}"
  echo "+ $line"
  if [[ "$line" == *"pip install"* ]]; then
    bash -c "$line" > /out/pip.log 2>&1; rc=$?; tail -2 /out/pip.log
  elif [[ "$line" == *check-config* ]]; then
    bash -c "$line" > /out/check-config.json; rc=$?
  else
    bash -c "$line"; rc=$?
  fi
  echo "  -> exit $rc"
  [ $rc -eq 0 ] || exit $rc
  if [[ "$line" == *"then edit it"* ]]; then edit_config; fi
done < /out/readme-block.sh
ls -la /etc/dispatch
sleep 75
echo "=== after 75 s"
systemctl show dispatch -p ActiveState -p SubState -p NRestarts -p ExecMainStatus -p User
journalctl -u dispatch --no-pager | tail -8
/opt/dispatch/.venv/bin/python - <<'PY'
import sqlite3
db = sqlite3.connect("/var/lib/dispatch/dispatch.sqlite3")
print({t: db.execute(f"select count(*) from {t}").fetchone()[0]
       for t in ("setpoints", "measurements", "plans", "events")})
PY
echo "=== a register map of one's own beside the config, as a credential in a drop-in"
maps=$(echo /opt/dispatch/.venv/lib/python3*/site-packages/dispatch/devices/maps)
sed 's/^name = "huawei_sun2000_luna"/name = "my_pcs"/' "$maps/huawei_sun2000_luna.toml" > /etc/dispatch/my_pcs.toml
chmod 0600 /etc/dispatch/my_pcs.toml
sed -i 's/^register_map = "huawei_sun2000_luna"/register_map = "my_pcs.toml"/' /etc/dispatch/site.toml
mkdir -p /etc/systemd/system/dispatch.service.d
printf '[Service]\nLoadCredential=my_pcs.toml:/etc/dispatch/my_pcs.toml\n' \
  > /etc/systemd/system/dispatch.service.d/my-map.conf
systemctl daemon-reload && systemctl restart dispatch
sleep 20
systemctl show dispatch -p ActiveState -p SubState -p NRestarts -p ExecMainStatus
/opt/dispatch/.venv/bin/dispatch probe --config /etc/dispatch/site.toml | head -2
echo "=== the REST API's token as a credential (docs/integration.md): an operator write"
(umask 077; /opt/dispatch/.venv/bin/python -c 'import secrets; print(secrets.token_hex(24))' \
  > /etc/dispatch/api-token)
printf '\n[http]\ntoken_file = "api-token"\n' >> /etc/dispatch/site.toml
printf '[Service]\nLoadCredential=api-token:/etc/dispatch/api-token\n' \
  > /etc/systemd/system/dispatch.service.d/api-token.conf
/opt/dispatch/.venv/bin/dispatch check-config /etc/dispatch/site.toml > /dev/null && echo "check-config: ok"
systemctl daemon-reload && systemctl restart dispatch
sleep 15
systemctl show dispatch -p ActiveState -p SubState -p NRestarts
/opt/dispatch/.venv/bin/python - <<'PY'
import json, urllib.error, urllib.request
token = open("/etc/dispatch/api-token").read().strip()
def post(doc, tok=token):
    req = urllib.request.Request("http://127.0.0.1:8787/api/v1/mode", json.dumps(doc).encode(),
                                 {"Content-Type": "application/json", "Authorization": f"Bearer {tok}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
who = {"who": "readme check", "why": "operator write under the unit"}
print("no token:", post({"mode": "pause", "minutes": 5, **who}, "x" * 20)[0])
print("manual:", post({"mode": "manual", "p_batt_kw": -100, "minutes": 5, **who}))
print("auto:", post({"mode": "auto", **who}))
print("healthz:", urllib.request.urlopen("http://127.0.0.1:8787/healthz", timeout=5).status)
PY
echo "=== SIGTERM"
systemctl stop dispatch
systemctl show dispatch -p ActiveState -p ExecMainStatus -p Result
journalctl -u dispatch --no-pager | tail -3
echo "=== the former layout: config 0640 root:root in /etc/dispatch 0750, ConfigurationDirectory="
sed -e '/^LoadCredential=/d' -e 's|--config ${CREDENTIALS_DIRECTORY}/site.toml|--config %E/dispatch/site.toml|' \
    -e 's|^StateDirectoryMode=0700|StateDirectoryMode=0700\nConfigurationDirectory=dispatch\nConfigurationDirectoryMode=0750|' \
    /etc/systemd/system/dispatch.service > /etc/systemd/system/dispatch-old.service
sed -i 's/^register_map = "my_pcs.toml"/register_map = "huawei_sun2000_luna"/' /etc/dispatch/site.toml
chmod 0750 /etc/dispatch && chmod 0640 /etc/dispatch/site.toml
systemctl daemon-reload && systemctl start dispatch-old; sleep 10
systemctl show dispatch-old -p ActiveState -p ExecMainStatus -p NRestarts -p Result
journalctl -u dispatch-old --no-pager | grep "dispatch\[" | tail -2
EOF

timeout 1500 systemd-nspawn -D "$work/root" --register=no --keep-unit --link-journal=no \
  --uuid="$(tr -d - < /proc/sys/kernel/random/uuid)" --console=pipe -b \
  --bind="$work/out:/out" --bind="$work/checkout:/src/factory-dispatch" --bind-ro="$work/check:/check" \
  --bind-ro="$work/check/readme-check.service:/etc/systemd/system/readme-check.service" \
  -- systemd.wants=readme-check.service systemd.mask=postgresql.service > "$work/nspawn.log" 2>&1 || true
cp "$work/out/steps.log" "$log"
cat "$log"
grep -q '^=== steps exit 0' "$log"

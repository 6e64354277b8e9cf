#!/usr/bin/env bash
# The package proof of issue 12: builds the campus-pos .deb (packaging/build-deb.sh), checks its
# control data and file list (dpkg-deb -I / -c), verifies both systemd units
# (systemd-analyze verify, any warning fails), installs it into a scratch root (dpkg -x plus the
# maintainer scripts run by hand with DPKG_ROOT), checks both installed settings files with the
# installed binaries' check-config, starts both binaries from them for a few seconds (each must
# say READY=1 and WATCHDOG=1 on its NOTIFY_SOCKET, and the daemon must reach the till's link
# socket), and runs the preinst against a journal with
# an hour-old unsent sale (refused, then forced). Called by .ci/run; needs dpkg-deb,
# systemd-analyze and python3 (the notify socket's listener).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "check-package: FAILED: $*" >&2
    exit 1
}

deb=$(packaging/build-deb.sh | tail -n 1)
echo "== package $deb"

info=$(dpkg-deb -I "$deb")
for field in "Package: campus-pos" "Architecture: $(dpkg --print-architecture)" "Depends: "; do
    grep -qF "$field" <<<"$info" || fail "control has no '$field'"
done
for member in preinst postinst prerm postrm conffiles; do
    grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$member" <<<"$info" || fail "no $member"
done
list=$(dpkg-deb -c "$deb")
for path in ./usr/bin/pos-firmware ./usr/bin/sync-daemon \
    ./lib/systemd/system/campus-pos-till.service ./lib/systemd/system/campus-pos-sync.service \
    ./etc/campus-pos/till.toml ./etc/campus-pos/sync-daemon.toml \
    ./usr/share/doc/campus-pos/examples/till.toml ./usr/share/doc/campus-pos/examples/sync-daemon.toml \
    ./usr/share/doc/campus-pos/mosquitto/acl ./usr/share/doc/campus-pos/mosquitto/mosquitto.conf \
    ./usr/share/doc/campus-pos/device.md ./usr/share/doc/campus-pos/copyright; do
    grep -qE " ${path//./\\.}\$" <<<"$list" || fail "$path is not in the package"
done
# Nothing under /var or /run: the journal and the socket are the till's, never the package's.
if grep -qE " \./(var|run)/" <<<"$list"; then fail "the package ships files under /var or /run"; fi
grep -qE "root/root .* \./usr/bin/pos-firmware$" <<<"$list" || fail "binaries not owned by root"

root=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$root"
}
trap cleanup EXIT
dpkg -x "$deb" "$root"
dpkg-deb -e "$deb" "$root/DEBIAN"
conffiles=$(cat "$root/DEBIAN/conffiles")
[ "$conffiles" = "$(printf '/etc/campus-pos/till.toml\n/etc/campus-pos/sync-daemon.toml')" ] \
    || fail "conffiles: $conffiles"

echo "== the firmware is the device build"
"$root/usr/bin/pos-firmware" --help >"$root/help.txt"
grep -qE "^  device " "$root/help.txt" || fail "no device subcommand"
if grep -qE "^  (sim|script) " "$root/help.txt"; then fail "the simulator is in the package"; fi

echo "== systemd-analyze verify"
# The units' dependencies (sysinit.target, ...) come from the build machine's systemd.
cp -rn /lib/systemd/system/. "$root/lib/systemd/system/"
verify=$(systemd-analyze verify --root="$root" campus-pos-till.service campus-pos-sync.service 2>&1) \
    || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify warns: $verify"

echo "== postinst into the scratch root"
DPKG_ROOT="$root" "$root/DEBIAN/postinst" configure
[ -d "$root/var/lib/campus-pos" ] || fail "postinst made no data directory"

echo "== check-config on the installed settings (paths moved into the scratch root)"
sed -i -e "s#\"/etc/#\"$root/etc/#" -e "s#\"/var/#\"$root/var/#" -e "s#\"/run/#\"$root/run/#" \
    "$root/etc/campus-pos/till.toml" "$root/etc/campus-pos/sync-daemon.toml"
printf '7a%.0s' $(seq 32) >"$root/etc/campus-pos/card-master.key"
chmod 600 "$root/etc/campus-pos/card-master.key"
"$root/usr/bin/pos-firmware" check-config --config "$root/etc/campus-pos/till.toml"
"$root/usr/bin/sync-daemon" check-config --config "$root/etc/campus-pos/sync-daemon.toml"
sed 's/^window_batches = .*/window_batches = 99/' "$root/etc/campus-pos/sync-daemon.toml" >"$root/bad.toml"
set +e
"$root/usr/bin/sync-daemon" check-config --config "$root/bad.toml" 2>"$root/bad.err"
status=$?
set -e
[ "$status" = 2 ] && grep -q "window_batches: 99 is outside 1..=32" "$root/bad.err" \
    || fail "a bad sync-daemon.toml: exit $status, $(cat "$root/bad.err")"

echo "== both binaries start from the installed settings"
python3 - "$root/till.notify" "$root/sync.notify" >"$root/notify.log" <<'PY' &
import os, select, socket, sys, time
socks = {}
for path in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    socks[s] = os.path.basename(path).split(".")[0]
deadline = time.time() + 60
while time.time() < deadline:
    ready, _, _ = select.select(list(socks), [], [], 1)
    for s in ready:
        for line in s.recv(4096).decode().split("\n"):
            if line:
                print(socks[s], line, flush=True)
PY
pids+=($!)
for _ in $(seq 50); do [ -S "$root/sync.notify" ] && break; sleep 0.1; done
mkfifo "$root/keypad"
sleep 60 >"$root/keypad" &
pids+=($!)
NOTIFY_SOCKET="$root/till.notify" "$root/usr/bin/pos-firmware" device \
    --config "$root/etc/campus-pos/till.toml" --keypad "$root/keypad" --spi "$root/no-spidev" \
    >"$root/till.out" 2>"$root/till.err" &
till=$!
pids+=($till)
for _ in $(seq 200); do [ -S "$root/run/campus-pos/link.sock" ] && break; sleep 0.1; done
[ -S "$root/run/campus-pos/link.sock" ] || fail "no link socket: $(cat "$root/till.err")"
NOTIFY_SOCKET="$root/sync.notify" "$root/usr/bin/sync-daemon" \
    --config "$root/etc/campus-pos/sync-daemon.toml" 2>"$root/sync.err" &
sync=$!
pids+=($sync)
for _ in $(seq 100); do
    grep -q "^till WATCHDOG=1" "$root/notify.log" && grep -q "^sync READY=1" "$root/notify.log" \
        && grep -q "^sync WATCHDOG=1" "$root/notify.log" \
        && grep -q "link: daemon connected" "$root/till.err" && break
    sleep 0.1
done
kill -0 "$till" 2>/dev/null || fail "the till stopped: $(cat "$root/till.err")"
kill -0 "$sync" 2>/dev/null || fail "the sync daemon stopped: $(cat "$root/sync.err")"
for line in "till READY=1" "till WATCHDOG=1" "sync READY=1" "sync WATCHDOG=1"; do
    grep -q "^$line" "$root/notify.log" || fail "no '$line' on the notify socket: $(cat "$root/notify.log")"
done
grep -q "link: daemon connected" "$root/till.err" \
    || fail "the sync daemon never reached the till's installed link socket: $(cat "$root/sync.err")"
kill "$sync" "$till"
wait "$till" "$sync" 2>/dev/null || true
[ -e "$root/var/lib/campus-pos/db" ] || fail "the till kept no journal in the installed data_dir"

echo "== postinst again keeps the journal and an edited configuration"
echo "# edited on the till" >>"$root/etc/campus-pos/till.toml"
before=$(cd "$root" && find var/lib/campus-pos etc/campus-pos -type f -exec md5sum {} + | sort)
DPKG_ROOT="$root" "$root/DEBIAN/postinst" configure 0.1.0
after=$(cd "$root" && find var/lib/campus-pos etc/campus-pos -type f -exec md5sum {} + | sort)
[ "$before" = "$after" ] || fail "postinst changed the journal or the configuration"

echo "== preinst: a journal with an unsent sale older than an hour stops the upgrade"
DPKG_ROOT="$root" "$root/DEBIAN/preinst" upgrade 0.1.0 || fail "preinst refused a fresh journal"
old=$(mktemp -d)
printf 'type 12.5\nkeys Enter\ntap card-1\nexpect merchant 交易成功 | ¥12.50 | 余额 ¥87.50\n' \
    | cargo run -q --locked -p pos-firmware -- script - --data-dir "$old/data" \
        --start "2026-01-05 11:30" >/dev/null 2>"$root/script.err" \
    || fail "the scripted January sale: $(cat "$root/script.err")"
rm -rf "$root/var/lib/campus-pos"
mv "$old/data" "$root/var/lib/campus-pos"
rmdir "$old"
set +e
DPKG_ROOT="$root" "$root/DEBIAN/preinst" upgrade 0.1.0 2>"$root/preinst.err"
status=$?
set -e
[ "$status" = 1 ] && grep -q "refusing to upgrade: the journal holds [1-9][0-9]* records" "$root/preinst.err" \
    || fail "preinst on an hour-old unsent sale: exit $status, $(cat "$root/preinst.err")"
sed 's/^/   preinst said: /' "$root/preinst.err"
CAMPUS_POS_FORCE_UPGRADE=1 DPKG_ROOT="$root" "$root/DEBIAN/preinst" upgrade 0.1.0 2>"$root/preinst.err" \
    || fail "CAMPUS_POS_FORCE_UPGRADE=1 did not override: $(cat "$root/preinst.err")"
grep -q "upgrading anyway" "$root/preinst.err" || fail "the forced upgrade says nothing"
echo "== package checks passed"

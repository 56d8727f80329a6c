#!/usr/bin/env bash
# Installs the Debian package (scripts/package.sh) in a clean Debian bookworm
# chroot (mmdebstrap minbase: only what the package's dependencies pull in) and
# checks it as an operator would, without a running systemd:
#   - apt resolves the dependencies and installs it; the files are in place,
#     /etc files are conffiles; the man pages are there;
#   - the programs carry no debug information; the shell completions are in
#     bash's, zsh's and fish's vendor directories, equal to what gwctl generates,
#     and bash completes gwctl's subcommands and ipvsadm's options with them;
#   - gatewayd --version, --check-config on the packaged configuration, gwctl --help,
#     and gwctl(8) describes every long option `gwctl --help` and its
#     subcommands' --help list;
#   - systemd-analyze verify accepts the installed unit;
#   - the unit's ExecStartPre and ExecStart, run as systemd would (in a network
#     namespace of their own, so the demo's taps touch nothing, and with only the
#     unit's capabilities and no new privileges, by setpriv), start gatewayd
#     with the demo configuration: READY=1 arrives on $NOTIFY_SOCKET, gwctl
#     lists the demo's service, and SIGTERM gives STOPPING=1 and exit 0.
# Needs root, mmdebstrap and systemd (for systemd-analyze; scripts/setup.sh),
# Debian's package mirror, and free hugepages. The chroot is removed on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"

say() { echo "package-test: $*"; }
fail() { echo "package-test: FAILED: $*" >&2; exit 1; }

bash scripts/package.sh >/dev/null
DEB=$(ls -t "$TARGET"/debian/gatewayd_*.deb | head -n1)
say "testing $DEB"

ROOTFS=$(mktemp -d /tmp/gw-package-test.XXXXXX)
GATEWAYD_PID=""
LISTENER_PID=""
cleanup() {
    [[ -n "$GATEWAYD_PID" ]] && kill "$GATEWAYD_PID" 2>/dev/null || true
    [[ -n "$LISTENER_PID" ]] && kill "$LISTENER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    # Nothing is mounted under it (the run below mounts in its own namespace).
    rm -rf --one-file-system "$ROOTFS"
    rm -f "$ROOTFS.deb"
}
trap cleanup EXIT

say "installing it in a clean bookworm chroot"
cp "$DEB" "$ROOTFS.deb"
# systemd only for its units (sysinit.target ...) that systemd-analyze verify
# resolves the unit's dependencies against; nothing runs it.
mmdebstrap --quiet --variant=minbase --include=systemd \
    --customize-hook="copy-in $ROOTFS.deb /tmp" \
    --customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/$(basename "$ROOTFS").deb >/dev/null" \
    --customize-hook='rm -f "$1"/tmp/*.deb' \
    bookworm "$ROOTFS"
rm -f "$ROOTFS.deb"
in_chroot() { chroot "$ROOTFS" "$@"; }

for f in /usr/sbin/gatewayd /usr/sbin/gwctl /lib/systemd/system/gatewayd.service \
    /etc/gatewayd/gatewayd.json /etc/sysctl.d/60-gatewayd-hugepages.conf \
    /usr/share/man/man8/gatewayd.8.gz /usr/share/man/man8/gwctl.8.gz \
    /usr/share/bash-completion/completions/gwctl /usr/share/zsh/vendor-completions/_gwctl \
    /usr/share/fish/vendor_completions.d/gwctl.fish; do
    [[ -e "$ROOTFS$f" ]] || fail "$f is not installed"
done
for f in /usr/sbin/gatewayd /usr/sbin/gwctl; do
    # .debug_gdb_scripts is no debug information: a loaded section, which strip keeps.
    if readelf --wide --section-headers "$ROOTFS$f" | grep -qE '\.debug_(info|line|abbrev|str|ranges|loc)'; then
        fail "$f carries debug information"
    fi
done
conffiles=$(in_chroot dpkg-query -W -f='${Conffiles}' gatewayd)
for f in /etc/gatewayd/gatewayd.json /etc/sysctl.d/60-gatewayd-hugepages.conf; do
    grep -q " $f " <<<"$conffiles" || fail "$f is not a conffile: $conffiles"
done
say "installed: files in place, programs stripped, /etc files are conffiles"

in_chroot gatewayd --version | grep -q '^gatewayd ' || fail "gatewayd --version"
in_chroot gatewayd --check-config --config /etc/gatewayd/gatewayd.json | grep -q 'configuration valid' \
    || fail "the packaged configuration does not pass --check-config"
help=$(in_chroot gwctl --help)
grep -q '^Usage:' <<<"$help" || fail "gwctl --help: $help"
zcat "$ROOTFS/usr/share/man/man8/gatewayd.8.gz" | grep -q '^\.TH gatewayd 8' || fail "gatewayd.8 is not a man page"
zcat "$ROOTFS/usr/share/man/man8/gatewayd.8.gz" | grep -q 'check\\-config' || fail "gatewayd.8 lacks --check-config"
gwctl_man=$(zcat "$ROOTFS/usr/share/man/man8/gwctl.8.gz" | sed 's/\\-/-/g')
# The subcommands' options too, from each one's --help.
for sub in "addr add" "route add" "neigh add" "link" "stats" "mark add" "import-keepalived" "completions"; do
    # shellcheck disable=SC2086 # the subcommand's words
    help+=$'\n'$(in_chroot gwctl $sub --help)
done
for opt in $(grep -o -- '--[a-z][a-z-]*' <<<"$help" | sort -u); do
    grep -q -- "$opt" <<<"$gwctl_man" || fail "gwctl.8 does not describe $opt"
done
say "gatewayd --version, --check-config, gwctl --help and the man pages: ok"

# The installed completions are what the installed gwctl generates, and bash
# completes with them as bash-completion would load them (by name, on first use).
for shell_file in bash:/usr/share/bash-completion/completions/gwctl zsh:/usr/share/zsh/vendor-completions/_gwctl \
    fish:/usr/share/fish/vendor_completions.d/gwctl.fish; do
    in_chroot gwctl completions "${shell_file%%:*}" | cmp -s - "$ROOTFS${shell_file#*:}" \
        || fail "${shell_file#*:} is not what gwctl completions ${shell_file%%:*} prints"
done
completed=$(in_chroot bash -c 'source /usr/share/bash-completion/completions/gwctl
    COMP_WORDS=(gwctl ro); COMP_CWORD=1; _gwctl gwctl ro gwctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(gwctl --add-se); COMP_CWORD=1; _gwctl gwctl --add-se gwctl; echo "${COMPREPLY[*]}"')
[[ "$completed" == $'route\n--add-service --add-server' ]] || fail "bash completion of gwctl: $completed"
say "shell completions installed; bash completes gwctl's subcommands and ipvsadm's options"

# systemd-analyze checks the unit's syntax, directives, dependencies and that
# its programs exist, under --root (the chroot has systemd's own units for the
# dependencies: see --include above). It exits 0 on a directive it ignores,
# so any word from it is a failure. The man pages are checked above (--man=no:
# no man-db in the chroot).
verify=$(systemd-analyze verify --man=no --root="$ROOTFS" /lib/systemd/system/gatewayd.service 2>&1) \
    || fail "systemd-analyze verify rejected the unit: $verify"
[[ -z "$verify" ]] || fail "systemd-analyze verify: $verify"
say "systemd-analyze verify: ok"

# The unit's commands as systemd runs them: ExecStartPre, then ExecStart with
# $NOTIFY_SOCKET and the RuntimeDirectory made.
unit="$ROOTFS/lib/systemd/system/gatewayd.service"
pre=$(sed -n 's/^ExecStartPre=//p' "$unit")
start=$(sed -n 's/^ExecStart=//p' "$unit")
[[ -n "$pre" && -n "$start" ]] || fail "the unit has no ExecStartPre or ExecStart"
grep -qx 'Type=notify' "$unit" || fail "the unit is not Type=notify"
# shellcheck disable=SC2086 # the unit's command lines are split on spaces, as systemd does here
in_chroot $pre >/dev/null || fail "ExecStartPre failed: $pre"
mkdir -p "$ROOTFS/run/gatewayd" && chmod 0700 "$ROOTFS/run/gatewayd"
# The unit's CapabilityBoundingSet and NoNewPrivileges, applied with setpriv:
# gatewayd must start with only the capabilities the unit leaves it.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
[[ -n "$caps" ]] && grep -qx 'NoNewPrivileges=yes' "$unit" || fail "the unit lost its capability bounding set or NoNewPrivileges"
bounding="-all$(for c in $caps; do c=${c#CAP_}; printf ',+%s' "${c,,}"; done)"
python3 -u - "$ROOTFS/run/notify.sock" >"$ROOTFS/notify.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
while True:
    msg = s.recv(4096).decode()
    print(msg, flush=True)
    if "STOPPING=1" in msg:
        break
PY
LISTENER_PID=$!
for _ in $(seq 50); do [[ -S "$ROOTFS/run/notify.sock" ]] && break; sleep 0.1; done
# shellcheck disable=SC2086 # $start: the unit's command line, split as above
# A mount and network namespace of its own: /dev, /proc and /sys inside the
# chroot vanish with it, and the demo's net_tap interfaces live and die there.
unshare --mount --net --fork --propagation private sh -c '
    ip link set lo up && mount --rbind /dev "$0/dev" && mount -t proc proc "$0/proc" && mount -t sysfs sysfs "$0/sys" &&
    bounding=$1 && shift &&
    exec chroot "$0" setpriv --no-new-privs --bounding-set="$bounding" env NOTIFY_SOCKET=/run/notify.sock "$@"' \
    "$ROOTFS" "$bounding" $start >"$ROOTFS/gatewayd.log" 2>&1 &
UNSHARE_PID=$!
for _ in $(seq 300); do
    grep -q 'READY=1' "$ROOTFS/notify.log" && break
    kill -0 "$UNSHARE_PID" 2>/dev/null || break
    sleep 0.1
done
grep -q 'READY=1' "$ROOTFS/notify.log" || fail "no READY=1 from gatewayd:$(echo; cat "$ROOTFS/gatewayd.log")"
GATEWAYD_PID=$(ps -o pid= --ppid "$UNSHARE_PID" | tr -d ' ')
say "ExecStart: gatewayd (pid $GATEWAYD_PID) sent READY=1"
in_chroot gwctl -Ln | grep -q 'TCP  10.0.0.100:80 rr' || fail "gwctl -Ln does not list the demo's service"
in_chroot gwctl -Ln | grep -q '192.168.1.10:80' || fail "gwctl -Ln does not list the demo's servers"
kill -TERM "$GATEWAYD_PID"
wait "$UNSHARE_PID" || fail "gatewayd exited with status $? on SIGTERM:$(echo; cat "$ROOTFS/gatewayd.log")"
GATEWAYD_PID=""
wait "$LISTENER_PID" || fail "no STOPPING=1: $(cat "$ROOTFS/notify.log")"
LISTENER_PID=""
say "gwctl listed the demo service; SIGTERM: STOPPING=1, exit 0"
echo "package-test: 1 passed, 0 failed"

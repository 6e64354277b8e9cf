#!/usr/bin/env bash
# Builds the campus-pos Debian package (both binaries, the systemd units, the example settings,
# the Mosquitto examples) with dpkg-deb from a staged tree: no cargo-deb to install, so CI spends
# its minutes on the build itself (docs/device.md, "Install on a till").
#
#   packaging/build-deb.sh [--target TRIPLE] [--out DIR]
#
# TRIPLE: a Rust target (aarch64-unknown-linux-gnu -> arm64, armv7-unknown-linux-gnueabihf ->
# armhf); without it, the build machine's. STRIP names the strip tool for cross builds (e.g.
# STRIP=aarch64-linux-gnu-strip). Prints the package's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

target=""
out="target/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

case "$target" in
    "") arch=$(dpkg --print-architecture) ;;
    aarch64-unknown-linux-gnu) arch=arm64 ;;
    armv7-unknown-linux-gnueabihf) arch=armhf ;;
    x86_64-unknown-linux-gnu) arch=amd64 ;;
    *) echo "build-deb.sh: no Debian architecture known for $target" >&2; exit 2 ;;
esac
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

# The same target directory as .ci/run's device build, so CI builds the firmware once.
target_dir=target/device
target_args=()
bin_dir="$target_dir/release"
if [ -n "$target" ]; then
    target_args=(--target "$target")
    bin_dir="$target_dir/$target/release"
fi
cargo build --release --locked --target-dir "$target_dir" "${target_args[@]}" \
    -p pos-firmware --no-default-features --features device
cargo build --release --locked --target-dir "$target_dir" "${target_args[@]}" -p sync-daemon

stage="$out/stage-$arch"
rm -rf "$stage"
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" \
    "$stage/etc/campus-pos" "$stage/usr/share/doc/campus-pos/examples" \
    "$stage/usr/share/doc/campus-pos/mosquitto"
for bin in pos-firmware sync-daemon; do
    install -m 0755 "$bin_dir/$bin" "$stage/usr/bin/$bin"
    "${STRIP:-strip}" --strip-debug "$stage/usr/bin/$bin"
done
install -m 0644 packaging/systemd/campus-pos-till.service packaging/systemd/campus-pos-sync.service \
    "$stage/lib/systemd/system/"
install -m 0644 packaging/etc/till.toml packaging/etc/sync-daemon.toml "$stage/etc/campus-pos/"
install -m 0644 packaging/etc/till.toml packaging/etc/sync-daemon.toml \
    "$stage/usr/share/doc/campus-pos/examples/"
install -m 0644 docs/mosquitto/* "$stage/usr/share/doc/campus-pos/mosquitto/"
install -m 0644 docs/device.md docs/mqtt.md docs/link.md docs/card-layout.md \
    "$stage/usr/share/doc/campus-pos/"
install -m 0644 packaging/debian/copyright "$stage/usr/share/doc/campus-pos/copyright"
install -m 0644 packaging/debian/conffiles "$stage/DEBIAN/conffiles"
for script in preinst postinst prerm postrm; do
    install -m 0755 "packaging/debian/$script" "$stage/DEBIAN/$script"
done
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$installed_kb/" \
    packaging/debian/control > "$stage/DEBIAN/control"

deb="$out/campus-pos_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"

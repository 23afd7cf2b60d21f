#!/usr/bin/env bash
# Builds the release artifacts of pidzero into dist/:
#
#   dist/pidzero-VERSION-x86_64-linux-static          the static, stripped binary
#   dist/pidzero-VERSION-x86_64-linux-static.sha256   its checksum (`sha256sum -c` format)
#   dist/pidzero.1                                    the man page
#   dist/pidzero_VERSION_amd64.deb                    the Debian package
#   dist/pidzero_VERSION_amd64.deb.sha256             its checksum
#
# The binary is linked statically against glibc (`+crt-static`) so that it runs in
# any image, scratch and distroless included, and the .deb ships that same file as
# /usr/bin/pidzero (see [package.metadata.deb] in Cargo.toml). The script refuses
# to publish a binary that is not static or does not run.
#
# Installs what it lacks: help2man, man-db and file (apt), and cargo-deb
# (`cargo install cargo-deb --locked`).
# Run from anywhere, on x86_64 Linux (Debian or Ubuntu for the apt step).
set -euo pipefail
cd "$(dirname "$0")/.."

triple=x86_64-unknown-linux-gnu
dist=dist

log() { printf '==> %s\n' "$*"; }
die() {
    printf 'release.sh: %s\n' "$*" >&2
    exit 1
}

# The version from Cargo.toml, through cargo itself: `cargo pkgid` prints
# `path+file:///...#pidzero@0.1.0` (or `...#0.1.0` when the directory is named
# after the package).
pkgid=$(cargo pkgid --quiet)
version=${pkgid##*[#@]}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || die "cannot read the version from '$pkgid'"
static_name="pidzero-$version-x86_64-linux-static"

# --- tools -------------------------------------------------------------------
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
apt_need=()
command -v help2man >/dev/null 2>&1 || apt_need+=(help2man)
command -v man >/dev/null 2>&1 || apt_need+=(man-db)
command -v file >/dev/null 2>&1 || apt_need+=(file)
if ((${#apt_need[@]})); then
    log "installing ${apt_need[*]}"
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${apt_need[@]}"
fi
if ! cargo deb --version >/dev/null 2>&1; then
    log "installing cargo-deb"
    installing_since=$SECONDS
    cargo install cargo-deb --locked
    log "cargo-deb installed in $((SECONDS - installing_since)) s"
fi

# --- the static binary -------------------------------------------------------
log "building pidzero $version (static, $triple)"
building_since=$SECONDS
# The flag goes through RUSTFLAGS (not .cargo/config) so that the normal build
# stays dynamic; it also keeps this build in target/$triple, apart from it.
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$triple"
# Where cargo put it: CARGO_TARGET_DIR or build.target-dir may move target/.
target_dir=$(cargo metadata --no-deps --format-version 1 |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || die "cannot find cargo's target directory"
bin="$target_dir/$triple/release/pidzero"
log "built in $((SECONDS - building_since)) s"

# Static: no program interpreter and no shared library. `file` says
# "static-pie linked" (or "statically linked"); ldd says "statically linked"
# (or "not a dynamic executable" and fails).
file_out=$(file -b "$bin")
[[ $file_out == *"static-pie linked"* || $file_out == *"statically linked"* ]] ||
    die "$bin is not static: $file_out"
ldd_out=$(ldd "$bin" 2>&1 || true)
[[ $ldd_out == *"statically linked"* || $ldd_out == *"not a dynamic executable"* ]] ||
    die "$bin needs shared libraries: $ldd_out"

# It runs: the version, and the tini mode with a command that exits 0. A private
# config dir and socket keep the host's configuration and /run out of it.
got=$("$bin" --version)
[ "$got" = "pidzero $version" ] || die "$bin --version says '$got', not 'pidzero $version'"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
env -i PATH=/usr/bin:/bin "$bin" --config-dir "$scratch" --socket "$scratch/pidzero.sock" -- true ||
    die "$bin -- true exited $?"

mkdir -p "$dist"
rm -f "$dist/$static_name" "$dist/$static_name.sha256" "$dist"/pidzero_*.deb "$dist"/pidzero_*.deb.sha256 "$dist/pidzero.1" "$dist/changelog.gz"
cp "$bin" "$dist/$static_name"
(cd "$dist" && sha256sum "$static_name" >"$static_name.sha256")
log "$dist/$static_name: $(stat -c %s "$dist/$static_name") bytes"

# --- the man page ------------------------------------------------------------
# OPTIONS and the commands come from `pidzero --help`; the rest (FILES,
# ENVIRONMENT, EXIT STATUS, EXAMPLES, SEE ALSO) from the include file. The date
# is the last commit's, so that the same source gives the same page.
log "generating the man page"
if epoch=$(git log -1 --format=%ct 2>/dev/null) && [ -n "$epoch" ]; then
    export SOURCE_DATE_EPOCH=$epoch
fi
help2man --no-info --section=1 --include=docs/man/pidzero.h2m \
    --output="$dist/pidzero.1" "$bin"
warnings=$(MANWIDTH=80 man --warnings -l "$dist/pidzero.1" 2>&1 >/dev/null)
[ -z "$warnings" ] || die "man warns about $dist/pidzero.1: $warnings"

# --- the Debian package ------------------------------------------------------
# --no-build: package the binary checked above (cargo-deb maps the asset
# target/release/pidzero to target/$triple/release/pidzero with --target).
log "building the Debian package"
# Debian wants a changelog in every package. The project keeps its history in
# git, so the package's changelog has one entry per release that says so. The
# package is native (no Debian revision: pidzero_VERSION_amd64.deb), so the file
# is changelog.gz: cargo-deb's `changelog` key would name it changelog.Debian.gz.
maintainer=$(cargo metadata --no-deps --format-version 1 |
    sed -n 's/.*"deb":{[^}]*"maintainer":"\([^"]*\)".*/\1/p')
[ -n "$maintainer" ] || die "no [package.metadata.deb] maintainer in Cargo.toml"
cat >"$dist/changelog" <<EOF
pidzero ($version) unstable; urgency=medium

  * Release $version. The changes are in the project's git history.

 -- $maintainer  $(date -u -R -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")
EOF
gzip -9nf "$dist/changelog"
cargo deb --no-build --target "$triple" --output "$dist/pidzero_${version}_amd64.deb"
deb="$dist/pidzero_${version}_amd64.deb"
[ -f "$deb" ] || die "cargo deb did not write $deb"
(cd "$dist" && sha256sum "${deb##*/}" >"${deb##*/}.sha256")

log "done in $SECONDS s:"
ls -l "$dist"
cat "$dist/$static_name.sha256" "$deb.sha256"

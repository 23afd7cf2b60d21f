#!/usr/bin/env bash
# Release test: runs scripts/release.sh, then checks what it published the way a
# user meets it: the checksum file with `sha256sum -c`, the binary static and
# working (also as PID 1 and alone in an empty root, as in a scratch image), the
# man page, the .deb's control fields and paths, and the .deb installed with
# `dpkg -i` (then removed with `dpkg -r`).
#
# Not part of `cargo test` (a release build takes minutes): `.ci/run` calls it.
# Needs root (dpkg, chroot, unshare) and changes the machine's package database
# for the time of the test: meant for CI's throwaway machine. It refuses to run
# when a pidzero package is already installed, rather than remove it.
#
#   tests/release/run.sh             build with scripts/release.sh, then check
#   tests/release/run.sh --no-build  check the artifacts already in dist/
set -euo pipefail
cd "$(dirname "$0")/../.."

build=1
case "${1:-}" in
"") ;;
--no-build) build=0 ;;
*)
    echo "usage: $0 [--no-build]" >&2
    exit 2
    ;;
esac

[ "$(id -u)" -eq 0 ] || {
    echo "tests/release/run.sh: needs root (dpkg -i, chroot, unshare)" >&2
    exit 2
}
if dpkg-query -W -f='${Status}' pidzero 2>/dev/null | grep -q 'installed'; then
    echo "tests/release/run.sh: a pidzero package is already installed; remove it first (dpkg -r pidzero)" >&2
    exit 2
fi

if ((build)); then
    start=$(date +%s)
    scripts/release.sh
    echo "==> scripts/release.sh took $(($(date +%s) - start)) s"
fi

pkgid=$(cargo pkgid --quiet)
version=${pkgid##*[#@]}
static_name="pidzero-$version-x86_64-linux-static"
bin="dist/$static_name"
deb="dist/pidzero_${version}_amd64.deb"

passed=0
failed=0
# check DESCRIPTION COMMAND...: one test; the command's output is shown on failure.
check() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then
        passed=$((passed + 1))
        echo "ok   - $what"
    else
        failed=$((failed + 1))
        echo "FAIL - $what"
        [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/       /'
    fi
}

work=$(mktemp -d)
installed=0
cleanup() {
    if ((installed)); then
        dpkg -r pidzero >/dev/null 2>&1 || echo "tests/release/run.sh: dpkg -r pidzero failed" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- the static binary and its checksum --------------------------------------
check "the checksum file verifies with sha256sum -c" \
    bash -c "cd dist && sha256sum --check --strict '$static_name.sha256'"
check "the checksum file names the published binary" \
    grep -Eq "^[0-9a-f]{64}  $static_name\$" "dist/$static_name.sha256"
check "file(1) says the binary is static" \
    bash -c "file -b '$bin' | grep -Eq 'static-pie linked|statically linked'"
check "the binary has no program interpreter (PT_INTERP)" \
    bash -c "! readelf -lW '$bin' | grep -q INTERP"
check "ldd finds no shared library" \
    bash -c "ldd '$bin' 2>&1 | grep -Eq 'statically linked|not a dynamic executable'"
check "the binary is stripped" \
    bash -c "file -b '$bin' | grep -q ', stripped'"
check "--version prints 'pidzero $version'" \
    bash -c "[ \"\$('$bin' --version)\" = 'pidzero $version' ]"
check "'pidzero -- true' exits 0" \
    env -i PATH=/usr/bin:/bin "$bin" --config-dir "$work" --socket "$work/a.sock" -- true
check "'pidzero -- sh -c \"exit 3\"' passes the status 3 through" \
    bash -c "env -i PATH=/usr/bin:/bin '$bin' --config-dir '$work' --socket '$work/b.sock' -- sh -c 'exit 3'; [ \$? -eq 3 ]"
check "as PID 1 in a PID namespace, 'pidzero -- true' exits 0" \
    unshare --pid --fork --mount-proc env -i PATH=/usr/bin:/bin \
    "$bin" --config-dir "$work" --socket "$work/c.sock" -- true
# An empty root with the binary alone, like `FROM scratch`: no libc, no /proc,
# no /run, no /bin, and no option given. pidzero starts itself as the main command.
mkdir "$work/root"
cp "$bin" "$work/root/pidzero"
check "alone in an empty root, 'pidzero -- CMD' runs CMD with its output passed through" \
    bash -c "[ \"\$(chroot '$work/root' /pidzero -- /pidzero --version)\" = 'pidzero $version' ]"
check "alone in an empty root, 'pidzero -- CMD' exits with CMD's status" \
    bash -c "chroot '$work/root' /pidzero -- /pidzero --no-such-option 2>/dev/null; [ \$? -eq 2 ]"

# --- the man page ------------------------------------------------------------
check "man renders dist/pidzero.1 without warnings" \
    bash -c "w=\$(MANWIDTH=80 man --warnings -l dist/pidzero.1 2>&1 >/dev/null); [ -z \"\$w\" ] || { echo \"\$w\"; false; }"
MANWIDTH=80 man -l dist/pidzero.1 >"$work/man.txt" 2>/dev/null
for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" ENVIRONMENT FILES EXAMPLES "SEE ALSO"; do
    check "the man page has the section $section" grep -qx "$section" "$work/man.txt"
done
# From the include file (a help2man pattern that no longer matches drops its
# paragraph silently) and from --help (the options).
check "the man page describes the tini mode" grep -q 'drop-in for tini' "$work/man.txt"
check "the man page lists --config-dir and --remap-exit" \
    bash -c "grep -q -- '--config-dir <DIR>' '$work/man.txt' && grep -q -- '--remap-exit <CODE>' '$work/man.txt'"
check "the man page names the version" grep -q "pidzero $version" "$work/man.txt"

# --- the .deb, inspected -----------------------------------------------------
check "dpkg-deb -I: Package is pidzero" bash -c "[ \"\$(dpkg-deb --field '$deb' Package)\" = pidzero ]"
check "dpkg-deb -I: Version is $version" bash -c "[ \"\$(dpkg-deb --field '$deb' Version)\" = '$version' ]"
check "dpkg-deb -I: Architecture is amd64" bash -c "[ \"\$(dpkg-deb --field '$deb' Architecture)\" = amd64 ]"
check "dpkg-deb -I: Depends is empty (static binary)" bash -c "[ -z \"\$(dpkg-deb --field '$deb' Depends)\" ]"
check "dpkg-deb -I: Maintainer and Description are set" \
    bash -c "[ -n \"\$(dpkg-deb --field '$deb' Maintainer)\" ] && [ -n \"\$(dpkg-deb --field '$deb' Description)\" ]"
dpkg-deb --contents "$deb" >"$work/contents.txt"
for path in ./usr/bin/pidzero ./usr/share/man/man1/pidzero.1.gz ./usr/share/doc/pidzero/copyright \
    ./usr/share/doc/pidzero/README.md ./usr/share/doc/pidzero/changelog.gz \
    ./usr/share/doc/pidzero/LICENSE-MIT ./usr/share/doc/pidzero/LICENSE-APACHE; do
    check "dpkg-deb -c: the package holds $path" grep -Eq " ${path//./\\.}\$" "$work/contents.txt"
done
check "dpkg-deb -c: /usr/bin/pidzero is executable (755)" \
    grep -Eq '^-rwxr-xr-x .* \./usr/bin/pidzero$' "$work/contents.txt"
check "dpkg-deb -c: nothing outside /usr" bash -c "! grep -Ev ' \./(usr/.*)?\$' '$work/contents.txt'"
dpkg-deb --extract "$deb" "$work/deb"
check "the .deb's checksum file verifies with sha256sum -c" \
    bash -c "cd dist && sha256sum --check --strict '${deb##*/}.sha256'"
check "the package's /usr/bin/pidzero is the published static binary" \
    cmp "$bin" "$work/deb/usr/bin/pidzero"

# --- the .deb, installed -----------------------------------------------------
installed=1
check "dpkg -i installs the package" dpkg -i "$deb"
check "/usr/bin/pidzero --version prints 'pidzero $version'" \
    bash -c "[ \"\$(/usr/bin/pidzero --version)\" = 'pidzero $version' ]"
check "dpkg knows the package as installed, version $version" \
    bash -c "[ \"\$(dpkg-query -W -f='\${Status} \${Version}' pidzero)\" = 'install ok installed $version' ]"
check "man -w pidzero finds /usr/share/man/man1/pidzero.1.gz" \
    bash -c "[ \"\$(man -w pidzero)\" = /usr/share/man/man1/pidzero.1.gz ]"
check "man pidzero renders the installed page without warnings" \
    bash -c "w=\$(MANWIDTH=80 man --warnings pidzero 2>&1 >/dev/null); [ -z \"\$w\" ] || { echo \"\$w\"; false; }"
# An installed pidzero reads /etc/pidzero (nothing sits beside /usr/bin/pidzero).
if [ -e /etc/pidzero ]; then
    check "/etc/pidzero did not exist before the test" false
else
    mkdir /etc/pidzero
    printf '[{"name": "job", "command": ["/bin/true"]}]\n' >/etc/pidzero/daemons.json
    check "the installed pidzero reads /etc/pidzero/daemons.json by default" \
        bash -c "/usr/bin/pidzero check | grep -q '^/etc/pidzero/daemons.json: 1 daemon(s) OK'"
    rm -r /etc/pidzero
fi
check "dpkg -r removes the package" dpkg -r pidzero
installed=0
check "after dpkg -r, /usr/bin/pidzero and its man page are gone" \
    bash -c "[ ! -e /usr/bin/pidzero ] && [ ! -e /usr/share/man/man1/pidzero.1.gz ]"

echo "==> sizes: static binary $(stat -c %s "$bin") bytes, .deb $(stat -c %s "$deb") bytes"
echo "release: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

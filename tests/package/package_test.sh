#!/usr/bin/env bash
# The package tier (ctest -L package): streamrun used from another project.
#
#   package_test.sh install BUILD_DIR SOURCE_DIR   # cmake --install into a temporary prefix,
#                                                   # then examples/out-of-tree built against it
#   package_test.sh deb BUILD_DIR SOURCE_DIR       # cpack -G DEB; the .deb's dependencies
#                                                   # resolve (apt-get --simulate), its files
#                                                   # run, the example builds against them
# Each ends with the example's self-test, whose lines say what passed.
set -euo pipefail
mode=$1
build=$(realpath "$2")
source=$(realpath "$3")
work=$(mktemp -d /tmp/streamrun-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

fail() {
  echo "package_test: $*" >&2
  exit 1
}

case "$mode" in
  install)
    cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" ||
      { cat "$work/install.log" >&2; fail "cmake --install failed"; }
    prefix=$work/prefix
    ;;
  deb)
    (cd "$work" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/deb" \
      >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log" >&2; fail "cpack -G DEB failed"; }
    deb=$(find "$work/deb" -maxdepth 1 -name 'libstreamrun-dev_*.deb' | head -1)
    [ -n "$deb" ] || fail "cpack made no libstreamrun-dev_*.deb (in $work/deb: $(ls "$work/deb"))"
    dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p'
    # Every dependency must name a package apt can install; on this machine they are installed.
    apt-get install --simulate --no-install-recommends "$deb" >"$work/apt.log" 2>&1 ||
      { cat "$work/apt.log" >&2; fail "apt cannot install $deb"; }
    grep -q "^Inst libstreamrun-dev" "$work/apt.log" ||
      { cat "$work/apt.log" >&2; fail "apt would not install libstreamrun-dev"; }
    dpkg-deb -x "$deb" "$work/root"
    prefix=$work/root/usr
    [ -n "$(find "$prefix" -name streamrunConfig.cmake)" ] || fail "no streamrunConfig.cmake in $deb"
    ;;
  *)
    fail "unknown mode '$mode' (install or deb)"
    ;;
esac

"$prefix/bin/streamrun" --version || fail "the installed streamrun does not run"
[ -f "$prefix/include/streamrun/runtime/application.h" ] || fail "headers not installed"

cmake -S "$source/examples/out-of-tree" -B "$work/example" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; fail "configuring examples/out-of-tree against $prefix failed"; }
cmake --build "$work/example" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; fail "building examples/out-of-tree against $prefix failed"; }
"$work/example/order-counter" --self-test

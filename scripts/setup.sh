#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages (apt), then configures and
# builds streamrun into ./build with two jobs. Idempotent: installs only what is missing and
# rebuilds only what changed. Runs as root, or through sudo otherwise.
#
#   BUILD_DIR=build-asan CMAKE_ARGS="-DSTREAMRUN_SANITIZE=address" scripts/setup.sh
#   BUILD_TARGET=streamrun_cli scripts/setup.sh   # build one target only
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
read -r -a extra_cmake_args <<<"${CMAKE_ARGS:-}"

packages=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev librocksdb-dev libyaml-cpp-dev libboost-fiber-dev libboost-context-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  liblua5.4-dev kcat clang-format clang libclang-rt-14-dev curl
  prometheus chromium fonts-dejavu-core libpng-dev
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
fi

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" \
  "${extra_cmake_args[@]}"
cmake --build "$BUILD_DIR" -j2 ${BUILD_TARGET:+--target "$BUILD_TARGET"}

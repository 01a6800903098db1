#!/usr/bin/env bash
# llama.cpp's own `llama-bench`, to run beside `pae-local bench` on the same file:
#
#   benches/llama-bench.sh -m models/SmolLM2-135M-Instruct.Q4_1.gguf -t 2 -p 512 -n 128 -r 3
#   pae-local bench -m models/SmolLM2-135M-Instruct.Q4_1.gguf -t 2 -p 512 -n 128 -r 3
#
# Built once from the llama.cpp that the PyPI package llama-cpp-python vendors (PyPI is
# reachable where model hubs and GitHub may not be), with CMake, for this CPU, into a cache
# folder outside the repository; later runs start at once. Compare the two as ratios measured
# in one sitting, never absolute figures from different runs or machines.
#
# Environment: LLAMA_CPP_PYTHON_VERSION (default 0.3.36; 0.3.8 on CPUs with AMX, where newer
# native builds crash in their AMX path), LLAMA_CMAKE_FLAGS (default -DGGML_NATIVE=ON),
# PEER_CACHE (default ~/.cache/pae-local-peer), PYPI_SIMPLE (the package index, default
# https://pypi.org/simple). Needs python3, cmake (`pip install cmake` where it is missing) and a
# C++ compiler; the first build takes about 10 minutes on 2 cores.
set -euo pipefail

if grep -q amx_tile /proc/cpuinfo 2>/dev/null; then version=0.3.8; else version=0.3.36; fi
version=${LLAMA_CPP_PYTHON_VERSION:-$version}
cache=${PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pae-local-peer}
bin="$cache/llama-bench-$version"

if [ ! -x "$bin" ]; then
  for tool in python3 cmake c++; do
    command -v "$tool" >/dev/null || { echo "error: building llama-bench needs $tool" >&2; exit 1; }
  done
  src="$cache/src"
  mkdir -p "$src"
  echo "building llama-bench from llama-cpp-python $version (once) in $cache" >&2
  # The sdist straight from the package index, checked against the index's sha256: `pip
  # download --no-binary :all:` would first build the sdist's build tools (CMake itself) from
  # source just to read its metadata.
  python3 - "$version" "$src" "${PYPI_SIMPLE:-https://pypi.org/simple}" <<'PY'
import hashlib, re, sys, urllib.request
version, dest, index = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/")
name = f"llama_cpp_python-{version}.tar.gz"
page = urllib.request.urlopen(f"{index}/llama-cpp-python/", timeout=60).read().decode()
m = re.search(r'href="([^"#]*/' + re.escape(name) + r')#sha256=([0-9a-f]{64})"', page)
if not m:
    sys.exit(f"error: {name} is not on {index}/llama-cpp-python/")
data = urllib.request.urlopen(m.group(1), timeout=600).read()
if hashlib.sha256(data).hexdigest() != m.group(2):
    sys.exit(f"error: {name} does not match the index's sha256")
open(f"{dest}/{name}", "wb").write(data)
PY
  tar -xzf "$src/llama_cpp_python-$version.tar.gz" -C "$src"
  build="$cache/build-$version"
  # shellcheck disable=SC2086 # the flags are a list
  cmake -S "$src/llama_cpp_python-$version/vendor/llama.cpp" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF \
    ${LLAMA_CMAKE_FLAGS:--DGGML_NATIVE=ON} >"$cache/cmake-$version.log" 2>&1 \
    || { echo "error: cmake failed; see $cache/cmake-$version.log" >&2; exit 1; }
  cmake --build "$build" -j "$(nproc)" --target llama-bench >"$cache/build-$version.log" 2>&1 \
    || { echo "error: the build failed; see $cache/build-$version.log" >&2; exit 1; }
  cp "$build/bin/llama-bench" "$bin"
fi
exec "$bin" "$@"

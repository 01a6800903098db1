#!/usr/bin/env bash
# Builds `dist/pae-local-cuda.gz`: pae-local with `--features cuda`, on a machine that has no
# GPU and no system CUDA toolkit.
#
# The toolkit comes from NVIDIA's PyPI wheels, all CUDA 13.0.x: a newer nvcc emits PTX that a
# CUDA 13.0 driver (580) refuses (CUDA_ERROR_UNSUPPORTED_PTX_VERSION). The wheels carry no
# `libcuda` (the driver provides it at run time), so a link-time stub with the same SONAME and
# one empty function per `cu*` name in `cuda.h` stands in for it while linking.
#
# The result needs libcuda.so.1, libcublas.so.13, libcudart.so.13 and libcurand.so.10 just to
# start, even for CPU work, which is why it is a separate artefact and the CPU build stays the
# default. On the GPU machine: LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib.
#
# Environment: CUDA_COMPUTE_CAP (default 90, Hopper), CUDA_WHEELS (where the toolkit goes,
# default target/cuda-toolkit), JOBS (cargo -j).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
toolkit=${CUDA_WHEELS:-$repo/target/cuda-toolkit}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}

wheels=(
  "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*"
  "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-nvrtc==13.0.*"
  "nvidia-cublas==13.0.*" "nvidia-curand==10.4.0.*"
)

if [ ! -x "$toolkit/nvidia/cu13/bin/nvcc" ]; then
  echo "fetching the CUDA 13.0 toolkit wheels into $toolkit" >&2
  mkdir -p "$toolkit/wheels"
  python3 -m pip download -q --no-deps --only-binary=:all: \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    --python-version 3.12 --implementation cp -d "$toolkit/wheels" "${wheels[@]}"
  for w in "$toolkit"/wheels/*.whl; do
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$w" "$toolkit"
  done
  chmod +x "$toolkit"/nvidia/cu13/bin/* "$toolkit"/nvidia/cu13/nvvm/bin/* 2>/dev/null || true
fi

cu="$toolkit/nvidia/cu13"
[ -x "$cu/bin/nvcc" ] || { echo "error: no nvcc at $cu/bin/nvcc after unpacking the wheels" >&2; exit 1; }

# Link-time stand-ins: the stub driver library and the unversioned names the linker looks for.
stub="$toolkit/link"
mkdir -p "$stub"
if [ ! -f "$stub/libcuda.so" ]; then
  grep -o '\bcu[A-Z][A-Za-z0-9_]*' "$cu/include/cuda.h" | sort -u | sed 's/.*/void &(void) {}/' >"$stub/cuda_stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so" "$stub/cuda_stub.c"
fi
for lib in cudart cublas cublasLt curand nvrtc; do
  real=$(find "$cu/lib" -maxdepth 1 -name "lib$lib.so.*" | sort | head -n 1)
  [ -n "$real" ] || { echo "error: lib$lib.so.* is missing from $cu/lib" >&2; exit 1; }
  ln -sf "$real" "$stub/lib$lib.so"
done

export CUDA_HOME="$cu" CUDA_ROOT="$cu" CUDA_PATH="$cu" NVCC="$cu/bin/nvcc"
export PATH="$cu/bin:$cu/nvvm/bin:$PATH"
export LIBRARY_PATH="$stub:$cu/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$stub:$cu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RUSTFLAGS="${RUSTFLAGS:-} -L $stub -L $cu/lib"
# A separate target folder: the flags differ from the CPU build's, which would otherwise be
# rebuilt from scratch after every CUDA build.
export CARGO_TARGET_DIR="$repo/target/cuda"

cargo build --release --features cuda --bin pae-local ${JOBS:+-j "$JOBS"}

mkdir -p dist
gzip -c "$CARGO_TARGET_DIR/release/pae-local" >dist/pae-local-cuda.gz
ls -l "$CARGO_TARGET_DIR/release/pae-local" dist/pae-local-cuda.gz >&2
echo "dist/pae-local-cuda.gz: gunzip it on the GPU machine and run it with" >&2
echo "  LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib" >&2

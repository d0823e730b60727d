#!/usr/bin/env bash
# Seeds the fuzz corpora (controller/fuzz/corpus/<target>/) from the compose
# test corpus ($STACKD_CORPUS, or shared/corpus beside the checkout) and the
# repo's manifests/. Seeds are named by their SHA-1, so running it again
# adds nothing twice; libFuzzer keeps what it finds beside them.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$fuzz/../.." && pwd)"

corpus="${STACKD_CORPUS:-}"
if [ -z "$corpus" ]; then
  for up in "$root/.." "$root/../.." "$root/../../.."; do
    if [ -f "$up/shared/corpus/index.json" ]; then
      corpus="$(cd "$up/shared/corpus" && pwd)"
      break
    fi
  done
fi
if [ -z "$corpus" ] || [ ! -d "$corpus/cases" ]; then
  echo "seed.sh: compose corpus not found; set STACKD_CORPUS" >&2
  exit 1
fi

for target in load merge interpolate units stack_manifest; do
  mkdir -p "$fuzz/corpus/$target"
done

# Writes stdin to corpus/$1/<sha1 of the content>.
seed() {
  local data sum
  data="$(mktemp)"
  cat >"$data"
  if [ -s "$data" ]; then
    sum="$(sha1sum "$data" | cut -c1-40)"
    mv "$data" "$fuzz/corpus/$1/$sum"
  else
    rm -f "$data"
  fi
}

# The compose files of every case (not the oracle's outputs).
compose_files() {
  find "$corpus/cases" "$root/manifests" -type f \( -name '*.yaml' -o -name '*.yml' \) \
    ! -name 'expected*' ! -name 'upstream-want.yaml' ! -name 'kompose-expected*' \
    ! -name 'kubernetes.yaml' | sort
}

while IFS= read -r file; do
  seed load <"$file"
  # The same project wrapped as a Stack manifest's inline spec.compose.
  if ! grep -q '^kind: Stack' "$file"; then
    { printf 'apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata:\n  name: seed\nspec:\n  compose:\n'
      sed 's/^/    /' "$file"; } | seed stack_manifest
  else
    seed stack_manifest <"$file"
  fi
  # Every line with a `$`: the value after the first `: ` or `- `.
  { grep -h '\$' "$file" || true; } | sed -E 's/^[[:space:]]*(- )?([A-Za-z0-9_.-]+: )?//' | head -n 50 |
    while IFS= read -r line; do
      printf '%s\0---\0value' "$line" | seed interpolate
    done
done < <(compose_files)

# Multi-file cases: the first two files of `args`, joined as merge expects.
while IFS= read -r args; do
  dir="$(dirname "$args")"
  mapfile -t files <"$args"
  if [ "${#files[@]}" -ge 2 ] && [ -f "$dir/${files[0]}" ] && [ -f "$dir/${files[1]}" ]; then
    { cat "$dir/${files[0]}"; printf '\0---\0'; cat "$dir/${files[1]}"; } | seed merge
  fi
done < <(find "$corpus/cases" -name args -type f | sort)

# Unit parsers: the first byte picks the parser (see fuzz_targets/units.rs).
unit() { printf "\\x$(printf '%02x' "$1")%s" "$2" | seed units; }
for text in 0s 10s 1m30s 1h2m3.5s 1.5h 100ms 250us 3ns -1s 2562047h; do unit 0 "$text"; unit 1 "$text"; done
for text in 512 512m 1.5G 2gb 100KiB '100 KiB' 1e3 0x10 9223372036854775807b; do unit 2 "$text"; done
for text in 0.5 2 0.000001 1e2 -1 NaN; do unit 3 "$text"; done
for text in 0755 0o644 0400 777 0x1ff; do unit 4 "$text"; done
for text in 80 8080:80 127.0.0.1:8000-8010:80-90/udp '[::1]:53:53/udp' 0.0.0.0::80 '${PORT}:80' 65536:1; do unit 5 "$text"; done

for target in load merge interpolate units stack_manifest; do
  printf '%-15s %5d seeds\n' "$target" "$(find "$fuzz/corpus/$target" -type f | wc -l)"
done

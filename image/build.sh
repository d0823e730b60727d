#!/usr/bin/env bash
# Builds the stackd container image with no registry: a statically linked
# release binary built on this machine, put into the final (FROM scratch)
# stage of the repository's Dockerfile with `docker build` of a context that
# holds only that binary and an empty state directory.
#
#   image/build.sh [--no-cargo]     tags stackd:<version> and stackd:latest
#
# STACKD_IMAGE overrides the repository name; STACKD_BINARY uses a binary
# already built (implies --no-cargo). Idempotent: when the image already
# carries the digest of this binary and stage, nothing is rebuilt.
set -euo pipefail

self="$(readlink -f "${BASH_SOURCE[0]}")"
root="$(cd "$(dirname "$self")/.." && pwd)"
repo="${STACKD_IMAGE:-stackd}"
DIGEST_LABEL=dev.stackd.image.content-digest

cargo=1
for arg in "$@"; do
  case "$arg" in
    --no-cargo) cargo=0 ;;
    *) echo "build.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

command -v docker >/dev/null || { echo "build.sh: docker CLI not found" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "build.sh: the Docker engine does not answer" >&2; exit 1; }

triple="$(uname -m)-unknown-linux-gnu"
if [ -n "${STACKD_BINARY:-}" ]; then
  binary="$STACKD_BINARY"
else
  target_dir="${CARGO_TARGET_DIR:-$root/target}"
  binary="$target_dir/$triple/release/stackd"
  if [ "$cargo" = 1 ]; then
    # Run from a test (cargo test), the environment carries the variables
    # cargo sets for the crate under test; build scripts (ring's) ask to be
    # rerun when those change, which would rebuild half the tree each time.
    for var in $(compgen -e); do
      case "$var" in
        CARGO_PKG_*|CARGO_MANIFEST_*|CARGO_CRATE_*|CARGO_BIN_*|CARGO_PRIMARY_PACKAGE|CARGO_TARGET_TMPDIR|CARGO_CFG_*|OUT_DIR)
          unset "$var" ;;
      esac
    done
    started=$SECONDS
    # --target keeps crt-static off build scripts and proc macros (they
    # must stay dynamic to be loaded by the compiler) and puts this build
    # in its own directory, beside the ordinary builds, not over them.
    (cd "$root" && RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --release --locked --target "$triple" -p stackd)
    echo "build.sh: cargo build took $((SECONDS - started)) s"
  fi
fi
[ -x "$binary" ] || { echo "build.sh: no binary at $binary (run without --no-cargo)" >&2; exit 1; }

# A static binary has no program interpreter (PT_INTERP): a scratch image
# has no dynamic loader to run anything else.
if command -v readelf >/dev/null; then
  if readelf -l "$binary" | grep -q 'Requesting program interpreter'; then
    echo "build.sh: $binary is dynamically linked" >&2
    exit 1
  fi
elif ldd "$binary" >/dev/null 2>&1; then
  echo "build.sh: $binary is dynamically linked (ldd lists libraries)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if command -v strip >/dev/null; then
  strip -o "$work/stackd" "$binary"
else
  cp "$binary" "$work/stackd"
fi
chmod 0755 "$work/stackd"
mkdir "$work/state"
version="$("$work/stackd" --version | awk '{print $2}')"
[ -n "$version" ] || { echo "build.sh: $binary --version printed nothing" >&2; exit 1; }

# The Dockerfile's last stage, with its builder copies taken from the
# context instead.
awk '/^FROM /{stage=""} {stage = stage $0 "\n"} END {printf "%s", stage}' "$root/Dockerfile" \
  | sed -E 's#^COPY --from=builder (--chown=[^ ]+ )?/out/([^ ]+) #COPY \1\2 #' > "$work/Dockerfile"
head -1 "$work/Dockerfile" | grep -qx 'FROM scratch' \
  || { echo "build.sh: the Dockerfile's last stage is not FROM scratch" >&2; exit 1; }
if grep -q -- '--from=' "$work/Dockerfile"; then
  echo "build.sh: a COPY of the last stage was not rewritten:" >&2
  grep -- '--from=' "$work/Dockerfile" >&2
  exit 1
fi

digest="$( (sha256sum < "$work/stackd"; cat "$work/Dockerfile") | sha256sum | cut -c1-32)"
current="$(docker image inspect -f "{{ index .Config.Labels \"$DIGEST_LABEL\" }}" "$repo:$version" 2>/dev/null || true)"
if [ "$current" = "$digest" ]; then
  docker tag "$repo:$version" "$repo:latest"
  echo "build.sh: $repo:$version is current ($digest)"
  exit 0
fi

previous="$(docker image inspect -f '{{.Id}}' "$repo:latest" 2>/dev/null || true)"
DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" docker build -q \
  --label "$DIGEST_LABEL=$digest" \
  --label "org.opencontainers.image.version=$version" \
  -t "$repo:$version" -t "$repo:latest" "$work" >/dev/null
size="$(docker image inspect -f '{{.Size}}' "$repo:latest")"
echo "build.sh: built $repo:$version ($((size / 1024)) KiB, binary $(($(stat -c %s "$work/stackd") / 1024)) KiB)"
# The image this one replaced is left untagged; remove it unless something
# still uses it (then the engine refuses, which is fine).
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$repo:latest")" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi

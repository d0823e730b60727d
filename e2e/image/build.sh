#!/usr/bin/env bash
# Builds the e2e test image `stackd-busybox:latest` without a registry:
# Debian's busybox-static, a rootfs with an applet link per command, a few
# users and a document root for httpd, imported with `docker import`.
# Idempotent and quick: the image carries two labels, a digest of the recipe
# (this script plus the package version apt would fetch) checked before
# anything is downloaded, and a digest of the rootfs tar checked after it is
# built; the image is re-imported only when the rootfs differs.
set -euo pipefail

self="$(readlink -f "${BASH_SOURCE[0]}")"
IMAGE="${STACKD_E2E_IMAGE:-stackd-busybox:latest}"
RECIPE_LABEL=dev.stackd.e2e.recipe-digest
LABEL=dev.stackd.e2e.rootfs-digest

command -v docker >/dev/null || { echo "build.sh: docker CLI not found" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "build.sh: the Docker engine does not answer" >&2; exit 1; }

label_of() {
  docker image inspect -f "{{ index .Config.Labels \"$1\" }}" "$IMAGE" 2>/dev/null || true
}

# Fast path: the same script and the same candidate version as last time.
candidate="$(apt-cache policy busybox-static 2>/dev/null | sed -n 's/^ *Candidate: *//p')"
recipe=""
if [ -n "$candidate" ] && [ "$candidate" != "(none)" ]; then
  recipe="$( { cat "$self"; echo "$candidate"; } | sha256sum | cut -c1-32)"
  if [ "$(label_of "$RECIPE_LABEL")" = "$recipe" ]; then
    echo "build.sh: $IMAGE is current (recipe $recipe)"
    exit 0
  fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# The .deb: apt-get download needs package lists; fetch them once if missing.
if ! apt-get download busybox-static >/dev/null 2>&1; then
  apt-get update -qq
  apt-get download busybox-static >/dev/null
fi
deb="$(ls busybox-static_*.deb)"
dpkg-deb -x "$deb" extract
bb="extract/bin/busybox"
[ -x "$bb" ] || { echo "build.sh: $deb has no bin/busybox" >&2; exit 1; }

root="$work/rootfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,var/www,root,home/app,proc,sys,dev,run}
cp "$bb" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# One link per applet, where busybox itself would install it, so both
# `/bin/sh` and `/usr/bin/wget` style paths exist.
"$root/bin/busybox" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$root/$(dirname "$applet")"
  ln -sf /bin/busybox "$root/$applet"
done
# Older builds lack --list-full's paths for a few applets: make sure the
# plain names are in /bin as well.
"$root/bin/busybox" --list | while read -r applet; do
  [ -e "$root/bin/$applet" ] || [ -e "$root/usr/bin/$applet" ] || [ -e "$root/sbin/$applet" ] \
    || [ -e "$root/usr/sbin/$applet" ] || ln -sf /bin/busybox "$root/bin/$applet"
done

cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$root/etc/group" <<'G'
root:x:0:
app:x:1000:
nogroup:x:65534:
G
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"
chown 1000:1000 "$root/home/app"
printf '<!doctype html><title>stackd e2e</title><p>stackd e2e</p>\n' > "$root/var/www/index.html"
printf 'ok\n' > "$root/var/www/health"
# The coordination server's metrics endpoint (static, but shaped like one).
printf '# TYPE up gauge\nup 1\n' > "$root/var/www/metrics"

# Deterministic tar (sorted, fixed owner for everything but /home/app, fixed
# times) so the digest names the content, not the build moment.
tar_rootfs() {
  tar -C "$root" --sort=name --mtime=@0 --numeric-owner -c .
}
digest="$(tar_rootfs | sha256sum | cut -c1-32)"

if [ -z "$recipe" ]; then
  # The package lists were missing before the download refreshed them.
  candidate="$(dpkg-deb -f "$deb" Version)"
  recipe="$( { cat "$self"; echo "$candidate"; } | sha256sum | cut -c1-32)"
fi

if [ "$(label_of "$LABEL")" = "$digest" ] && [ "$(label_of "$RECIPE_LABEL")" = "$recipe" ]; then
  echo "build.sh: $IMAGE is current ($digest)"
  exit 0
fi

previous="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
tar_rootfs | docker import \
  --change 'CMD ["sh"]' \
  --change "LABEL $LABEL=$digest" \
  --change "LABEL $RECIPE_LABEL=$recipe" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  - "$IMAGE" >/dev/null
echo "build.sh: built $IMAGE ($digest, $(basename "$deb"))"
# The image this one replaced is left untagged; remove it unless a container
# still uses it (then the engine refuses, which is fine).
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi

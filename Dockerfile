# stackd in a container: a statically linked binary in an empty image,
# running as a non-root user (65532) that needs no /etc/passwd.
#
#   docker build -t stackd .
#   docker run -d --name stackd \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v "$PWD/stacks:/stacks:ro" -v stackd-state:/state \
#     -p 127.0.0.1:9477:9477 stackd
#
# The user needs the socket's group to reach the engine (--group-add). On a
# machine with no registry to pull the builder from, `just image` puts a
# binary built on the host into this file's final stage (image/build.sh).

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# The gnu target links glibc statically with crt-static (TLS is rustls, so
# nothing else is native). --target keeps the flag off build scripts and
# proc macros, which must stay dynamic.
RUN target="$(uname -m)-unknown-linux-gnu" \
 && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$target" -p stackd \
 && mkdir -p /out/state \
 && strip -o /out/stackd "target/$target/release/stackd" \
 && /out/stackd --version

# The runtime stage. image/build.sh builds exactly this stage from a local
# binary, rewriting each `COPY --from=builder /out/X` to `COPY X`.
FROM scratch
COPY --from=builder /out/stackd /stackd
COPY --from=builder --chown=65532:65532 /out/state /state
USER 65532:65532
EXPOSE 9477
ENTRYPOINT ["/stackd"]
CMD ["watch", "/stacks", "--state-dir", "/state", "--metrics-addr", "0.0.0.0:9477"]

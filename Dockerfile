# syntax=docker/dockerfile:1
#
# rampart container image.
#
#   docker build -t rampart .
#   docker run -d --name rampart -p 8080:8080 -p 127.0.0.1:9090:9090 \
#       -e RAMPART_UPSTREAM=api:8000 rampart
#
# Configuration: /etc/rampart/rampart.toml (a copy of conf/docker.toml, which listens on
# 0.0.0.0). Use your own by mounting it over that path:
#   docker run ... -v "$PWD/my.toml:/etc/rampart/rampart.toml:ro" rampart
# Validate a file without serving:
#   docker run --rm -v "$PWD/my.toml:/etc/rampart/rampart.toml:ro" rampart check -c /etc/rampart/rampart.toml
#
# Reload (re-reads the config and the certificates; an invalid file is logged and the
# running configuration is kept):
#   docker kill -s HUP <container>
# Stop: `docker stop` sends SIGTERM; rampart drains in-flight requests for up to
# global.grace_period (10s in docker.toml) and exits 0. Keep `docker stop -t` above it.

# ---- build ----
FROM rust:1-bookworm AS builder

# pingora-core builds zlib-ng with cmake.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Everything Cargo.toml refers to: the patched pingora crates ([patch.crates-io]
# points at vendor/) and the declared bench and example targets, which cargo
# resolves even when it builds only the binary. tests/it/dockerfile.rs checks that
# this build context is complete.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY vendor ./vendor
COPY benches ./benches
COPY examples ./examples

# The cache mounts keep the registry and the target directory between builds; the binary
# is copied out of the (mounted) target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/rampart /usr/local/bin/rampart

# ---- runtime ----
FROM debian:bookworm-slim

# ca-certificates: upstreams with `tls = true` verify against the system roots.
# curl: used only by the HEALTHCHECK. Versions follow the bookworm point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged user `rampart` with a fixed id, so that USER is numeric (Kubernetes'
# runAsNonRoot can verify it) and mounted files can be chowned to 10001 on the host.
RUN groupadd --system --gid 10001 rampart \
    && useradd --system --uid 10001 --gid rampart --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin rampart

COPY --from=builder /usr/local/bin/rampart /usr/local/bin/rampart
COPY conf/ /etc/rampart/
COPY conf/docker.toml /etc/rampart/rampart.toml

USER 10001:10001

# 8080: proxy (HTTP), 9090: admin (/metrics, /healthz) — do not publish 9090 publicly.
EXPOSE 8080 9090

HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9090/healthz"]

STOPSIGNAL SIGTERM

ENTRYPOINT ["rampart"]
CMD ["run", "-c", "/etc/rampart/rampart.toml"]

# tollgate: multi-stage image. The builder compiles the release binary; the runtime is
# Debian slim with only ca-certificates and curl (for the HEALTHCHECK), running as an
# unprivileged user.
#
#   docker build -t tollgate .
#   docker run -p 8070:8070 -p 9464:9464 -p 8090:8090 \
#     -e TOLLGATE_CONTROL_PLANE__ADMIN_SECRET=... -e TOLLGATE_CONTROL_PLANE__FEED_SECRET=... \
#     -e TOLLGATE_TOKENS__FEED_SECRET=... tollgate
#
# The default config runs the control plane embedded; on a non-loopback address tollgate
# refuses to start with the example secrets or any shorter than 24 characters, so the three
# secrets above are required.
# Mount a volume on /var/lib/tollgate to keep the control plane's SQLite store, the token
# snapshot, the spool and the file sink output.

# Build arguments, for building the same runtime stage without a registry (.ci/image):
#   RUNTIME_BASE  the runtime's base image (default debian:bookworm-slim); CI imports a
#                 bookworm root made by mmdebstrap as localhost/tollgate-base:bookworm.
#   BINARY        where the binary comes from: `builder` (default) compiles it below;
#                 `prebuilt` takes dist/tollgate from the build context instead (the
#                 binary the tests built), so the compile stage is skipped.
ARG RUNTIME_BASE=debian:bookworm-slim
ARG BINARY=builder

FROM rust:1-bookworm AS builder
WORKDIR /build

# Dependencies first, against stub sources: this layer is reused until Cargo.toml or
# Cargo.lock change. The bench stubs exist because Cargo.toml declares [[bench]] targets,
# and cargo refuses a manifest whose declared targets are missing.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && for bench in $(awk '/^\[\[bench\]\]/ {b = 1; next} b && /^name/ {gsub(/"/, "", $3); print $3; b = 0}' Cargo.toml); do \
         echo 'fn main() {}' > "benches/$bench.rs"; done \
    && cargo build --release --locked --bin tollgate \
    && rm -rf src

# The real sources. The stub build left tollgate's own artifacts behind: drop their
# fingerprints so cargo rebuilds the crate whatever the copied files' mtimes are.
COPY src ./src
RUN rm -rf target/release/.fingerprint/tollgate-* \
    && cargo build --release --locked --bin tollgate

FROM scratch AS prebuilt
COPY dist/tollgate /build/target/release/tollgate

FROM ${BINARY} AS binary

FROM ${RUNTIME_BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
RUN groupadd --system --gid 10001 tollgate \
    && useradd --system --uid 10001 --gid tollgate --no-create-home \
        --home-dir /var/lib/tollgate --shell /usr/sbin/nologin tollgate \
    && install -d -o tollgate -g tollgate -m 0750 /var/lib/tollgate

COPY --from=binary /build/target/release/tollgate /usr/local/bin/tollgate
COPY config/ /etc/tollgate/

# Listen on every interface inside the container (the config's defaults are loopback)
# and read the config from /etc/tollgate (tokens come from the embedded control plane's
# feed). The example configs name their state with relative paths (`data/…`), which land
# under the working directory, the writable /var/lib/tollgate. Only listen addresses are
# set here: they suit every config, whatever its sink.
ENV TOLLGATE_SERVER__LISTEN=0.0.0.0:8070 \
    TOLLGATE_SERVER__ADMIN_LISTEN=0.0.0.0:9464 \
    TOLLGATE_CONTROL_PLANE__LISTEN=0.0.0.0:8090

WORKDIR /var/lib/tollgate
USER tollgate:tollgate
# 8070: ingest (Logz.io listener port); 9464: admin (/metrics /healthz /readyz);
# 8090: the control plane (management API, gateways' feed).
EXPOSE 8070 9464 8090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:9464/healthz"]
ENTRYPOINT ["tollgate"]
CMD ["serve", "--config", "/etc/tollgate/tollgate.toml"]

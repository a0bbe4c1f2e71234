# syntax=docker/dockerfile:1
# The `spamflow` binary in a small Debian image. Build: `docker build -t spamflow .`
# (docker-compose.yml does this for the demo stack). The default model (models/default.spamflow)
# is embedded into the binary at build time.

FROM rust:1.95-bookworm AS build
# librdkafka is built from source by rdkafka-sys (C compiler, make); OpenSSL is linked dynamically.
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ make pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The context holds only the workspace (see .dockerignore): Cargo.toml, Cargo.lock, crates/,
# proto/ (the wire schema, compiled at build time), models/ and tests/ (a workspace member).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p spamflow-cli \
    && install -m 0755 target/release/spamflow /usr/local/bin/spamflow

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent spamflow
COPY --from=build /usr/local/bin/spamflow /usr/local/bin/spamflow
USER 10001:10001
# /metrics, /healthz, /readyz (http_listen must be 0.0.0.0:9464 inside a container).
EXPOSE 9464
ENTRYPOINT ["spamflow"]
CMD ["run", "--config", "/etc/spamflow/run.toml"]

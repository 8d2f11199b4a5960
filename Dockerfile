# Orrery's server image: built by scripts/docker-build.sh (see README, "Docker"). Two stages: the release binary is
# built in the official Rust image, then copied alone into a slim Debian runtime that runs it as a non-root user with
# its data (the embedded SQLite store and the development JWT key) on the /data volume. The web pages are embedded
# from the committed web/dist, so the build needs no node.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p orrery \
    && install -D -m 0755 target/release/orrery /out/orrery

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 orrery \
    && useradd --system --uid 10001 --gid orrery --home-dir /data --shell /usr/sbin/nologin orrery \
    && install -d -o orrery -g orrery -m 0750 /data
COPY --from=build /out/orrery /usr/local/bin/orrery
USER orrery
WORKDIR /data
# The flags of `orrery serve` read these (src/main.rs); any other ORRERY_* variable may be added at run time, and
# DATABASE_URL selects PostgreSQL instead of the embedded store in /data.
ENV ORRERY_BIND=0.0.0.0:7700 \
    ORRERY_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 7700
# No curl in the image: bash's /dev/tcp asks /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/7700 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
# orrery handles SIGTERM itself (graceful shutdown: sessions closed, every sector snapshotted).
STOPSIGNAL SIGTERM
ENTRYPOINT ["orrery"]
CMD ["serve"]

# artifactd: build with cargo, run on a slim Debian base as a non-root user.
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config liblzma-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p artifactd && cp target/release/artifactd target/release/rpcli /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates liblzma5 && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data artifactd && install -d -o artifactd /data
COPY --from=build /usr/local/bin/artifactd /usr/local/bin/rpcli /usr/local/bin/
USER artifactd
WORKDIR /data
VOLUME /data
ENV ARTIFACTD_DATA_DIR=/data
EXPOSE 8080
ENTRYPOINT ["artifactd"]

# The image of the `cooper` recipe (recipes/cooper): cooper on Debian, with what its operations
# call besides the engine API (git, ssh for remote servers, sqlite3 for the store's backup hook,
# curl for the healthcheck).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cooper

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git openssh-client sqlite3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/cooper /usr/local/bin/cooper
ENV ABRA_DIR=/abra
VOLUME /abra
EXPOSE 8080
ENTRYPOINT ["cooper"]
CMD ["serve", "--listen", "0.0.0.0:8080"]

# webhook-router: a static binary in an image FROM scratch.
#   docker build -t webhook-router .
# The build stage installs only the build dependencies (the same Debian 12
# packages as deps/debian-packages.txt) and builds with the `static` preset.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config ca-certificates \
      libuv1-dev node-llhttp libc-ares-dev libjansson-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake cmake
COPY src src
RUN cmake --preset static && cmake --build --preset static
# Everything the final image holds, laid out as its root.
RUN mkdir -p /out/etc/ssl/certs \
 && cp build/static/webhook-router /out/webhook-router \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && echo 'webhook-router:x:10001:10001:webhook-router:/:/nonexistent' > /out/etc/passwd \
 && echo 'webhook-router:x:10001:' > /out/etc/group

FROM scratch
COPY --from=build /out/ /
# OpenSSL's compiled-in default points into /usr/lib/ssl, which is not here.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 CMD ["/webhook-router", "healthcheck"]
ENTRYPOINT ["/webhook-router"]

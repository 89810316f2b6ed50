# webhook-router: a static binary in an image FROM scratch. Two ways to build it:
#
#   docker build -t webhook-router .
#       builds from source in a Debian 12 stage: needs the network (the base
#       image, and apt for the build dependencies of deps/debian-packages.txt).
#
#   cmake --preset static && cmake --build --preset static
#   cp /etc/ssl/certs/ca-certificates.crt build/static/
#   docker build -f Dockerfile.prebuilt -t webhook-router .
#       takes the static binary and CA bundle already built on this host:
#       nothing is downloaded. A file of its own, not a stage of this one:
#       Debian's docker builds every stage before the target with its
#       classic builder, so a prebuilt stage here would need build/static/
#       in every build from source.
#
# Both images are the same: the binary at /usr/local/bin/webhook-router (on
# PATH, so `docker exec <router> webhook-router registry-digest REF` works),
# the CA bundle, a passwd entry for uid 10001.
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
COPY packaging/rootfs/ /out/
RUN mkdir -p /out/etc/ssl/certs /out/usr/local/bin \
 && cp build/static/webhook-router /out/usr/local/bin/webhook-router \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/

FROM scratch
COPY --from=build /out/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PATH=/usr/local/bin
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 CMD ["webhook-router", "healthcheck"]
ENTRYPOINT ["webhook-router"]

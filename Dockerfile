# syntax=docker/dockerfile:1
#
# Backplane's production image: one static binary on a distroless base that runs as
# uid 65532, holds no shell, no package manager and no secrets (configuration arrives as
# environment variables at run time). Build it with `make image`.

# The builder only compiles, so its tag may float within the Go release the module needs.
ARG GO_VERSION=1.26.8

# Cross-compiles on the build machine's own architecture ($BUILDPLATFORM): a multi-arch
# build (`docker buildx build --platform linux/amd64,linux/arm64`) needs no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not download modules again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION=dev
# `make static` is the one place the release flags live (CGO off, -trimpath, the version
# stamped with -X main.version); the deploy tests run the same target and check that its
# output is a static executable.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH make static VERSION="$VERSION" BIN=/out/backplane

# gcr.io/distroless/static-debian12:nonroot, pinned by digest (taken 2026-08-26) so a
# rebuild of the same commit gets the same base. To move it:
#   crane digest gcr.io/distroless/static-debian12:nonroot
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="backplane" \
      org.opencontainers.image.description="Accounts, billing, files, metering and notifications behind one gRPC and REST edge" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.created="$CREATED" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=build /out/backplane /usr/local/bin/backplane
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
# REST, gRPC, admin (/healthz, /readyz, /metrics).
EXPOSE 8080 9090 8081
ENTRYPOINT ["/usr/local/bin/backplane"]
CMD ["help"]

# syntax=docker/dockerfile:1
#
# Vigil's container image: one static binary on distroless, running as the
# non-root user 65532. Build and run:
#
#   docker build -t vigil:dev .
#   docker run --rm vigil:dev --help
#
# Build arguments: GO_VERSION (builder image tag), VERSION (recorded in the
# image labels). Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 .

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so source edits do not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/vigil ./cmd/vigil

# distroless static: CA certificates, /etc/passwd with nonroot (65532), tzdata;
# no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="vigil" \
      org.opencontainers.image.description="Continuous behavioural authentication on Kafka" \
      org.opencontainers.image.source="https://github.com/vigil-auth/vigil" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/vigil /vigil
USER 65532:65532
# /healthz, /readyz, /metrics (http.addr)
EXPOSE 9464
ENTRYPOINT ["/vigil"]

# syntax=docker/dockerfile:1
# chatd in a small image: a static binary (pure Go, CGO off) on Alpine, run as a non-root user.
# Alpine rather than distroless so that the healthcheck can use busybox wget against /healthz.
# Build: docker build -t wschat/chatd .   Run: see docker-compose.yml.

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=docker
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/chatd ./cmd/chatd

FROM alpine:3.22
RUN addgroup -S -g 10001 chat \
 && adduser -S -D -H -u 10001 -G chat chat \
 && mkdir /data && chown chat:chat /data
COPY --from=build /out/chatd /usr/local/bin/chatd
USER 10001:10001
WORKDIR /data
# Inside a container the server listens on every interface; the embedded default (no
# CHAT_DATABASE_URL) keeps its SQLite file and secret in /data (mount a volume there).
ENV CHAT_ADDR=0.0.0.0:8080 \
    CHAT_DATA_DIR=/data
EXPOSE 8080
# /healthz answers while the process serves; the port follows CHAT_ADDR.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD wget -q -O /dev/null "http://127.0.0.1:${CHAT_ADDR##*:}/healthz" || exit 1
ENTRYPOINT ["chatd"]
CMD ["serve"]

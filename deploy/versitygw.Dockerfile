# Versity's S3 gateway (Apache-2.0), the S3-compatible object store of docker-compose.yml's
# uploaded files, built from its Go module like the tests and `make cluster` do.
FROM golang:1.26-alpine AS build
RUN go install github.com/versity/versitygw/cmd/versitygw@v1.8.0

FROM alpine:3.22
RUN adduser -D -H -u 10002 s3 && mkdir -p /data && chown s3 /data
COPY --from=build /go/bin/versitygw /usr/local/bin/versitygw
USER s3
VOLUME /data
EXPOSE 7070
# Keys come from ROOT_ACCESS_KEY_ID and ROOT_SECRET_ACCESS_KEY; objects live under /data.
ENTRYPOINT ["sh", "-c", "mkdir -p /data/meta /data/objects && exec versitygw --port :7070 posix --sidecar /data/meta /data/objects"]

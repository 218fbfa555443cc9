# ackprobe's container image: a static binary on distroless, running as
# the nonroot user (65532). Its default command is the canary, listening on
# every interface of the container: docker run ackprobe:dev -s nats://…
#
#   make image                      # docker build with the version stamped
#   docker run --rm -p 9464:9464 ackprobe:dev canary -s nats://host:4222 --listen :9464

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/ackprobe ./cmd/ackprobe

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ackprobe /ackprobe
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/ackprobe"]
CMD ["canary", "--listen", ":9464"]

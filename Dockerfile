# Multi-stage build of the edxbus binary: a static executable on a distroless
# base, running as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/edxbus ./cmd/edxbus
# The outbox's mount point, so that a named volume mounted there starts owned
# by nonroot (a path missing from the image is created root-owned).
RUN mkdir -p /out/outbox

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/edxbus /usr/local/bin/edxbus
COPY --from=build --chown=nonroot:nonroot /out/outbox /home/nonroot/outbox
USER nonroot:nonroot
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/edxbus"]

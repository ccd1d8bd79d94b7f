# enricher: a static binary on a distroless base, running as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/enricher ./cmd/enricher \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/enricher /enricher
COPY --from=build --chown=65532:65532 /out/state /state
USER 65532:65532
ENV ENRICHER_STATE_DIR=/state \
    ENRICHER_WEB_ADDR=0.0.0.0:9095 \
    ENRICHER_LOG_FORMAT=json
VOLUME /state
EXPOSE 9095
ENTRYPOINT ["/enricher"]
CMD ["run"]

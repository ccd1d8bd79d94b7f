# enricher's image: the static binary and nothing else. scripts/images.sh builds it (the
# binary with CGO_ENABLED=0, then this file over a context that holds it and an empty state/):
# no base image is pulled.
FROM scratch
COPY enricher /enricher
COPY --chown=65532:65532 state /state
USER 65532:65532
ENV ENRICHER_STATE_DIR=/state \
    ENRICHER_LOG_FORMAT=json
VOLUME /state
ENTRYPOINT ["/enricher"]
CMD ["run"]

# tidelog broker: `docker build -t tidelog . && docker run -p 8080:8080 -v tidelog-data:/data tidelog`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/tidelog
COPY pyproject.toml README.md ./
COPY app ./app
COPY storage ./storage
COPY migrations ./migrations
COPY client ./client
# Both distributions in one pip call: the local client satisfies the broker's tidelog-client requirement.
RUN pip install ./client . && rm -rf /opt/tidelog/build /opt/tidelog/client/build

# A non-root user owns the data volume (the partition logs and the SQLite catalog).
RUN useradd --system --uid 10001 --no-create-home --home-dir /data tidelog \
    && mkdir -p /data && chown tidelog:tidelog /data
USER tidelog
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

# Liveness through the broker's own /healthz, on the port it was told to use.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os, sys, urllib.request; port = os.environ.get('TIDELOG_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"

# SIGTERM (docker stop) shuts down cleanly: logs flushed and closed with their clean-shutdown marker.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tidelog", "serve"]
CMD ["--host", "0.0.0.0", "--data-dir", "/data"]

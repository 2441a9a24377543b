# The platform as a container image (docs/operations.md, "Container").
#   docker build -t wuhai-iot .
#   docker compose -f deploy/compose.yaml up -d
# The database lives in the volume /var/lib/wuhai-iot; the configuration is /etc/wuhai-iot/config.toml
# (deploy/container-config.toml; mount your own over it). Logs go to standard error: `docker logs`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WUHAI_IOT_CONFIG=/etc/wuhai-iot/config.toml

RUN groupadd --system wuhai-iot \
 && useradd --system --gid wuhai-iot --home-dir /var/lib/wuhai-iot --shell /usr/sbin/nologin wuhai-iot

WORKDIR /opt/wuhai-iot
COPY pyproject.toml README.md ./
COPY wuhai_iot ./wuhai_iot
RUN pip install . \
 && rm -rf /opt/wuhai-iot/wuhai_iot /opt/wuhai-iot/build \
 && install -d -o wuhai-iot -g wuhai-iot -m 750 /var/lib/wuhai-iot
COPY deploy/container-config.toml /etc/wuhai-iot/config.toml

USER wuhai-iot
WORKDIR /var/lib/wuhai-iot
VOLUME /var/lib/wuhai-iot
# web (put a TLS reverse proxy in front), ELink-200, LMT-4, GF-3, JT/T 808
EXPOSE 8080 5701 5702 5710 5808

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]

# SIGTERM: a clean stop (commit, acknowledge, close connections); give it the unit's 30 s (compose: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["wuhai-iot", "serve"]

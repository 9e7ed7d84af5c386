# factory-dispatch in a container: the dispatch daemon (`dispatch run`, the default command)
# and, from the same image, the plant simulator (`dispatch sim-device`). See docs/container.md
# and compose.yaml, which starts both.
#
# One lean image for both services, without the [sim] extra: `sim-device` (sim/server.py)
# needs only the core dependencies (pymodbus, pvlib, pandas), the `sim` package ships in the
# wheel, and tests/integration/test_wheel.py runs `sim-device` from a venv without the extra.
# The extra (matplotlib, dask) is for `dispatch backtest` / `sweep`, which are not services;
# build with `--build-arg EXTRAS='[sim]'` for an image that runs them too.
#
# No apt: every dependency installs from a binary wheel, so the image needs no compiler and
# no Debian package beyond the base image's.

FROM python:3.11-slim-bookworm AS build
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY dispatch ./dispatch
COPY sim ./sim
# The project from this source tree (a regular, non-editable install: the venv is copied
# alone into the runtime stage, without the source tree or pip's cache).
RUN python -m venv /opt/dispatch/.venv \
    && /opt/dispatch/.venv/bin/pip install --no-cache-dir "/src${EXTRAS}" \
    && /opt/dispatch/.venv/bin/dispatch --version

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="factory-dispatch" \
      org.opencontainers.image.description="Factory PV-plus-storage dispatch daemon" \
      org.opencontainers.image.licenses="MIT"
# A fixed, non-root uid/gid (10001): the state volume's files keep one owner across image
# rebuilds, and a runtime can check runAsNonRoot. The state directory is created here with
# that owner and mode 0700, so a new named volume mounted on it starts with the same owner.
RUN groupadd --system --gid 10001 dispatch \
    && useradd --system --uid 10001 --gid dispatch --home-dir /var/lib/dispatch \
       --no-create-home --shell /usr/sbin/nologin dispatch \
    && install -d -o dispatch -g dispatch -m 0700 /var/lib/dispatch \
    && install -d -m 0755 /etc/dispatch
COPY --from=build /opt/dispatch/.venv /opt/dispatch/.venv
# STATE_DIRECTORY as under systemd: a relative [store] path is taken under it.
ENV PATH=/opt/dispatch/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STATE_DIRECTORY=/var/lib/dispatch
WORKDIR /var/lib/dispatch
USER 10001:10001
# The status server ([http] port; set host = "0.0.0.0" in the config to reach it from outside).
EXPOSE 8787
# Healthy while the last control cycle is recent (/healthz: 200, else 503); urllib raises on
# 503 and on a refused connection, so the check exits 1. A config with another [http] port
# needs this URL overridden (compose.yaml repeats it for that reason).
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/healthz', timeout=4)"]
ENTRYPOINT ["dispatch"]
# The site config is mounted there (compose.yaml, or `docker run -v`); none is baked in.
CMD ["run", "--config", "/etc/dispatch/site.toml"]

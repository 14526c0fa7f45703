# greenai's image: `greenai` as the entrypoint, its state (database, evidence, decisions) under
# the /var/lib/greenai volume. Build: docker build -t greenai:0.1.0 .
# Checked statically by tests/deploy/test_dockerfile.py (no Docker engine in CI).

# Stage 1: build greenai and its dependencies into a virtualenv. The compiler is here only for
# dependencies that ship no wheel for the target platform; none of it reaches the final image.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/greenai
ENV PATH=/opt/greenai/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY greenai ./greenai
COPY migrations ./migrations
# The extras the Kubernetes manifests need: psycopg for the several-replica daemon on PostgreSQL,
# the official client for its kubernetes executor (deploy/k8s).
RUN pip install ".[postgres,kubernetes]"

# Stage 2: the runtime, from the same slim base, with the virtualenv copied in.
FROM python:3.11-slim-bookworm AS runtime
# tini is PID 1: it reaps orphans (the local executor's supervisors outlive the daemon, and a
# zombie loop process would hold its GPUs until its lease runs out: docs/reliability.md) and
# passes SIGTERM on to greenai, which forwards it to the job it runs.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 greenai \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/greenai \
        --no-create-home --shell /usr/sbin/nologin greenai \
    && install --directory --owner 10001 --group 10001 --mode 0700 /var/lib/greenai
COPY --from=build /opt/greenai /opt/greenai
# HOME is the state folder too, so nothing writes to the root filesystem (read-only in the
# Kubernetes manifests); matplotlib's cache goes to /tmp.
ENV PATH=/opt/greenai/bin:$PATH \
    GREENAI_HOME=/var/lib/greenai \
    HOME=/var/lib/greenai \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/greenai
VOLUME ["/var/lib/greenai"]
EXPOSE 8787
ENTRYPOINT ["/usr/bin/tini", "--", "greenai"]
# The daemon on every address; it refuses to start without GREENAI_API_TOKEN (or
# GREENAI_API_TOKEN_FILE). For one job: docker run IMAGE run --threshold 150 -- CMD...
CMD ["serve", "--host", "0.0.0.0"]

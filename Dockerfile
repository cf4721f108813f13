# syntax=docker/dockerfile:1
# One image for every Voice to Ticket service; the command names the module:
#   docker run IMAGE voiceticket_ingress      (default)
#   docker run IMAGE voiceticket_transcriber  | voiceticket_analyzer | voiceticket_jira_writer
#                    voiceticket_notifier     | voiceticket_config_api
# The image holds the `voiceticket` package and what it depends on (libs/common, the six
# services, the CLI), not the provider sandboxes and their vendored specs. Those are a separate,
# development-only target: `docker build --target sandbox .` (docker compose's `sandbox` profile).
# Nothing secret is baked in: every credential arrives as an environment variable at run time.

# The base, pinned by digest (python:3.11-slim-bookworm, the official image's multi-arch index):
# a tag moves, a digest does not. Bump it on purpose (Debian security fixes), e.g. after
# `docker buildx imagetools inspect python:3.11-slim-bookworm`.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
# Pinned to the uv that wrote uv.lock; bump both together.
ARG UV_VERSION=0.13.9

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION
ENV PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install "uv==${UV_VERSION}"
WORKDIR /src

# Third-party dependencies first, from the lock file and the members' metadata only, so this
# layer is reused until a dependency changes.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
COPY libs/sandbox/pyproject.toml libs/sandbox/
COPY libs/voiceticket/pyproject.toml libs/voiceticket/
COPY services/ingress/pyproject.toml services/ingress/
COPY services/transcriber/pyproject.toml services/transcriber/
COPY services/analyzer/pyproject.toml services/analyzer/
COPY services/jira-writer/pyproject.toml services/jira-writer/
COPY services/notifier/pyproject.toml services/notifier/
COPY services/config-api/pyproject.toml services/config-api/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package voiceticket --no-install-workspace

# Then the workspace packages, installed as wheels (not editable) so the runtime stage needs
# nothing but the virtualenv. `--package voiceticket` without `--extra sandbox`: the sandbox and
# its dependencies stay out (deploy/tests/test_image_contents.py runs these steps and checks).
# No uv cache here: uv keys a workspace package's built wheel on its pyproject.toml only, so a
# cached wheel would ship stale code after a source-only change.
COPY libs/ libs/
COPY services/ services/
RUN uv sync --frozen --no-dev --package voiceticket --no-editable

# The image's SBOM (CycloneDX), from the lock file: what the step above installed.
COPY deploy/sbom.py deploy/
RUN python deploy/sbom.py --lock uv.lock --output /app/sbom.cdx.json --machine "$(uname -m)"

# Development only: the Twilio/OpenAI/Jira stand-ins, on their own (for `--target sandbox`).
FROM builder AS sandbox-builder
RUN uv sync --frozen --no-dev --package voiceticket-sandbox --no-editable

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
LABEL org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 voiceticket \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin voiceticket
ENV PATH="/app/.venv/bin:${PATH}" \
    VIRTUAL_ENV=/app/.venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
# Numeric so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
ENTRYPOINT ["python", "-m"]

# ---------------------------------------------------------------------------------------------
FROM base AS sandbox
LABEL org.opencontainers.image.title="voiceticket-sandbox" \
      org.opencontainers.image.description="Voice to Ticket provider stand-ins (development only)"
COPY --from=sandbox-builder /app/.venv /app/.venv
# Twilio 9001, OpenAI 9002, Jira 9003
EXPOSE 9001 9002 9003
CMD ["voiceticket_sandbox", "serve", "--host", "0.0.0.0"]

# ---------------------------------------------------------------------------------------------
# The default target (last stage): the services.
FROM base AS runtime
LABEL org.opencontainers.image.title="voiceticket" \
      org.opencontainers.image.description="Voice to Ticket services (one image, module picked by the command)"
COPY --from=builder /app/.venv /app/.venv
COPY --from=builder /app/sbom.cdx.json /app/sbom.cdx.json
# No HEALTHCHECK: which port answers depends on the module; Kubernetes probes /healthz and
# /readyz (deploy/k8s), docker-compose.yml declares each service's own healthcheck.
# ingress 8080, consumer health 8081, config-api 8085
EXPOSE 8080 8081 8085
CMD ["voiceticket_ingress"]

# syntax=docker/dockerfile:1
# One image for every Voice to Ticket service; the command names the module:
#   docker run IMAGE voiceticket_ingress      (default)
#   docker run IMAGE voiceticket_transcriber  | voiceticket_analyzer | voiceticket_jira_writer
#                    voiceticket_notifier     | voiceticket_config_api | voiceticket_sandbox serve ...
# Nothing secret is baked in: every credential arrives as an environment variable at run time.

ARG PYTHON_IMAGE=python:3.11-slim
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
    uv sync --frozen --no-dev --all-packages --no-install-workspace

# Then the workspace packages, installed as wheels (not editable) so the runtime stage needs
# nothing but the virtualenv.
COPY libs/ libs/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-editable

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="voiceticket" \
      org.opencontainers.image.description="Voice to Ticket services (one image, module picked by the command)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 voiceticket \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin voiceticket
COPY --from=builder /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:${PATH}" \
    VIRTUAL_ENV=/app/.venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
# Numeric so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# ingress 8080, consumer health 8081, config-api 8085, sandbox 9001-9003
EXPOSE 8080 8081 8085
ENTRYPOINT ["python", "-m"]
CMD ["voiceticket_ingress"]

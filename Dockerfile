# One image for the four services; docker-compose.yml picks the service with
# `python -m services.<name>` (intake, norms, feedback, metrics).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install --no-cache-dir uv

WORKDIR /app

# Dependencies first, so a code change does not reinstall them (the lock file is the truth).
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

COPY schemas ./schemas
COPY services ./services
COPY simulator ./simulator
COPY deploy ./deploy
RUN uv sync --frozen --no-dev

ENV PATH=/app/.venv/bin:$PATH
RUN useradd --system --uid 10001 --home-dir /app servicepuls \
    && mkdir -p /app/.stack && chown servicepuls /app/.stack
USER servicepuls

CMD ["python", "-m", "services.intake"]

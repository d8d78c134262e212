# One image for every Refract process (api, workers, beat, migrate, Flower); compose builds
# it once and picks each service's command. .dockerignore keeps .venv, var/ and caches out.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 1000 refract

COPY pyproject.toml README.md alembic.ini ./
COPY refract ./refract
COPY api ./api
COPY tasks ./tasks
COPY worker ./worker
COPY launch ./launch
COPY migrations ./migrations
# The `flower` extra: compose runs Flower from this image with Refract's own Celery app.
RUN pip install --editable ".[flower]" && mkdir -p /app/var/media && chown -R refract:refract /app/var

USER refract
EXPOSE 8000
CMD ["refract", "api", "--host", "0.0.0.0", "--port", "8000"]

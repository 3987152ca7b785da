FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sitepulse sitepulse
COPY streams streams
COPY agents agents
COPY dashboards dashboards
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/sitepulse sitepulse \
    && mkdir -p /var/lib/sitepulse && chown sitepulse /var/lib/sitepulse
USER sitepulse

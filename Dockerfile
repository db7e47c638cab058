# Production-like image for reghub (worker, API, migrations, topic creation).
# Built and run by docker-compose.yml; default command runs a stream worker.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Unprivileged runtime user (fixed uid/gid so volume ownership is predictable).
RUN groupadd --system --gid 10001 reghub \
    && useradd --system --uid 10001 --gid reghub --home-dir /home/reghub --create-home \
       --shell /usr/sbin/nologin reghub

WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir . \
    && chown -R reghub:reghub /app

USER reghub

# 6066: worker web port (/health); 8000: API.
EXPOSE 6066 8000

CMD ["reghub", "worker"]

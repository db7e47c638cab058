# Production-like image for reghub (worker, API, migrations, topic creation).
# Built and run by docker-compose.yml; default command runs a stream worker.
# Installs exactly uv.lock, without the `embedded` and `test` extras (no Tansu broker in production),
# with the `native` one (mypyc, for the compiled hot path).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/reghub \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    PATH=/opt/reghub/bin:$PATH

# Unprivileged runtime user (fixed uid/gid so volume ownership is predictable).
RUN groupadd --system --gid 10001 reghub \
    && useradd --system --uid 10001 --gid reghub --home-dir /home/reghub --create-home \
       --shell /usr/sbin/nologin reghub

# The same uv as scripts/uv.
RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app
# The locked dependencies first: this layer changes only with pyproject.toml or uv.lock.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-install-project --extra native --compile-bytecode --python /usr/local/bin/python
COPY . /app
# The dispensing hot path compiled with mypyc (reghub/native.py), with a C compiler that leaves the
# image in the same layer; if the build fails, the image runs the same modules as plain Python.
RUN uv sync --locked --no-editable --extra native --compile-bytecode --python /usr/local/bin/python \
    && apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null \
    && (python -m reghub.native_build || true) \
    && apt-get purge -y -qq gcc libc6-dev >/dev/null && apt-get autoremove -y -qq >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && chown -R reghub:reghub /app

USER reghub

# 6066: worker web port (/health, /ready); 8000: API.
EXPOSE 6066 8000

CMD ["reghub", "worker"]

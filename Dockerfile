# musicindex worker/beat/CLI image. Used by docker-compose.yml (see docs/deployment.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MUSICINDEX_HOME=/data

# libsndfile: wav/flac/ogg/mp3/aiff decoding; ffmpeg: audioread fallback for everything else
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1 ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# dependencies first (cached layer), then the source
COPY pyproject.toml README.md alembic.ini ./
COPY musicindex ./musicindex
COPY workers ./workers

# A plain install: the migrations and the musicnn weights ship inside the package.
RUN pip install --upgrade pip \
    && pip install ".[ml]"

RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home musicindex \
    && mkdir -p /data /music \
    && chown musicindex:musicindex /data

USER musicindex
VOLUME ["/data"]

ENTRYPOINT ["musicindex"]
CMD ["--help"]

# slmbot: serves the bot trained from this project's intents/ (CPU build of torch).
FROM python:3.11-slim

WORKDIR /app
ENV PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 PIP_NO_CACHE_DIR=1

# The CPU wheel index keeps the image small; a bare `torch` would pull the CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY slm ./slm
RUN pip install .

COPY config.toml ./
COPY intents ./intents
COPY dialogues ./dialogues
# Train at build time so the container starts serving at once.
RUN OMP_NUM_THREADS=2 slmbot train --device cpu

EXPOSE 8000
# DATABASE_URL and REDIS_URL come from the environment; SLMBOT_WORKERS > 1 needs both (see docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"
CMD ["sh", "-c", "exec slmbot run --host 0.0.0.0 --port 8000 --workers ${SLMBOT_WORKERS:-1}"]

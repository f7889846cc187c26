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
CMD ["slmbot", "run", "--host", "0.0.0.0", "--port", "8000"]

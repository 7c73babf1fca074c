# syntax=docker/dockerfile:1
# The GPU stage workers (augment, gsa, train, sample: each runs the backbone): CUDA 12 + cuDNN 9 runtime,
# Node 20, and onnxruntime-node WITH its CUDA execution provider. Build from the repository root, on a
# machine with network access (the onnxruntime-node install script downloads the CUDA provider libraries):
#   docker build -f docker/worker-cuda.Dockerfile -t dynasyn-worker-cuda .
#   docker run --gpus all -e WORKER=train ... dynasyn-worker-cuda
# Needs the NVIDIA Container Toolkit on the host (Kubernetes: the NVIDIA device plugin, nvidia.com/gpu).
#
# Model bundle (BACKBONE): unset, the worker creates the tiny random-weight bundle in CACHE_DIR on first use
# (a volume: made once per volume). For real weights set BACKBONE to an s3:// or file:// URL (synced into
# CACHE_DIR) or mount the bundle directory read-only and set BACKBONE to its path.

# Node's official linux-x64 binary (the node image ships it unmodified) and the build toolchain.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# No ONNXRUNTIME_NODE_INSTALL=skip here: ask for the CUDA 12 provider, downloaded by the install script.
ENV ONNXRUNTIME_NODE_INSTALL_CUDA=v12 \
    PRISMA_SCHEMA_ENGINE_BINARY=/bin/true \
    TURBO_TELEMETRY_DISABLED=1 \
    NODE_ENV=development
COPY package.json package-lock.json turbo.json tsconfig.base.json ./
COPY prisma ./prisma
COPY packages ./packages
COPY apps ./apps
RUN npm ci --no-audit --no-fund \
 && test -n "$(find node_modules/onnxruntime-node/bin -name 'libonnxruntime_providers_cuda.so*' -print -quit)" \
 && npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf packages/*/src packages/*/scripts packages/*/fixtures apps/*/src \
      packages/*/*.tsbuildinfo apps/*/*.tsbuildinfo .turbo \
 && npm cache clean --force

FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS runtime
# ca-certificates: HTTPS to S3 and webhook receivers; tini: a PID 1 that forwards SIGTERM and reaps.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
# Node 20: the official binary, taken from the node image of the build stage (same version as the build).
COPY --from=build /usr/local/bin/node /usr/local/bin/node
ARG WORKER=train
ENV NODE_ENV=production \
    WORKER=${WORKER} \
    DEVICE=cuda \
    WORK_DIR=/tmp/dynasyn-work \
    CACHE_DIR=/var/cache/dynasyn \
    MALLOC_MMAP_THRESHOLD_=1048576 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# ubuntu 24.04 images have a `ubuntu` user with uid 1000; the workers run as an unprivileged `dynasyn` user.
RUN groupadd --system dynasyn \
 && useradd --system --gid dynasyn --home-dir /app --shell /usr/sbin/nologin dynasyn \
 && mkdir -p /app /var/cache/dynasyn /tmp/dynasyn-work \
 && chown dynasyn:dynasyn /app /var/cache/dynasyn /tmp/dynasyn-work
WORKDIR /app
COPY --from=build --chown=dynasyn:dynasyn /app/package.json ./package.json
COPY --from=build --chown=dynasyn:dynasyn /app/node_modules ./node_modules
COPY --from=build --chown=dynasyn:dynasyn /app/packages ./packages
COPY --from=build --chown=dynasyn:dynasyn /app/prisma ./prisma
COPY --from=build --chown=dynasyn:dynasyn /app/apps ./apps
VOLUME ["/var/cache/dynasyn"]
USER dynasyn
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["sh", "-c", "exec node apps/worker-${WORKER}/dist/index.js"]

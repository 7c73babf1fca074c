# syntax=docker/dockerfile:1
# One image for the four CPU stage workers (augment, gsa, train, sample) and the `dynasyn` CLI (used by the
# one-shot migration job: `node apps/cli/dist/main.js db migrate`). WORKER selects the process:
#   docker build -f docker/worker-cpu.Dockerfile -t dynasyn-worker-cpu .
#   docker run -e WORKER=sample ... dynasyn-worker-cpu
#
# Model bundle (BACKBONE): unset, a worker creates the tiny random-weight bundle in CACHE_DIR on first use
# (seconds, no network); CACHE_DIR=/var/cache/dynasyn is a volume so it is made once per volume. For real
# weights, set BACKBONE to an s3:// or file:// URL (synced into CACHE_DIR) or mount a bundle directory
# read-only and point BACKBONE at it (e.g. -v /models/sd15:/models/sd15:ro -e BACKBONE=/models/sd15).

FROM node:20-bookworm-slim AS build
WORKDIR /app
# The CPU execution provider is inside the onnxruntime-node package: skip the CUDA download.
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    PRISMA_SCHEMA_ENGINE_BINARY=/bin/true \
    TURBO_TELEMETRY_DISABLED=1 \
    NODE_ENV=development
COPY package.json package-lock.json turbo.json tsconfig.base.json ./
COPY prisma ./prisma
COPY packages ./packages
COPY apps ./apps
RUN npm ci --no-audit --no-fund \
 && npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf packages/*/src packages/*/scripts packages/*/fixtures apps/*/src \
      packages/*/*.tsbuildinfo apps/*/*.tsbuildinfo .turbo \
 && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
ARG WORKER=train
ENV NODE_ENV=production \
    WORKER=${WORKER} \
    DEVICE=cpu \
    WORK_DIR=/tmp/dynasyn-work \
    CACHE_DIR=/var/cache/dynasyn \
    MALLOC_MMAP_THRESHOLD_=1048576
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/packages ./packages
COPY --from=build --chown=node:node /app/prisma ./prisma
COPY --from=build --chown=node:node /app/apps ./apps
RUN mkdir -p /var/cache/dynasyn /tmp/dynasyn-work && chown node:node /var/cache/dynasyn /tmp/dynasyn-work
VOLUME ["/var/cache/dynasyn"]
USER node
# SIGTERM: the worker stops taking jobs and checkpoints the running one (SHUTDOWN_GRACE_SECONDS).
STOPSIGNAL SIGTERM
# Shell form is needed to expand WORKER; exec keeps node as PID 1's child-free process so it gets SIGTERM.
CMD ["sh", "-c", "exec node apps/worker-${WORKER}/dist/index.js"]

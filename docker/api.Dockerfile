# syntax=docker/dockerfile:1
# The API image (apps/api). Build from the repository root:
#   docker build -f docker/api.Dockerfile -t dynasyn-api .
# Multi-stage: the build stage installs every workspace's dependencies, compiles them and prunes the dev
# dependencies; the runtime stage copies only the compiled packages, the API and the production
# node_modules, and runs as the unprivileged `node` user.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# onnxruntime-node's install script downloads CUDA providers; the API never runs a model (the CPU library
# ships inside the package anyway), so the download is skipped.
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
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0
WORKDIR /app
# Workspace packages are symlinks in node_modules/@dynasyn/* -> ../../packages/*: both sides are copied.
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/packages ./packages
COPY --from=build --chown=node:node /app/prisma ./prisma
COPY --from=build --chown=node:node /app/apps/api ./apps/api
USER node
EXPOSE 3000
# /healthz answers without touching dependencies (liveness); /readyz checks Postgres, Redis and storage.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "apps/api/dist/index.js"]

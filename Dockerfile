# Switchyard services image: one image, the service chosen by the command
# (`switchyard gateway|router|worker|controller|sink|registry`), run as compiled JavaScript.
# test/dockerfile.int.test.ts runs these steps in a scratch directory (no Docker engine needed),
# so keep RUN steps to relative paths, and teach that test any new instruction.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm install from the lock, not npm ci: npm ci refuses a lock that lacks entries for other
# platforms' optional packages (e.g. @chdb/lib-darwin-arm64), which a lock made behind a
# registry mirror without them does (see .ci/run). CI checks that the lock is in step.
RUN npm install --no-audit --no-fund
COPY . .
# Compile (dist/), drop the dev dependencies, and make the data directory copied below.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && mkdir -p data

FROM node:20-bookworm-slim
ENV NODE_ENV=production SWITCHYARD_HOME=/data
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/package.json ./package.json
# Embedded log, blobs and analytics, owned by the user the services run as (a named volume
# mounted on /data starts with this ownership).
COPY --from=build --chown=node:node /app/data /data
USER node
ENTRYPOINT ["node", "bin/switchyard.js"]

# Switchyard services image: one image, the service chosen by the command
# (`switchyard gateway|router|worker|controller|sink|registry`).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/schemas ./schemas
COPY --from=build /app/package.json ./package.json
RUN mkdir -p /data && chown node /data
USER node
ENTRYPOINT ["node", "bin/switchyard.js"]

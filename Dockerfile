# The Nstance worker image (also runs the CLI and the emulator seed script).
#   docker build -t nstance .
#   docker run --env-file ... nstance                      # worker
#   docker run ... nstance node dist/client/cli/main.js groups
FROM node:20-bookworm-slim AS build
WORKDIR /app
# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
# npm ci refuses a lockfile that lacks other platforms' optional packages (see
# scripts/tools.sh); npm install --no-save installs the same locked versions.
RUN npm ci --no-audit --no-fund || npm install --no-save --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

# glibc (bookworm, not alpine): Temporal's native core bridge ships gnu builds.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Mount points of docker-compose.yml's key and token volumes, owned by node: a new named volume takes
# its directory's owner from the image, and the one-shot services write their key and token as node.
RUN mkdir -p /keys /codec-token && chown node:node /keys /codec-token
USER node
# The worker bundles workflows/ from dist at start-up; SIGTERM drains it gracefully.
CMD ["node", "dist/client/cli/main.js", "worker"]

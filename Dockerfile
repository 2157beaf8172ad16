# syntax=docker/dockerfile:1
# The cairn agent in a container (see README.md, "Install as a service"):
#   docker build -t cairn .
#   docker run -d --name cairn --stop-timeout 15 -v cairn-state:/var/lib/cairn \
#     -v /srv/data:/data:ro -p 127.0.0.1:8421:8421 cairn

# Build: install every dependency, compile TypeScript, then drop the development dependencies.
FROM node:22-bookworm-slim AS build
# zstd-napi compiles zstd with node-gyp (the other native parts are prebuilt Node-API packages):
# a compiler, and Node's own headers from the image (npm_config_nodedir), so nothing downloads.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /opt/cairn
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: `prepare` would run tsc before src/ is copied (the build is the next step);
# zstd-napi's own build is then run by hand (.npmrc keeps it from asking GitHub for a binary).
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts && npm rebuild zstd-napi
COPY tsconfig.json ./
COPY src/ src/
COPY config/ config/
# prune only removes packages: it runs no lifecycle script, so it never calls tsc.
RUN npm run build && npm prune --omit=dev

# Runtime: the compiled agent, its production node_modules and the container config.
FROM node:22-bookworm-slim
# The agent runs as cairn (uid 10001), not root, so it can back up only files that uid 10001 may
# read: world-readable ones, or ones owned by or shared with 10001. To back up anything, run as
# root: --user 0 (docker's default capabilities then cover reading every file and restores that
# keep owners: DAC_OVERRIDE, CHOWN, FOWNER, FSETID, MKNOD; after --cap-drop ALL, --cap-add what
# is needed, DAC_READ_SEARCH for reading). A bind mount on /var/lib/cairn must be writable by
# 10001 (chown 10001:10001 DIR); a named volume takes its owner from the image.
RUN groupadd --system --gid 10001 cairn \
 && useradd --system --uid 10001 --gid cairn --home-dir /var/lib/cairn --no-create-home --shell /usr/sbin/nologin cairn \
 && install -d -o cairn -g cairn -m 0700 /var/lib/cairn
WORKDIR /opt/cairn
COPY --from=build /opt/cairn/package.json ./
COPY --from=build /opt/cairn/node_modules/ node_modules/
COPY --from=build /opt/cairn/dist/ dist/
COPY --from=build /opt/cairn/config/ config/
COPY config/cairn.container.yaml /etc/cairn/cairn.yaml
# /var/lib/cairn: repository, key, tokens and job history; /etc/cairn: the config (root's, read-only
# to the agent). Declared after the files are in place: a new volume starts with the image's copy.
VOLUME ["/var/lib/cairn", "/etc/cairn"]
USER 10001:10001
EXPOSE 8421
# No curl in slim images: node asks GET /health itself (503, i.e. "failing", marks it unhealthy).
# It uses port 8421: change it here too if api.port changes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8421/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM stops the agent at a safe point within its own 10 s deadline; docker stop waits only
# 10 s by default, so give it more (docker run --stop-timeout 15, compose stop_grace_period: 15s).
# node is PID 1 and handles SIGTERM, SIGINT and SIGHUP itself; add --init to reap hooks' orphans.
STOPSIGNAL SIGTERM
# As cairn's shebang sets it (src/cli/main.ts): glibc's mmap threshold fixed at 1 MiB, so large
# buffers freed go back instead of staying in the threads' heaps (docs/decisions.md §40).
ENV MALLOC_MMAP_THRESHOLD_=1048576
ENTRYPOINT ["node", "--max-semi-space-size=2", "--v8-pool-size=2", "/opt/cairn/dist/cli/main.js"]
CMD ["agent", "--config", "/etc/cairn/cairn.yaml"]

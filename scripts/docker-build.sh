#!/usr/bin/env bash
# Builds Orrery's server image (Dockerfile) as orrery:$ORRERY_TAG (default latest), which compose.yaml runs with
# PostgreSQL. Needs Docker with BuildKit (the default since Docker 23); DOCKER=podman works as well.
# Usage: scripts/docker-build.sh [extra `docker build` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
TAG=${ORRERY_TAG:-latest}
command -v "$DOCKER" >/dev/null 2>&1 || { echo "FATAL: $DOCKER is not installed" >&2; exit 1; }
[ -f web/dist/admin/index.html ] || { echo "FATAL: web/dist is missing (it is committed; run npm run build in web/)" >&2; exit 1; }
DOCKER_BUILDKIT=1 "$DOCKER" build --tag "orrery:$TAG" "$@" .
echo "built orrery:$TAG; run it with: docker compose up -d" >&2

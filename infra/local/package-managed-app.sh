#!/usr/bin/env bash
# npm run package:managed-app: the managed application's zip (infra/managed-app/package.ts),
# from a fresh clone too: the npm dependencies are installed first if they are missing (the
# TypeScript compiler is one of them), then only the packager is compiled (node built-ins only:
# no Prisma client, no database, no build of the whole product), into dist/ as the build puts it, and run.
#   npm run package:managed-app [-- OUT.zip]     (default dist/managed-app.zip)
set -Eeuo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=infra/local/lib.sh
source "$here/lib.sh"
mkdir -p "$LOCAL/logs"
ensure_npm_deps
out="$ROOT/dist"
(cd "$ROOT" && node node_modules/typescript/bin/tsc --target ES2022 --module nodenext --moduleResolution nodenext --types node \
  --strict --skipLibCheck --rootDir . --outDir "$out" infra/managed-app/package.ts infra/managed-app/zip.ts)
cd "$ROOT"
node "$out/infra/managed-app/package.js" "$@"

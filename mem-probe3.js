for (const m of ['zod','@nestjs/core','pg','bullmq','/work/main/dist/libs/core/src','/work/main/dist/libs/billing/src']) require(m);
const before = new Set(Object.keys(require.cache));
require(process.argv[2]);
const added = Object.keys(require.cache).filter((k) => !before.has(k));
const byPkg = {};
const fs = require('fs');
for (const k of added) { const m = k.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/); const p = m ? m[1] : k.replace('/work/main/dist/', '').split('/').slice(0, 4).join('/'); byPkg[p] = (byPkg[p] || 0) + fs.statSync(k).size; }
console.log(Object.entries(byPkg).sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `${(v / 1024).toFixed(0)} KB ${k}`).join('\n'));

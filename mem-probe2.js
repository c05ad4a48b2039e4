const mb = (n) => (n / 1048576).toFixed(1);
let last = process.memoryUsage();
function step(label, fn) { fn(); global.gc(); const m = process.memoryUsage(); console.log(label.padEnd(40), 'rss +', mb(m.rss - last.rss).padStart(5), 'heap +', mb(m.heapUsed - last.heapUsed).padStart(5), 'total rss', mb(m.rss)); last = m; }
global.gc(); last = process.memoryUsage();
const mods = process.argv.slice(2);
for (const m of mods) step(m, () => require(m.startsWith('/') ? m : require.resolve(m, { paths: ['/work/main'] })));

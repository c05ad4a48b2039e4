import path from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
// What the API serves at / (apps/api/src/console/console.routes.ts reads it from dist/console).
const outDir = path.resolve(here, '../../dist/console');
// `npx vite apps/console` serves the console with hot reload, calling the API of `npm start`.
const api = process.env.CONSOLE_API_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: { outDir, emptyOutDir: true, sourcemap: true, assetsDir: 'assets' },
  server: { proxy: Object.fromEntries(['/v1', '/auth', '/sso', '/admin', '/docs'].map((p) => [p, { target: api, changeOrigin: false }])) },
});

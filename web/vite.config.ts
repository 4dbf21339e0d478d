// The explorer's page: built by `npm run build:web` into dist/web, which
// src/explore-server serves. Relative URLs (base './') so that the page
// works under any prefix it is mounted at (`/` or `/ui/`).
import { defineConfig } from 'vite'
import { fileURLToPath } from 'node:url'

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: false,
  },
})

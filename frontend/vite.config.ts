import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The Rust server (`lightbulb serve`) listens on 127.0.0.1:5000 by default; `npm run dev`
// serves the app with hot reload and forwards every API path to it.
const target = 'http://127.0.0.1:5000';

export default defineConfig({
  base: '/',
  plugins: [react()],
  server: {
    proxy: {
      '/api': { target, ws: true, changeOrigin: false },
      '/score': { target },
      '/healthz': { target },
      '/readyz': { target },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
  },
});

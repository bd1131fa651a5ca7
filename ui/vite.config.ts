// Vite builds ui/dist, which tauri.conf.json embeds into the binary; Vitest runs
// src/**/*.test.ts in jsdom against the in-memory backend (src/mock.ts), no Rust needed.
// Svelte's component CSS is emitted into the external stylesheet (the app's CSP has
// `style-src 'self'`: no <style> elements, no style attributes).
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { svelteTesting } from "@testing-library/svelte/vite";
import { defineConfig } from "vitest/config";

export default defineConfig({
  clearScreen: false,
  plugins: [svelte({ emitCss: true }), svelteTesting()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // One stylesheet, no inlined assets: nothing in the page needs `data:` or inline CSS.
    cssCodeSplit: false,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts"],
  },
});

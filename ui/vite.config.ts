// Vite builds ui/dist, which tauri.conf.json embeds into the binary; Vitest runs
// src/**/*.test.ts in jsdom with the Tauri IPC mocked (no Rust needed).
import { defineConfig } from "vitest/config";

export default defineConfig({
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts"],
  },
});

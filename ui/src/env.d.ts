/// <reference types="svelte" />
/// <reference types="vite/client" />

interface Window {
  /** Set by the Tauri webview; absent in a plain browser (`npm run dev` then uses the mock). */
  __TAURI_INTERNALS__?: unknown;
}

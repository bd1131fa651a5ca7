/**
 * Entry point loaded by index.html: mounts the app on the real backend (Tauri IPC),
 * or, in `npm run dev` in a plain browser, on the in-memory test double (mock.ts).
 *
 * Why Svelte 5. The app runs under a strict CSP (`script-src 'self'; style-src
 * 'self'`): Svelte compiles components to plain DOM code ahead of time, so there is
 * no runtime template compiler and no `eval`/`new Function`, and its component CSS
 * is extracted by Vite into one external .css file. Text interpolation always
 * becomes text nodes, so mail content cannot turn into markup unless `{@html}` is
 * written (it never is). The compiler's accessibility checks (labels, roles, key
 * handlers) run on every build and fail it through `svelte-check
 * --fail-on-warnings`. The runtime is small (no virtual DOM), which matters for a
 * message list that re-renders on every scroll frame. It is also what GitButler,
 * our model for Tauri + typed backend, uses. The alternatives: React needs a
 * virtual DOM and JSX tooling for no gain here; plain DOM code (the placeholder's
 * approach) does not scale to a dozen screens with live state.
 */
import "./style.css";
import { mount } from "svelte";
import App from "./App.svelte";
import { tauriBackend, type Backend } from "./backend";

async function chooseBackend(): Promise<Backend> {
  if (window.__TAURI_INTERNALS__ === undefined && import.meta.env.DEV) {
    const { MockBackend } = await import("./mock");
    const state = new URLSearchParams(window.location.search).get("state");
    return new MockBackend({
      state: state === "none" || state === "locked" ? state : "unlocked",
      inboxSize: 100_000,
      delayMs: 250,
    });
  }
  return tauriBackend;
}

const target = document.getElementById("app");
if (target) {
  void chooseBackend().then((backend) => mount(App, { target, props: { backend } }));
}

/**
 * The placeholder screen: product name, the version reported by the Rust
 * shell, and one line about what is coming. Built with DOM calls, never
 * `innerHTML`, so text from the backend cannot become markup.
 */
import { BackendError, type Backend } from "./backend";

/** Line shown under the title until the real screens arrive. */
export const TAGLINE = "Encrypted mail, one box to tick. Setup screens arrive with the app issue.";

/** Renders the placeholder into `root`; resolves once the version is shown. */
export async function mount(root: HTMLElement, backend: Backend): Promise<void> {
  const title = element("h1", "Sealpost");
  const version = element("p", "Version …");
  version.className = "version";
  version.setAttribute("aria-live", "polite");
  const tagline = element("p", TAGLINE);
  tagline.className = "tagline";
  root.replaceChildren(title, version, tagline);

  try {
    const info = await backend.appInfo();
    title.textContent = info.name;
    version.textContent = `Version ${info.version} · sync server ${info.syncServer}`;
  } catch (error) {
    const code = error instanceof BackendError ? error.code : "unknown";
    version.textContent = `Version unavailable (${code})`;
    version.classList.add("error");
  }
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.textContent = text;
  return node;
}

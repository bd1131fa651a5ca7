/**
 * Svelte actions that set styles through the CSSOM (`style.setProperty`), which the
 * app's CSP (`style-src 'self'`) allows, unlike `style="…"` attributes in markup.
 */

/** Places an element `px` pixels down (the virtualized list's rows). */
export function offsetY(node: HTMLElement, px: number) {
  node.style.setProperty("transform", `translateY(${px}px)`);
  return {
    update(next: number) {
      node.style.setProperty("transform", `translateY(${next}px)`);
    },
  };
}

/** Sets an element's height in pixels (the list's spacer: total × row height). */
export function heightPx(node: HTMLElement, px: number) {
  node.style.setProperty("height", `${px}px`);
  return {
    update(next: number) {
      node.style.setProperty("height", `${next}px`);
    },
  };
}

/**
 * Test helpers for accessibility: every control on screen must have an accessible
 * name, computed the way assistive technology does (dom-accessibility-api, the
 * algorithm Testing Library's `getByRole(…, { name })` uses).
 */
import { computeAccessibleName } from "dom-accessibility-api";

const CONTROLS = "button, input, select, textarea, iframe, meter, progress, [role=listbox], [role=option], dialog";

/** The controls under `root` that have no accessible name, described for the failure message. */
export function unnamedControls(root: ParentNode = document.body): string[] {
  const missing: string[] = [];
  for (const element of root.querySelectorAll<HTMLElement>(CONTROLS)) {
    if (element.closest("[hidden]") || (element instanceof HTMLInputElement && element.type === "hidden")) continue;
    // Not exposed to assistive technology at all, so it has no name to need.
    if (element.closest('[aria-hidden="true"]')) continue;
    if (computeAccessibleName(element).trim() === "") {
      missing.push(element.outerHTML.slice(0, 160));
    }
  }
  return missing;
}

/** How many controls are checked (so a test can tell it looked at something). */
export function countControls(root: ParentNode = document.body): number {
  return [...root.querySelectorAll<HTMLElement>(CONTROLS)].filter((e) => !e.closest("[hidden]")).length;
}

const INTERACTIVE = "button, input, select, textarea, a[href], summary, [role=listbox]";

/**
 * The controls under `root` that Tab cannot reach: enabled, shown to assistive
 * technology, and yet taken out of the Tab order. A control that is only a pointer
 * shortcut for something the keyboard does elsewhere is hidden from assistive
 * technology (`aria-hidden`) and so not counted; anything else must be reachable.
 */
export function unreachableControls(root: ParentNode = document.body): string[] {
  const out: string[] = [];
  for (const element of root.querySelectorAll<HTMLElement>(INTERACTIVE)) {
    if (element.closest("[hidden]") || element.closest("[inert]")) continue;
    if (element.closest('[aria-hidden="true"]')) continue;
    if (element instanceof HTMLInputElement && element.type === "hidden") continue;
    if ((element as HTMLButtonElement).disabled) continue;
    if (element.tabIndex < 0) out.push(element.outerHTML.slice(0, 160));
  }
  return out;
}

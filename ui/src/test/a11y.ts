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

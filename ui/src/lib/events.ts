/** Subscriptions to backend events, released when a component goes away. */
import type { UnlistenFn } from "@tauri-apps/api/event";

/**
 * Stops a subscription made with `onMailProgress` & co. A subscription that never
 * started, or a window already torn down, leaves nothing to stop: teardown errors
 * are not the user's business, so they are dropped here.
 */
export function release(subscription: Promise<UnlistenFn>): void {
  // Tauri's unlisten returns a promise despite its `() => void` type; it rejects
  // when the event system is already gone (window closing): nothing left to stop.
  subscription
    .then((unlisten): unknown => unlisten())
    .catch(() => undefined);
}

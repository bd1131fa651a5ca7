/**
 * Every failure in words. The words are the core's (`CoreError` in Rust says each
 * failure once, for the app and the command line alike); this only makes them a
 * sentence, and says what Tauri itself refused (`ipc`) or what came without words.
 */
import { BackendError } from "../backend";

/** The error in words, for a status line or an alert. */
export function errorText(error: unknown): string {
  if (error instanceof BackendError) {
    if (error.code === "ipc") {
      return `The window could not reach the app's backend. ${sentence(error.message)}`;
    }
    return error.message.trim() ? sentence(error.message) : `Something went wrong (${error.code}).`;
  }
  if (error instanceof Error && error.message) {
    return `Something went wrong: ${sentence(error.message)}`;
  }
  return "Something went wrong.";
}

function sentence(message: string): string {
  const trimmed = message.trim();
  const first = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

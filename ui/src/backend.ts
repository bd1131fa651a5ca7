/**
 * The one typed door from the UI to the Rust shell (src-tauri/).
 *
 * Every screen talks to a {@link Backend}; only {@link tauriBackend} calls
 * `invoke`. Tests either pass their own `Backend` or keep `tauriBackend` and
 * fake the IPC layer with `mockIPC` from `@tauri-apps/api/mocks`.
 *
 * The types below mirror the camelCase DTOs in src-tauri/commands and
 * src-tauri/error.rs. They are written by hand while there is a single
 * command; generate them from Rust (STYLE.md habit 4) once more commands land.
 */
import { invoke, type InvokeArgs } from "@tauri-apps/api/core";

/** What `app_info` returns (Rust: `commands::AppInfo`). */
export interface AppInfo {
  name: string;
  version: string;
  /** The sync server's URL (the embedded one on loopback by default). */
  syncServer: string;
}

/** Everything the UI can ask the Rust shell. */
export interface Backend {
  /** Product name and version of the running app. */
  appInfo(): Promise<AppInfo>;
}

/** A failed command, carrying the shell's stable `{ code, message }` (Rust: `AppError`). */
export class BackendError extends Error {
  /** Stable, machine-readable code, e.g. `"internal"`. */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = "BackendError";
    this.code = code;
  }
}

/** The real backend: Tauri IPC to the commands registered in src-tauri/lib.rs. */
export const tauriBackend: Backend = {
  appInfo: () => call<AppInfo>("app_info"),
};

async function call<T>(command: string, args?: InvokeArgs): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (raw) {
    throw toBackendError(raw);
  }
}

/** The shell rejects with `{ code, message }`; Tauri itself (e.g. the ACL) rejects with a string. */
function toBackendError(raw: unknown): BackendError {
  if (typeof raw === "object" && raw !== null && "code" in raw && "message" in raw) {
    return new BackendError(String(raw.code), String(raw.message));
  }
  return new BackendError("ipc", String(raw));
}

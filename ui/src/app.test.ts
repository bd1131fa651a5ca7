// The app against the real `tauriBackend` with Tauri's IPC mocked: checks the
// command names and argument keys the Rust side must register, and that failures
// arrive in words. (Screens themselves are tested against mock.ts elsewhere.)
import { afterEach, expect, test } from "vitest";
import { cleanup, render, screen } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import App from "./App.svelte";
import { tauriBackend } from "./backend";

afterEach(() => {
  cleanup();
  clearMocks();
});

test("shows the version returned by the backend on the start screen", async () => {
  const commands: string[] = [];
  mockIPC((cmd) => {
    commands.push(cmd);
    if (cmd === "app_info") {
      return { name: "Sealpost", version: "9.8.7-test", syncServer: "http://127.0.0.1:8443" };
    }
    if (cmd === "status") {
      return { state: "none", user: null, syncServer: "http://127.0.0.1:8443" };
    }
    throw new Error(`unexpected command ${cmd}`);
  }, { shouldMockEvents: true });

  render(App, { backend: tauriBackend });

  expect(await screen.findByText("Sealpost 9.8.7-test · sync server http://127.0.0.1:8443")).toBeTruthy();
  expect(screen.getByRole("heading", { name: "Welcome to Sealpost" })).toBeTruthy();
  expect(commands.sort()).toEqual(["app_info", "status"]);
});

test("says in words why it cannot start when the backend refuses", async () => {
  mockIPC(() => {
    throw { code: "internal", message: "boom" };
  }, { shouldMockEvents: true });

  render(App, { backend: tauriBackend });

  const alert = await screen.findByRole("alert");
  expect(alert.textContent).toBe("Boom.");
  expect(await screen.findByText("Version unavailable: Boom.")).toBeTruthy();
  expect(document.body.textContent).not.toMatch(/\binternal\b/);
});

test("unlock sends the password under the key `password` and clears the field after", async () => {
  const calls: { cmd: string; args: unknown }[] = [];
  mockIPC((cmd, args) => {
    calls.push({ cmd, args });
    switch (cmd) {
      case "app_info":
        return { name: "Sealpost", version: "1", syncServer: "x" };
      case "status":
        return { state: "locked", user: "ada", syncServer: "x" };
      case "unlock":
        return { user: "ada", failedAttempts: 0 };
      case "mail_accounts":
        return [];
      default:
        throw { code: "internal", message: `unexpected ${cmd}` };
    }
  }, { shouldMockEvents: true });
  const user = userEvent.setup();
  render(App, { backend: tauriBackend });

  const field = await screen.findByTestId("unlock-password");
  await user.type(field, "s3cret passphrase");
  await user.click(screen.getByTestId("unlock"));

  expect(await screen.findByRole("heading", { name: "Add a mail account" })).toBeTruthy();
  expect(calls.find((c) => c.cmd === "unlock")?.args).toEqual({ password: "s3cret passphrase" });
  expect(document.querySelector<HTMLInputElement>("[data-testid=unlock-password]")).toBeNull();
});

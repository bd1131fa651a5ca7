// Accessibility of every screen: each control has an accessible name (walked and
// computed like a screen reader would), landmarks exist, and Tab reaches the
// main controls in a sensible order.
import { expect, test } from "vitest";
import { render, screen, waitFor } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import App from "./App.svelte";
import { MockBackend } from "./mock";
import { countControls, unnamedControls, unreachableControls } from "./test/a11y";

function expectAllNamed(minimum: number) {
  expect(unnamedControls()).toEqual([]);
  expect(unreachableControls()).toEqual([]);
  expect(countControls()).toBeGreaterThanOrEqual(minimum);
}

test("onboarding screens: every control is named", async () => {
  const backend = new MockBackend({ state: "none" });
  const user = userEvent.setup();
  render(App, { backend });
  await user.click(await screen.findByRole("button", { name: "Create an account" }));
  await user.type(screen.getByTestId("password"), "short");
  await waitFor(() => expect(document.querySelector("meter")).not.toBeNull());
  expectAllNamed(6);
  await user.click(screen.getByRole("button", { name: "Back" }));
  await user.click(screen.getByRole("button", { name: "Sign in on this device" }));
  expectAllNamed(4);
});

test("recovery screen: every control is named", async () => {
  const backend = new MockBackend({ state: "none" });
  const user = userEvent.setup();
  render(App, { backend });
  await user.click(await screen.findByRole("button", { name: "Create an account" }));
  await user.type(screen.getByTestId("user-name"), "ada");
  await user.type(screen.getByTestId("password"), "plover quietly misted the lantern");
  await user.type(screen.getByTestId("password-confirm"), "plover quietly misted the lantern");
  const create = screen.getByTestId<HTMLButtonElement>("create-account");
  await waitFor(() => expect(create.disabled).toBe(false));
  await user.click(create);
  await screen.findByTestId("recovery-code");
  expectAllNamed(4);
});

test("unlock screen: named controls, focus starts in the password, Tab reaches Unlock", async () => {
  const backend = new MockBackend({ state: "locked" });
  const user = userEvent.setup();
  render(App, { backend });
  const field = await screen.findByTestId("unlock-password");
  expect(document.activeElement).toBe(field);
  expectAllNamed(2);
  expect(screen.getByRole("main")).toBeTruthy();
  await user.type(field, "x");
  await user.tab();
  expect(document.activeElement).toBe(screen.getByTestId("unlock"));
});

test("mailbox with an open message: named controls, landmarks, Tab order", async () => {
  const backend = new MockBackend({ state: "unlocked", inboxSize: 300 });
  const user = userEvent.setup();
  render(App, { backend });
  const row = await screen.findAllByTestId("message-row");
  await user.click(row[0] as HTMLElement);
  await screen.findByTestId("reader-subject");
  expectAllNamed(15);

  expect(screen.getByRole("navigation", { name: "Main" })).toBeTruthy();
  expect(screen.getByRole("navigation", { name: "Folders" })).toBeTruthy();
  expect(screen.getByRole("main")).toBeTruthy();
  expect(screen.getByRole("search")).toBeTruthy();
  expect(screen.getByTestId("sync-status").getAttribute("role")).toBe("status");

  (document.activeElement as HTMLElement | null)?.blur();
  const reached: string[] = [];
  for (let i = 0; i < 14; i++) {
    await user.tab();
    const active = document.activeElement as HTMLElement;
    reached.push(active.dataset.testid ?? active.getAttribute("aria-label") ?? active.textContent?.trim() ?? "");
  }
  expect(reached.slice(0, 5)).toEqual(["mailbox", "compose", "settings", "lock", "folder-INBOX"]);
  expect(reached).toContain("search");
  expect(reached).toContain("message-list");
  expect(reached).toContain("reader-reply");
  // The row's flag button is a pointer shortcut; F in the list flags by keyboard.
  const list = screen.getByTestId("message-list");
  expect(list.getAttribute("aria-keyshortcuts")).toBe("F");
  list.focus();
  await user.keyboard("f");
  await waitFor(() => expect(backend.names()).toContain("setFlag"));
  await waitFor(() => expect(list.querySelector(".message-row.selected")?.textContent).toContain("Flagged."));
});

test("compose: every control is named, Tab walks the form", async () => {
  const backend = new MockBackend({ state: "unlocked", inboxSize: 10 });
  const user = userEvent.setup();
  render(App, { backend });
  await user.click(await screen.findByRole("button", { name: "Compose" }));
  await user.click(screen.getByRole("button", { name: "Add Cc and Bcc" }));
  await user.type(screen.getByTestId("compose-to"), "alice@example.org,");
  await user.click(screen.getByRole("button", { name: "Attach files…" }));
  await screen.findByText(/report\.pdf/);
  expectAllNamed(12);

  screen.getByTestId("compose-subject").focus();
  await user.tab();
  expect(document.activeElement).toBe(screen.getByTestId("compose-encrypt"));
  await user.tab();
  expect(document.activeElement).toBe(screen.getByTestId("compose-sign"));
  await user.tab();
  expect(document.activeElement).toBe(screen.getByTestId("compose-body"));
});

test("settings: every control is named; devices list marks this device, which cannot be revoked", async () => {
  const backend = new MockBackend({ state: "unlocked", inboxSize: 10 });
  const user = userEvent.setup();
  render(App, { backend });
  await user.click(await screen.findByRole("button", { name: "Settings" }));
  const devices = await screen.findByTestId("devices-list");
  await screen.findByTestId("key-fingerprint");
  await user.click(screen.getByRole("button", { name: "Export public key" }));
  await screen.findByLabelText("Your public key");
  expectAllNamed(12);
  expect(devices.textContent).toContain("This laptop");
  expect(devices.textContent).toContain("(this device)");
  expect(screen.queryByRole("button", { name: "Revoke This laptop" })).toBeNull();
  expect(screen.getByRole("button", { name: "Revoke Office desktop" })).toBeTruthy();
});

test("add account: every control is named, with the Advanced settings open", async () => {
  const backend = new MockBackend({ state: "unlocked", withAccount: false });
  const user = userEvent.setup();
  render(App, { backend });
  await user.type(await screen.findByTestId("mail-address"), "ada@example.org");
  await user.click(screen.getByTestId("mail-discover"));
  await screen.findByTestId("mail-password");
  await user.click(screen.getByText("Advanced"));
  expectAllNamed(12);
});

// Onboarding and unlock against the in-memory backend: the strength gate, the
// recovery code shown once, sign-in notices, and unlock errors.
import { expect, test } from "vitest";
import { render, screen, waitFor } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import App from "./App.svelte";
import { MOCK_PASSWORD, MockBackend } from "./mock";

const STRONG = "plover quietly misted the lantern";

async function startCreate(backend: MockBackend) {
  const user = userEvent.setup();
  render(App, { backend });
  await user.click(await screen.findByRole("button", { name: "Create an account" }));
  await user.type(screen.getByLabelText("User name"), "ada");
  return user;
}

test("Create stays disabled for a weak password and enables for a strong one", async () => {
  const backend = new MockBackend({ state: "none" });
  const user = await startCreate(backend);
  const create = screen.getByTestId<HTMLButtonElement>("create-account");
  const password = screen.getByTestId("password");
  const confirm = screen.getByTestId("password-confirm");

  await user.type(password, "password123");
  await user.type(confirm, "password123");
  const strength = screen.getByTestId("strength");
  await waitFor(() => expect(strength.textContent).toContain("Time to crack: less than a second"));
  expect(strength.textContent).toContain("This is similar to a commonly used password.");
  expect(strength.textContent).toContain("Add another word or two.");
  expect(strength.querySelector("meter")?.getAttribute("aria-valuetext")).toBe("Very weak");
  expect(create.disabled).toBe(true);

  await user.clear(password);
  await user.type(password, STRONG);
  await user.clear(confirm);
  await user.type(confirm, STRONG);
  await waitFor(() => expect(strength.textContent).toContain("Time to crack: centuries"));
  await waitFor(() => expect(create.disabled).toBe(false));
  expect(strength.textContent).not.toContain("commonly used");

  // The check is debounced: far fewer calls than keystrokes.
  const checks = backend.names().filter((n) => n === "checkPassword").length;
  expect(checks).toBeGreaterThan(0);
  expect(checks).toBeLessThan(STRONG.length);
});

test("Create stays disabled while the two passwords differ", async () => {
  const backend = new MockBackend({ state: "none" });
  const user = await startCreate(backend);
  await user.type(screen.getByTestId("password"), STRONG);
  await user.type(screen.getByTestId("password-confirm"), `${STRONG}x`);
  await waitFor(() => expect(screen.getByTestId("strength").textContent).toContain("centuries"));
  expect(screen.getByText("The two passwords differ.")).toBeTruthy();
  expect(screen.getByTestId<HTMLButtonElement>("create-account").disabled).toBe(true);
});

test("the recovery code is shown once and Continue waits for the checkbox", async () => {
  const backend = new MockBackend({ state: "none", withAccount: false });
  const user = await startCreate(backend);
  await user.type(screen.getByTestId("password"), STRONG);
  await user.type(screen.getByTestId("password-confirm"), STRONG);
  const create = screen.getByTestId<HTMLButtonElement>("create-account");
  await waitFor(() => expect(create.disabled).toBe(false));
  await user.click(create);

  const code = await screen.findByTestId("recovery-code");
  expect(code.textContent).toBe("K7QM-2XPV-9RTD-4HWB-CF3N-8JLZ");
  const cont = screen.getByTestId<HTMLButtonElement>("continue");
  expect(cont.disabled).toBe(true);

  await user.click(screen.getByRole("button", { name: "Save recovery kit…" }));
  expect(await screen.findByText("Recovery kit saved.")).toBeTruthy();
  expect(cont.disabled).toBe(true);

  await user.click(screen.getByTestId("recovery-saved"));
  expect(cont.disabled).toBe(false);
  await user.click(cont);

  expect(await screen.findByRole("heading", { name: "Add a mail account" })).toBeTruthy();
  expect(backend.names()).toContain("forgetRecoveryCode");
  expect(backend.recoveryCode).toBeNull();
  expect(document.body.textContent).not.toContain("K7QM-2XPV");
  // The password went to the backend once and is gone from the page.
  for (const input of document.querySelectorAll("input")) expect(input.value).not.toBe(STRONG);
});

test("sign in shows the failed attempts since the last sign-in", async () => {
  const backend = new MockBackend({ state: "none", failedAttempts: 3 });
  const user = userEvent.setup();
  render(App, { backend });
  await user.click(await screen.findByRole("button", { name: "Sign in on this device" }));
  await user.type(screen.getByLabelText("User name"), "ada");
  await user.type(screen.getByLabelText("Password"), "not it");
  await user.click(screen.getByTestId("sign-in"));
  await waitFor(() => expect(screen.getByRole("alert").textContent).toBe(
      "Sign-in failed: wrong user name or password, or the account is locked after too many failed attempts.",
    ));
  expect(screen.getByLabelText<HTMLInputElement>("User name").value).toBe("ada");

  await user.clear(screen.getByLabelText("Password"));
  await user.type(screen.getByLabelText("Password"), MOCK_PASSWORD);
  await user.click(screen.getByTestId("sign-in"));
  const notice = await screen.findByTestId("notice");
  expect(notice.textContent).toContain("3 failed sign-in attempts since your last sign-in");
});

test("unlock with a wrong password shows the error and keeps the screen", async () => {
  const backend = new MockBackend({ state: "locked" });
  const user = userEvent.setup();
  render(App, { backend });
  const field = await screen.findByTestId<HTMLInputElement>("unlock-password");
  await user.type(field, "wrong horse");
  await user.click(screen.getByTestId("unlock"));

  const alert = await screen.findByRole("alert");
  await waitFor(() => expect(alert.textContent).toBe("That password is not right."));
  expect(screen.getByRole("heading", { name: "Unlock Sealpost" })).toBeTruthy();
  expect(field.value).toBe("wrong horse");
  expect(field.getAttribute("aria-invalid")).toBe("true");

  await user.clear(field);
  await user.type(field, MOCK_PASSWORD);
  await user.click(screen.getByTestId("unlock"));
  expect(await screen.findByTestId("folder-INBOX")).toBeTruthy();
});

test("a lock event anywhere goes back to the unlock screen", async () => {
  const backend = new MockBackend({ state: "unlocked", inboxSize: 10 });
  render(App, { backend });
  await screen.findByTestId("folder-INBOX");
  backend.emitLocked();
  expect(await screen.findByRole("heading", { name: "Unlock Sealpost" })).toBeTruthy();
});
